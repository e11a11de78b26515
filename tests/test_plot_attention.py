"""Tests of plot_attention.py: it draws the model's attention for the sequences of its seed, and bad input ends in one
clear line (argparse's usage error, exit 2, or run_main's ``error: ...``, exit 1), never in a traceback."""
import os
import subprocess
import sys

import pytest
import torch

import plot_attention
from lib.checkpoint import save_atomic
from lib.counting import CountingModel, make_counting_data
from lib.plot import plot_counting_attention
from tests.helpers import cli_outcome

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRANSLATOR = os.path.join(REPOSITORY, "data", "translator.pth")

# (flags, what argparse must say)
BAD_FLAGS = [
    (["--count", "0"], "argument --count: must be from 1 to 20, got 0"),
    (["--count", "-3"], "argument --count: must be from 1 to 20, got -3"),
    (["--count", "500"], "argument --count: must be from 1 to 20, got 500"),
    (["--count", "nan"], "argument --count: 'nan' is not a whole number"),
    (["--seed", "-1"], "argument --seed: must be from 0 to 2147483647, got -1"),
]


def test_every_flag_has_help():
    for action in plot_attention.build_parser()._actions:
        assert action.help, action.option_strings


def test_draws_the_sequences_of_its_seed(tmp_path, capsys, monkeypatch):
    torch.manual_seed(0)
    model = CountingModel(3, 10, 8)
    model_path, figure_path = tmp_path / "model.pth", tmp_path / "attention.png"
    save_atomic({"state_dict": model.state_dict(), "config": {"activation": "sigmoid"}}, str(model_path))
    drawn = []
    monkeypatch.setattr(plot_attention, "plot_counting_attention",
                        lambda *args, **kwargs: drawn.append(args) or plot_counting_attention(*args, **kwargs))
    plot_attention.main(plot_attention.parse_args(
        ["--checkpoint", str(model_path), "--out", str(figure_path), "--count", "2", "--seed", "5", "--no-show"]))
    one_hot, digits, counts = make_counting_data(2, 10, 3, torch.Generator().manual_seed(5))
    logits, weights = model(one_hot)
    (drawn_weights, drawn_digits, predicted, drawn_counts), = drawn
    torch.testing.assert_close(drawn_weights, weights.detach())
    assert torch.equal(drawn_digits, digits) and torch.equal(drawn_counts, counts)
    assert torch.equal(predicted, logits.argmax(-1))
    assert f"Correct counts: {(predicted == counts).sum().item()} of 6" in capsys.readouterr().out
    assert figure_path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("flags, message", BAD_FLAGS)
def test_bad_flag_values_end_in_a_usage_error(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        plot_attention.parse_args(flags)
    error = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert message in error and error.startswith("usage:") and "Traceback" not in error


def error_line(flags, capsys):
    """Run plot_attention.py's main through run_main on ``flags``; return the one line it exits with (exit 1)."""
    code, printed = cli_outcome(plot_attention.parse_args, plot_attention.main, flags, capsys)
    assert code == 1 and printed.startswith("error: ") and "\n" not in printed, printed
    return printed


@pytest.fixture
def counting_checkpoint(tmp_path):
    def write(vocab_size=3):
        torch.manual_seed(0)
        path = tmp_path / f"counting-{vocab_size}.pth"
        save_atomic({"state_dict": CountingModel(vocab_size, 10, 8).state_dict(), "config": {}}, str(path))
        return str(path)
    return write


def test_refuses_the_translator_checkpoint(tmp_path, capsys):
    message = error_line(["--checkpoint", TRANSLATOR, "--out", str(tmp_path / "a.png"), "--no-show"], capsys)
    assert message.startswith(f"error: {TRANSLATOR} is not a counting model checkpoint (it holds ")
    assert message.endswith("give one written by train.py")


@pytest.mark.parametrize("make, expected", [
    (lambda folder: str(folder / "missing.pth"), "error: --checkpoint {} does not exist"),
    (lambda folder: str(folder), "error: --checkpoint {} is a folder; give a file; run `python train.py` first"),
    (lambda folder: (folder / "noise.pth").write_bytes(os.urandom(64)) and str(folder / "noise.pth"),
     "error: {} is not a counting model checkpoint"),
])
def test_refuses_a_checkpoint_that_is_missing_a_folder_or_corrupt(tmp_path, capsys, make, expected):
    checkpoint = make(tmp_path)
    message = error_line(["--checkpoint", checkpoint, "--out", str(tmp_path / "a.png"), "--no-show"], capsys)
    assert message.startswith(expected.format(checkpoint)) and "python train.py" in message
    assert "weights_only=False" not in message
    assert not (tmp_path / "a.png").exists()


def test_refuses_bad_out_files(tmp_path, capsys, counting_checkpoint):
    checkpoint = counting_checkpoint()
    message = error_line(["--checkpoint", checkpoint, "--out", str(tmp_path), "--no-show"], capsys)
    assert message.startswith(f"error: --out {tmp_path} is a folder; give a file")
    message = error_line(["--checkpoint", checkpoint, "--out", str(tmp_path / "a.xyz"), "--no-show"], capsys)
    assert message.startswith(f"error: --out {tmp_path / 'a.xyz'}: matplotlib cannot write .xyz files; use one of")
    assert ".png" in message
    folder = os.path.join(str(tmp_path), "figures", "")
    message = error_line(["--checkpoint", checkpoint, "--out", folder, "--no-show"], capsys)
    assert message == f"error: --out {folder} names a folder; give a file name, e.g. {folder}attention.png"


def test_the_page_is_never_the_checkpoint_nor_the_figure(tmp_path, capsys, counting_checkpoint):
    checkpoint = counting_checkpoint()
    assert "--html" in error_line(["--checkpoint", checkpoint, "--html", checkpoint, "--no-show"], capsys)
    assert "is also an input" in error_line(["--checkpoint", checkpoint, "--html", checkpoint], capsys)
    figure = str(tmp_path / "x.png")
    assert "is also --out" in error_line(["--checkpoint", checkpoint, "--out", figure, "--html", figure], capsys)
    assert os.path.getsize(checkpoint) > 0 and not os.path.exists(figure)


def test_refuses_more_heatmap_rows_than_fit_a_figure(tmp_path, capsys, counting_checkpoint):
    message = error_line(["--checkpoint", counting_checkpoint(vocab_size=40), "--count", "20",
                          "--out", str(tmp_path / "a.png"), "--no-show"], capsys)
    assert message == ("error: --count 20 would draw 800 heatmap rows for this model's 40 digits; use --count 5 or "
                       "fewer")


def test_the_script_ends_through_run_main_without_a_traceback(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(REPOSITORY, "plot_attention.py"), "--checkpoint", TRANSLATOR],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    assert result.returncode == 1
    assert f"error: {TRANSLATOR} is not a counting model checkpoint" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


if __name__ == "__main__":
    pytest.main([__file__])
