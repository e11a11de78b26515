"""setup.sh on a Debian/Ubuntu Python without the venv module: a clear message with the fix, nothing left behind."""
import os
import shutil
import subprocess

import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

STUB_PYTHON = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    echo "The virtual environment was not created successfully because ensurepip is not available." >&2
    exit 1
fi
exit 3
"""


@pytest.mark.skipif(shutil.which("bash") is None, reason="setup.sh is a bash script")
def test_setup_without_the_venv_module_says_how_to_fix_it(tmp_path):
    repository = tmp_path / "repo"
    repository.mkdir()
    shutil.copy(os.path.join(REPOSITORY, "setup.sh"), repository / "setup.sh")
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    (bin_folder / "python3").write_text(STUB_PYTHON)
    (bin_folder / "python3").chmod(0o755)
    environment = {"HOME": str(tmp_path), "PATH": f"{bin_folder}:/usr/bin:/bin"}  # no VIRTUAL_ENV, no CONDA_PREFIX
    result = subprocess.run(["bash", str(repository / "setup.sh")], capture_output=True, text=True, env=environment)
    assert result.returncode == 1
    assert "error: python3 could not make a virtual environment" in result.stderr
    assert "sudo apt-get install python3-venv" in result.stderr
    assert not (repository / ".venv").exists()  # a half-made environment is removed


@pytest.mark.skipif(shutil.which("bash") is None, reason="runtests.sh is a bash script")
@pytest.mark.parametrize("active, expected", [(False, ".venv"), (True, "active")])
def test_runtests_uses_the_repositorys_virtual_environment_unless_one_is_active(tmp_path, active, expected):
    """Without activating, runtests.sh runs pytest and the style check with .venv's Python; an active virtual
    environment's own python is used instead."""
    repository = tmp_path / "repo"
    (repository / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(os.path.join(REPOSITORY, "runtests.sh"), repository / "runtests.sh")
    calls = tmp_path / "calls.txt"
    active_bin = tmp_path / "active" / "bin"
    active_bin.mkdir(parents=True)
    for folder, name in ((repository / ".venv" / "bin", ".venv"), (active_bin, "active")):
        (folder / "python").write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\n')
        (folder / "python").chmod(0o755)
    environment = {"HOME": str(tmp_path), "PATH": f"{active_bin}:/usr/bin:/bin" if active else "/usr/bin:/bin"}
    if active:
        environment["VIRTUAL_ENV"] = str(active_bin.parent)
    result = subprocess.run(["bash", str(repository / "runtests.sh"), "-q"], capture_output=True, text=True,
                            env=environment)
    assert result.returncode == 0, result.stderr
    lines = calls.read_text().splitlines()
    assert [line.split()[:3] for line in lines] == [[expected, "-m", "pytest"], [expected, "-m", "pycodestyle"]]
    assert lines[0].endswith("-q")  # extra arguments go to pytest
