"""Tests of train.py: its flags and defaults, what it saves and prints, and bad input ending in one clear line
(argparse's usage error, exit 2, or run_main's ``error: ...``, exit 1) before any training, never in a traceback."""
import os
import re
import subprocess
import sys

import pytest
import torch

import train
from lib.counting import counting_test_data, evaluate_counting_model, load_counting_model, train_counting_model
from tests.helpers import cli_outcome

# (flags, what argparse must say): negative, zero, NaN, huge, wrong type
BAD_FLAGS = [
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


def test_every_flag_has_help_and_the_defaults_are_the_exercise():
    for action in train.build_parser()._actions:
        assert action.help, action.option_strings
    defaults = train.parse_args([])
    assert (defaults.sequence_length, defaults.vocab_size, defaults.hidden, defaults.batch_size, defaults.steps,
            defaults.lr, defaults.patience, defaults.seed, defaults.activation, defaults.out) == \
        (10, 3, 8, 256, 2500, 1e-2, 250, 0, "sigmoid", "results/model.pth")


def test_saves_what_it_trained_and_prints_its_accuracy(tmp_path, capsys):
    out = tmp_path / "model.pth"
    accuracy = train.main(train.parse_args(
        ["--steps", "150", "--sequence-length", "6", "--hidden", "6", "--seed", "2", "--activation", "softmax",
         "--out", str(out), "--no-progress"]))
    lines = capsys.readouterr().out.strip().splitlines()
    assert os.listdir(out.parent) == ["model.pth"]  # written atomically: no temporary file left
    model, config = load_counting_model(str(out))
    assert (config.sequence_length, config.hidden, config.seed, config.activation, config.steps) == \
        (6, 6, 2, "softmax", 150)
    expected_model, expected_loss, _ = train_counting_model(config, progress=False)
    for name, tensor in expected_model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    test_loss, expected_accuracy = evaluate_counting_model(expected_model, config)
    one_hot, _, counts = counting_test_data(config)
    assert accuracy == expected_accuracy == (model(one_hot)[0].argmax(-1) == counts).float().mean().item()
    assert lines[-3:] == [f"Final training loss: {expected_loss:.4f}", f"Test loss: {test_loss:.4f}",
                          f"Test accuracy: {accuracy:.4f}"]


def test_sizes_each_allowed_but_too_large_together_are_refused_before_training(tmp_path):
    out = tmp_path / "model.pth"
    with pytest.raises(ValueError, match=r"^batch_size x sequence_length x hidden is 16384 x 20 x 1024 = "
                                         r"335,544,320 numbers per tensor of a training step, above 33,554,432 .*; "
                                         r"lower the batch size or the hidden width$"):
        train.main(train.parse_args(["--batch-size", "16384", "--sequence-length", "20", "--hidden", "1024",
                                     "--out", str(out), "--no-progress"]))
    assert not out.exists()
    from lib.counting import CountingConfig
    CountingConfig(batch_size=16384, sequence_length=20, hidden=102)  # just below the bound: allowed


@pytest.mark.parametrize("flags, message", BAD_FLAGS)
def test_bad_flag_values_end_in_a_usage_error(flags, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.parse_args(flags)
    error = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert message in error and error.startswith("usage:") and "Traceback" not in error


def error_line(flags, capsys):
    """Run train.py's main through run_main on ``flags``; return the one line it exits with (exit 1)."""
    code, printed = cli_outcome(train.parse_args, train.main, flags, capsys)
    assert code == 1 and printed.startswith("error: ") and "\n" not in printed, printed
    return printed


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if training starts: the checks must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("training started before the arguments were checked")
    monkeypatch.setattr(train, "train_counting_model", refuse)


def test_refuses_a_folder_as_out_before_training(tmp_path, capsys, no_training):
    message = error_line(["--out", str(tmp_path), "--no-progress"], capsys)
    assert message.startswith(f"error: --out {tmp_path} is a folder; give a file")


def test_refuses_an_out_that_names_a_folder_before_training(tmp_path, capsys, no_training):
    folder = os.path.join(str(tmp_path), "new", "")  # ends with a separator: a folder, even before it exists
    message = error_line(["--out", folder, "--no-progress"], capsys)
    assert message == f"error: --out {folder} is a folder; give a file name inside it"


def test_refuses_an_out_that_cannot_be_written_before_training(tmp_path, capsys, no_training):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    message = error_line(["--out", str(blocker / "model.pth"), "--no-progress"], capsys)
    assert message == f"error: --out {blocker / 'model.pth'}: {blocker} is a file, not a folder"


def test_main_from_code_refuses_values_the_parser_would(capsys, no_training):
    args = train.parse_args([])
    args.sequence_length = 1000  # as a caller of main(args) might set it
    code, printed = cli_outcome(lambda argv: args, train.main, [], capsys)
    assert (code, printed) == (1, "error: sequence_length must be from 1 to 20, got 1000 (longer sequences do not "
                                  "train to a useful accuracy)")


@pytest.mark.parametrize("flags, code, message", [
    (["--lr", "nan"], 2, "train.py: error: argument --lr: must be a finite number, got nan"),
    (["--out", "{tmp}"], 1, "error: --out {tmp} is a folder; give a file name"),
])
def test_the_script_ends_through_run_main_without_a_traceback(tmp_path, flags, code, message):
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "train.py")
    result = subprocess.run([sys.executable, script] + [flag.format(tmp=tmp_path) for flag in flags],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    assert result.returncode == code
    assert message.format(tmp=tmp_path) in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


if __name__ == "__main__":
    pytest.main([__file__])


# ---- bad flags and files: one line, nothing lost ---------------------------------------------------------------------

SHORT = ["--steps", "5", "--no-progress"]


def existing(folder):
    (folder / "model.pth").write_bytes(b"a translator")


def kept(folder):
    assert (folder / "model.pth").read_bytes() == b"a translator"


def replaced(folder):
    assert torch.load(folder / "model.pth", weights_only=True)["config"]["steps"] == 5


ROWS = [
    ("--out of an existing file", [*SHORT, "--out", "{tmp}/model.pth"], 1,
     r"--out .*model.pth already exists: add --force to overwrite it", existing, kept),
    ("--out of an existing file with --force", [*SHORT, "--out", "{tmp}/model.pth", "--force"], 0,
     r"Saved the model to .*model.pth", existing, replaced),
    ("--out of a new file", [*SHORT, "--out", "{tmp}/model.pth"], 0, "Test accuracy", None, replaced),
]


@pytest.mark.parametrize("name, flags, code, message, setup, check", ROWS, ids=[row[0] for row in ROWS])
def test_each_row_ends_in_a_result_or_one_line_that_says_what_to_do(name, flags, code, message, setup, check,
                                                                    tmp_path, capsys):
    if setup:
        setup(tmp_path)
    got, printed = cli_outcome(train.parse_args, train.main, [flag.format(tmp=tmp_path) for flag in flags], capsys)
    assert got == code and re.search(message, printed) and "Traceback" not in printed, printed
    if code:
        assert printed.strip().count("\n") == 0, printed
    if check:
        check(tmp_path)
