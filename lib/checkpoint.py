"""Atomic checkpoint writing and safe loading with errors that say what to do."""
import os
import re
import warnings

import torch

from lib.files import atomic_output


def save_atomic(obj, path):
    """torch.save ``obj`` to ``path`` via a temporary file in the same folder (lib.files.atomic_output), so a crash
    never leaves half a file; the folder is made if needed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_output(path, "wb", suffix=".pth") as file:
        torch.save(obj, file)


_UNSUPPORTED_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _why_unreadable(path, error):
    """One line on why torch could not load ``path`` safely. Never repeats torch's own message, which advises
    loading with ``weights_only=False``: that would run whatever code the file holds."""
    if os.path.getsize(path) == 0:
        return "the file is empty"
    text = str(error)
    if "zip archive" in text or "central directory" in text:
        return "it is a damaged or truncated PyTorch file"
    found = _UNSUPPORTED_GLOBAL.search(text)
    if found:
        return (f"it holds Python objects ({found.group(1)}) besides tensors, which are never loaded, since loading "
                "them could run code from the file")
    return "it is not a PyTorch file of tensors (another kind of file, or a damaged one)"


def load_checkpoint(path, hint="", map_location="cpu", what="checkpoint of this library"):
    """Load a checkpoint with ``weights_only=True`` (tensors and plain values only, never pickled code).

    A missing file raises FileNotFoundError, a folder IsADirectoryError, anything torch cannot load safely a
    one-line RuntimeError "<path> is not a <what> (<why>)", each followed by ``hint`` on what to do.
    """
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path} is a folder, not a {what}. {hint}".strip())
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint at {path}. {hint}".strip())
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types (UnpicklingError, RuntimeError, KeyError, EOFError)
        raise RuntimeError(f"{path} is not a {what}: {_why_unreadable(path, error)}. {hint}".strip()) from None
