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

from lib.translation.translator import REPOSITORY
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


# ---- tools/compare_runs.py -----------------------------------------------------------------------------------------

def run_logs(folder):
    """Two runs' folders with a log each, one of them with '=' in a folder's name."""
    for name, bleu in (("a=b/run", 1.0), ("plain", 2.0)):
        (folder / name).mkdir(parents=True)
        (folder / name / "log.jsonl").write_text(f'{{"step": 4, "minutes": 0.1, "valid_loss": 3.0, '
                                                 f'"valid_bleu": {bleu}, "valid_chrf": 5.0}}\n')


COMPARE_ROWS = [
    ("an existing path whose name holds '='", ["{tmp}/a=b/run", "{tmp}/plain"], 0, r"\| step \| run \| plain \|"),
    ("LABEL=PATH still works", ["first={tmp}/a=b/run", "{tmp}/plain"], 0, r"\| step \| first \| plain \|"),
    ("an empty label", ["={tmp}/plain"], 1, r"error: RUN '=.*plain' has an empty label: write LABEL=PATH, or the "
                                            r"PATH alone"),
    ("an empty path", ["label="], 1, r"error: RUN 'label=' has an empty path"),
    ("a path that is missing", ["{tmp}/none"], 1, r"error: No training log at .*none/log.jsonl"),
]


@pytest.mark.parametrize("name, runs, code, message", COMPARE_ROWS, ids=[row[0] for row in COMPARE_ROWS])
def test_compare_runs_rows(name, runs, code, message, tmp_path, capsys):
    compare_runs = load_tool("compare_runs")
    run_logs(tmp_path)
    flags = [run.format(tmp=tmp_path) for run in runs] + ["--no-show", "--figure", str(tmp_path / "runs.png")]
    got, printed = cli_outcome(compare_runs.build_parser().parse_args, compare_runs.main, flags, capsys)
    assert got == code and re.search(message, printed) and "Traceback" not in printed, printed
    if code:
        assert printed.strip().count("\n") == 0, printed
