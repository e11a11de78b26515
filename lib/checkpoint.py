"""Atomic checkpoint writing and safe loading with errors that say what to do."""
import os
import tempfile

import torch


def save_atomic(obj, path):
    """torch.save ``obj`` to ``path`` via a temporary file in the same folder, so a crash never leaves half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".pth")
    try:
        with os.fdopen(handle, "wb") as file:
            torch.save(obj, file)
            file.flush()
            os.fsync(file.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual permissions
        os.replace(tmp_path, path)
    except BaseException:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise


def load_checkpoint(path, hint="", map_location="cpu"):
    """Load a checkpoint with ``weights_only=True``; a missing or corrupt file raises with ``hint`` on what to do."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint at {path}. {hint}".strip())
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        raise RuntimeError(f"The checkpoint {path} is corrupt or not a checkpoint of this library ({error}). "
                           f"{hint}".strip()) from error
