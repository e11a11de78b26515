"""lib/checkpoint.py: checkpoints are written atomically through lib.files and loaded with weights_only=True, and
stored weights are checked against the model their config describes before that model is built."""
import os

import pytest
import torch
from torch import nn

from lib.checkpoint import fit_problem, load_checkpoint, save_atomic


def test_a_checkpoint_round_trips_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "made" / "model.pth"
    state = {"weight": torch.arange(6.0).view(2, 3), "step": 7}
    save_atomic(state, str(path))
    loaded = load_checkpoint(str(path))
    assert torch.equal(loaded["weight"], state["weight"]) and loaded["step"] == 7
    assert os.listdir(path.parent) == ["model.pth"]


def test_an_interrupted_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    save_atomic({"step": 1}, str(path))

    def interrupted(obj, file):
        file.write(b"half a checkpoint")
        raise KeyboardInterrupt
    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_atomic({"step": 2}, str(path))
    monkeypatch.undo()
    assert load_checkpoint(str(path)) == {"step": 1} and os.listdir(tmp_path) == ["model.pth"]


def test_a_checkpoint_saved_to_a_device_is_written_in_place(tmp_path):
    save_atomic({"step": 1}, os.devnull)
    assert not os.path.isfile(os.devnull)


def test_a_symlinked_checkpoint_keeps_its_link(tmp_path):
    (tmp_path / "real.pth").write_bytes(b"")
    os.symlink(tmp_path / "real.pth", tmp_path / "link.pth")
    save_atomic({"step": 3}, str(tmp_path / "link.pth"))
    assert os.path.islink(tmp_path / "link.pth") and load_checkpoint(str(tmp_path / "real.pth")) == {"step": 3}


@pytest.mark.parametrize("content, words", [(b"", "the file is empty"), (b"not a zip", "not a PyTorch file")])
def test_a_file_torch_cannot_load_safely_is_one_line_that_says_why(tmp_path, content, words):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(RuntimeError, match=words) as caught:
        load_checkpoint(str(path), hint="Train first.")
    assert "\n" not in str(caught.value) and str(caught.value).endswith("Train first.")


class Tied(nn.Module):
    """A layer whose weight is used twice (as tied embeddings are): listed under two names, one tensor."""

    def __init__(self, width):
        super().__init__()
        self.first = nn.Linear(width, width)
        self.second = nn.Linear(width, width)
        self.second.weight = self.first.weight


def stored(model):
    """What a checkpoint of ``model`` holds: its state_dict, a tensor used twice stored once."""
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def tied_state(width):
    state = stored(Tied(width))
    state["second.weight"] = state["first.weight"]
    return state


def one_storage(state):
    storage = torch.zeros(max(value.numel() for value in state.values()))
    return {name: storage[:value.numel()].view(value.shape) for name, value in state.items()}


# (the stored state, the problem fit_problem finds with a Tied(4) built on the meta device, or None)
FIT_CASES = [
    ("its own weights", tied_state(4), None),
    ("its weights, the tied one twice over", stored(Tied(4)), None),
    ("not a table", [1, 2], "its weights are [1, 2], not a table of tensors"),
    ("a weight missing", {name: value for name, value in tied_state(4).items() if name != "first.bias"},
     "it has no first.bias"),
    ("a weight too many", dict(tied_state(4), extra=torch.zeros(1)), "it has unexpected 'extra'"),
    ("a weight that is a list", dict(tied_state(4), **{"first.bias": [0.0] * 4}),
     "first.bias is [0.0, 0.0, 0.0, 0.0], not a tensor of numbers"),
    ("a sparse weight", dict(tied_state(4), **{"first.bias": torch.zeros(4).to_sparse()}),
     "first.bias is tensor(indices=ten...t=torch.sparse_coo), not a tensor of numbers"),
    ("a weight of another shape", tied_state(5), "first.weight has the shape (5, 5), the config's model (4, 4)"),
    ("every weight in one storage", one_storage(tied_state(4)),
     "its tensors hold 16 numbers between them, the config's model has 24"),
]


@pytest.mark.parametrize("state, problem", [case[1:] for case in FIT_CASES], ids=[case[0] for case in FIT_CASES])
def test_fit_problem_says_why_stored_weights_do_not_fit_a_model_built_on_the_meta_device(state, problem):
    with torch.device("meta"):
        model = Tied(4)
    assert model.first.weight.is_meta and fit_problem(model, state) == problem
    if problem is None:
        Tied(4).load_state_dict(state)  # what fits, loads


def test_fit_problem_needs_no_memory_for_a_model_of_any_size():
    with torch.device("meta"):
        model = nn.Linear(10 ** 6, 10 ** 6)  # 4 TB as float32
    assert fit_problem(model, {"weight": torch.zeros(1, 1), "bias": torch.zeros(1)}) == \
        "weight has the shape (1, 1), the config's model (1000000, 1000000)"
