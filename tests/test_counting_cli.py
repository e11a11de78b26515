"""Bad input to train.py and plot_attention.py: every case ends in one clear line (argparse's usage error, exit 2, or
run_main's ``error: ...``, exit 1), before any training, and never in a traceback."""
import os
import subprocess
import sys

import pytest
import torch

import plot_attention
import train
from lib.checkpoint import save_atomic
from lib.cli import run_main
from lib.counting import CountingModel

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRANSLATOR = os.path.join(REPOSITORY, "data", "translator.pth")

# (flags, what argparse must say): negative, zero, NaN, huge, wrong type
TRAIN_BAD_FLAGS = [
    (["--lr", "-1"], "argument --lr: must be above 0 and at most 1, got -1"),
    (["--lr", "0"], "argument --lr: must be above 0 and at most 1, got 0"),
    (["--lr", "nan"], "argument --lr: must be a finite number, got nan"),
    (["--lr", "inf"], "argument --lr: must be a finite number, got inf"),
    (["--lr", "1e9"], "argument --lr: must be above 0 and at most 1, got 1e+09"),
    (["--lr", "fast"], "argument --lr: 'fast' is not a number"),
    (["--sequence-length", "1000"], "argument --sequence-length: must be from 1 to 20, got 1000"),
    (["--sequence-length", "0"], "argument --sequence-length: must be from 1 to 20, got 0"),
    (["--patience", "-1"], "argument --patience: must be from 0 to 1000000, got -1"),
    (["--steps", "0"], "argument --steps: must be from 1 to 1000000, got 0"),
    (["--steps", "1.5"], "argument --steps: '1.5' is not a whole number"),
    (["--steps", "nan"], "argument --steps: 'nan' is not a whole number"),
    (["--batch-size", "-256"], "argument --batch-size: must be from 1 to 16384, got -256"),
    (["--batch-size", "1000000000"], "argument --batch-size: must be from 1 to 16384, got 1000000000"),
    (["--hidden", "1"], "argument --hidden: must be from 2 to 1024, got 1"),
    (["--vocab-size", "0"], "argument --vocab-size: must be from 1 to 100, got 0"),
    (["--seed", "-1"], "argument --seed: must be from 0 to 2147483646, got -1"),
    (["--seed", "1" + "0" * 30], "argument --seed: must be from 0 to 2147483646"),
    (["--threads", "0"], "argument --threads: must be from 1 to 256, got 0"),
    (["--activation", "relu"], "argument --activation: invalid choice: 'relu'"),
]

PLOT_BAD_FLAGS = [
    (["--count", "0"], "argument --count: must be from 1 to 20, got 0"),
    (["--count", "-3"], "argument --count: must be from 1 to 20, got -3"),
    (["--count", "500"], "argument --count: must be from 1 to 20, got 500"),
    (["--count", "nan"], "argument --count: 'nan' is not a whole number"),
    (["--seed", "-1"], "argument --seed: must be from 0 to 2147483647, got -1"),
    (["--model", "results/model.pth"], "--model was renamed --checkpoint"),
    (["--samples", "3"], "--samples was renamed --count"),
]


@pytest.mark.parametrize("module, flags, message", [(train, flags, message) for flags, message in TRAIN_BAD_FLAGS]
                         + [(plot_attention, flags, message) for flags, message in PLOT_BAD_FLAGS])
def test_bad_flag_values_end_in_a_usage_error(module, flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        module.parse_args(flags)
    error = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert message in error and error.startswith("usage:") and "Traceback" not in error


def error_line(module, flags, capsys):
    """Run ``module``'s main through run_main on ``flags``; return the one line it exits with."""
    with pytest.raises(SystemExit) as exit_info:
        run_main(module.main, module.parse_args(flags))
    assert capsys.readouterr().err == ""
    message = exit_info.value.code
    assert isinstance(message, str) and message.startswith("error: ") and "\n" not in message, message
    return message


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if training starts: the checks must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started before the arguments were checked")
    monkeypatch.setattr(train, "train_counting_model", refuse)


def test_train_refuses_a_folder_as_out_before_training(tmp_path, capsys, no_training):
    message = error_line(train, ["--out", str(tmp_path), "--no-progress"], capsys)
    assert message.startswith(f"error: --out {tmp_path} is a folder; give a file")


def test_train_refuses_an_out_that_names_a_folder_before_training(tmp_path, capsys, no_training):
    folder = os.path.join(str(tmp_path), "new", "")  # ends with a separator: a folder, even before it exists
    message = error_line(train, ["--out", folder, "--no-progress"], capsys)
    assert message == f"error: --out {folder} names a folder; give a file name, e.g. {folder}model.pth"


def test_train_refuses_an_out_that_cannot_be_written_before_training(tmp_path, capsys, no_training):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    message = error_line(train, ["--out", str(blocker / "model.pth"), "--no-progress"], capsys)
    assert message.startswith(f"error: --out {blocker / 'model.pth'} cannot be written")


def test_train_main_from_code_refuses_values_the_parser_would(capsys, no_training):
    args = train.parse_args([])
    args.sequence_length = 1000  # as a caller of main(args) might set it
    with pytest.raises(SystemExit) as exit_info:
        run_main(train.main, args)
    assert exit_info.value.code == ("error: sequence_length must be from 1 to 20, got 1000 (longer sequences do not "
                                    "train to a useful accuracy)")


@pytest.fixture
def counting_checkpoint(tmp_path):
    def write(vocab_size=3):
        torch.manual_seed(0)
        path = tmp_path / f"counting-{vocab_size}.pth"
        save_atomic({"state_dict": CountingModel(vocab_size, 10, 8).state_dict(), "config": {}}, str(path))
        return str(path)
    return write


def test_plot_refuses_the_translator_checkpoint(tmp_path, capsys):
    message = error_line(plot_attention, ["--checkpoint", TRANSLATOR, "--out", str(tmp_path / "a.png"), "--no-show"],
                         capsys)
    assert message.startswith(f"error: {TRANSLATOR} is not a counting model checkpoint (it holds ")
    assert message.endswith("give one written by train.py")


@pytest.mark.parametrize("make, expected", [
    (lambda folder: str(folder / "missing.pth"), "error: No checkpoint at {}. Run `python train.py` first"),
    (lambda folder: str(folder), "error: {} is a folder, not a counting model checkpoint"),
    (lambda folder: (folder / "noise.pth").write_bytes(os.urandom(64)) and str(folder / "noise.pth"),
     "error: {} is not a counting model checkpoint"),
])
def test_plot_refuses_a_checkpoint_that_is_missing_a_folder_or_corrupt(tmp_path, capsys, make, expected):
    checkpoint = make(tmp_path)
    message = error_line(plot_attention, ["--checkpoint", checkpoint, "--out", str(tmp_path / "a.png"),
                                          "--no-show"], capsys)
    assert message.startswith(expected.format(checkpoint)) and "python train.py" in message
    assert "weights_only=False" not in message
    assert not (tmp_path / "a.png").exists()


def test_plot_refuses_bad_out_files(tmp_path, capsys, counting_checkpoint):
    checkpoint = counting_checkpoint()
    message = error_line(plot_attention, ["--checkpoint", checkpoint, "--out", str(tmp_path), "--no-show"], capsys)
    assert message.startswith(f"error: --out {tmp_path} is a folder; give a file")
    message = error_line(plot_attention, ["--checkpoint", checkpoint, "--out", str(tmp_path / "a.xyz"), "--no-show"],
                         capsys)
    assert message.startswith(f"error: --out {tmp_path / 'a.xyz'}: matplotlib cannot write .xyz files; use one of")
    assert ".png" in message
    folder = os.path.join(str(tmp_path), "figures", "")
    message = error_line(plot_attention, ["--checkpoint", checkpoint, "--out", folder, "--no-show"], capsys)
    assert message == f"error: --out {folder} names a folder; give a file name, e.g. {folder}attention.png"


def test_plot_refuses_more_heatmap_rows_than_fit_a_figure(tmp_path, capsys, counting_checkpoint):
    message = error_line(plot_attention, ["--checkpoint", counting_checkpoint(vocab_size=40), "--count", "20",
                                          "--out", str(tmp_path / "a.png"), "--no-show"], capsys)
    assert message == ("error: --count 20 would draw 800 heatmap rows for this model's 40 digits; use --count 5 or "
                       "fewer")


@pytest.mark.parametrize("script, flags, code, message", [
    ("train.py", ["--lr", "nan"], 2, "train.py: error: argument --lr: must be a finite number, got nan"),
    ("train.py", ["--out", "{tmp}"], 1, "error: --out {tmp} is a folder; give a file name"),
    ("plot_attention.py", ["--checkpoint", TRANSLATOR], 1, f"error: {TRANSLATOR} is not a counting model checkpoint"),
])
def test_the_scripts_end_through_run_main_without_a_traceback(tmp_path, script, flags, code, message):
    command = [sys.executable, os.path.join(REPOSITORY, script)] + [flag.format(tmp=tmp_path) for flag in flags]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    assert result.returncode == code
    assert message.format(tmp=tmp_path) in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


if __name__ == "__main__":
    pytest.main([__file__])
