"""Atomic checkpoint writing, safe loading with errors that say what to do, and the check that stored weights fit
the model their stored config describes before that model is built."""
import os
import re
import warnings

import torch

from lib.checks import shown
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


def fit_problem(model, state):
    """Why ``state`` (a checkpoint's dict: name -> tensor) cannot be loaded into ``model``, in words, or None.

    Meant for a ``model`` built on the meta device (``with torch.device("meta")``: no memory, no random draws) from a
    stored config, before the real one is built: a name missing or unexpected, a value that is not a tensor, a shape
    that differs, or tensors that hold fewer numbers between them than the model has (one small tensor stored under
    many names would otherwise fill a large model from a small file). Tensors the model shares (tied weights) count
    once, as do stored tensors that share their data."""
    if not isinstance(state, dict):
        return f"its weights are {shown(state)}, not a table of tensors"
    expected = model.state_dict(keep_vars=True)
    missing = [name for name in expected if name not in state]
    unexpected = [shown(name) for name in state if name not in expected]
    if missing or unexpected:
        return "; ".join(f"{what} {', '.join(names[:3])}{' and more' if len(names) > 3 else ''}"
                         for what, names in (("it has no", missing), ("it has unexpected", unexpected)) if names)
    not_tensors = [name for name, value in state.items() if not isinstance(value, torch.Tensor)
                   or value.layout != torch.strided or value.is_meta]
    if not_tensors:
        return f"{not_tensors[0]} is {shown(state[not_tensors[0]])}, not a tensor of numbers"
    for name, value in expected.items():
        if state[name].shape != value.shape:
            return f"{name} has the shape {tuple(state[name].shape)}, the config's model {tuple(value.shape)}"
    needed = sum(value.numel() for value in {id(value): value for value in expected.values()}.values())
    storages = {value.untyped_storage().data_ptr(): value for value in state.values() if value.numel()}
    held = sum(value.untyped_storage().nbytes() // value.element_size() for value in storages.values())
    if held < needed:
        return f"its tensors hold {held} numbers between them, the config's model has {needed}"
    return None
