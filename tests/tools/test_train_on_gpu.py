"""tools/train_on_gpu.sh: each row as (arguments, exit code, a fragment of what is printed); a row may prepare its
folder and check afterwards that nothing was overwritten."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from lib.translation.translator import REPOSITORY

GPU_SCRIPT = os.path.join(REPOSITORY, "tools", "train_on_gpu.sh")


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
