"""Issue #21 (reliability, round two) for train.py: each row as (flags, exit code, a fragment of what is printed), run
as the script runs (lib.cli.run_main); a row may prepare its folder and check it afterwards."""
import re

import pytest
import torch

import train
from tests.conftest import cli_outcome

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
