"""Issue #21 (reliability, round two) for the tools: tools/train_on_gpu.sh, tools/compare_runs.py and
tools/sweep_decoding.py, each row as (arguments, exit code, a fragment of what is printed); a row may prepare its folder
and check it afterwards (nothing overwritten)."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

from lib.translation import REPOSITORY
from tests.conftest import cli_outcome

GPU_SCRIPT = os.path.join(REPOSITORY, "tools", "train_on_gpu.sh")


def load_tool(name):
    """The module tools/NAME.py."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPOSITORY, "tools", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def earlier_call(*names):
    """A setup: folder/out holds an earlier call's ``names`` (files, or run/ files)."""
    def setup(folder):
        for name in names:
            path = folder / "out" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("earlier")
    return setup


def earlier_call_kept(folder):
    for path in (folder / "out").rglob("*"):
        assert path.is_dir() or path.read_text() == "earlier", path


GPU_ROWS = [
    ("a second call on one OUT", ["{tmp}/out", "1"], earlier_call("translator.pth", "valid.txt", "run/last.pth"), 1,
     r"error: .*/out holds an earlier run .*: add --resume to continue it, or --force to start over"),
    ("an OUT whose run alone is left", ["{tmp}/out", "1"], earlier_call("run/log.jsonl"), 1,
     "holds an earlier run"),
    ("too few arguments", ["{tmp}/out"], None, 2, "Usage: tools/train_on_gpu.sh OUT MINUTES"),
]


@pytest.mark.skipif(shutil.which("bash") is None, reason="train_on_gpu.sh is a bash script")
@pytest.mark.parametrize("name, arguments, setup, code, message", GPU_ROWS, ids=[row[0] for row in GPU_ROWS])
def test_train_on_gpu_rows(name, arguments, setup, code, message, tmp_path):
    if setup:
        setup(tmp_path)
    result = subprocess.run(["bash", GPU_SCRIPT, *[argument.format(tmp=tmp_path) for argument in arguments]],
                            capture_output=True, text=True, env=dict(os.environ, PYTHON=sys.executable), timeout=60)
    assert result.returncode == code and re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    if (tmp_path / "out").exists():
        earlier_call_kept(tmp_path)


# ---- tools/sweep_decoding.py ---------------------------------------------------------------------------------------

SWEEP_ROWS = [
    ("a length penalty that overflowed", ["--length-penalties", "1", "1000"], 2,
     "--length-penalties: must be at least -10 and at most 10, got 1000"),
    ("a huge negative length penalty", ["--length-penalties=-1e308"], 2, "must be at least -10 and at most 10"),
]


@pytest.mark.parametrize("name, flags, code, message", SWEEP_ROWS, ids=[row[0] for row in SWEEP_ROWS])
def test_sweep_decoding_rows(name, flags, code, message, capsys):
    sweep_decoding = load_tool("sweep_decoding")
    got, printed = cli_outcome(sweep_decoding.build_parser().parse_args, sweep_decoding.main, flags, capsys)
    last = printed.strip().splitlines()[-1]
    assert got == code and message in last and "Traceback" not in printed, printed
