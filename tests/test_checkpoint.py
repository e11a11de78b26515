"""lib/checkpoint.py: checkpoints are written atomically through lib.files and loaded with weights_only=True."""
import os

import pytest
import torch

from lib.checkpoint import load_checkpoint, save_atomic


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
