"""setup.sh and runtests.sh in a sandbox: a PATH holding only stub commands that record their calls (python, and
apt-get, sudo, id, chromium where a test wants them), so nothing is installed. setup.sh installs the Python packages
everywhere and exits 0; system packages only through apt-get as root or password-less sudo, else a note; a Python
without the venv module gets a clear message with the fix."""
import os
import shutil
import subprocess

import pytest

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASH = shutil.which("bash")

STUB_PYTHON = """#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    echo "The virtual environment was not created successfully because ensurepip is not available." >&2
    exit 1
fi
exit 3
"""


@pytest.mark.skipif(BASH is None, reason="setup.sh is a bash script")
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


NEEDED_TOOLS = ("dirname", "sed", "env", "rm")  # what setup.sh runs besides python, apt-get, sudo, id and the browser


def stub(folder, name, body):
    """An executable /bin/sh script ``folder/name``."""
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def sandbox(tmp_path, apt_get=False, user_id=1000, sudo=None, browser=False):
    """(setup.sh copy, environment, calls file): an active virtual environment whose python records its calls, a PATH
    with only NEEDED_TOOLS and the stubs asked for. sudo: None (none), "password" (asks for one: ``sudo -n`` fails)
    or "free" (runs the command). Each stub appends 'name arguments' to the calls file; apt-get also records
    DEBIAN_FRONTEND."""
    repository, folder, calls = tmp_path / "repo", tmp_path / "bin", tmp_path / "calls.txt"
    repository.mkdir()
    folder.mkdir()
    shutil.copy(os.path.join(REPOSITORY, "setup.sh"), repository / "setup.sh")
    (repository / "requirements.txt").write_text("torch\n")
    for tool in NEEDED_TOOLS:
        os.symlink(shutil.which(tool), folder / tool)
    stub(folder, "python", f'echo "python $*" >> {calls}\n')
    stub(folder, "id", f'[ "$1" = "-u" ] && echo {user_id}\n')
    if apt_get:
        stub(folder, "apt-get", f'echo "apt-get DEBIAN_FRONTEND=$DEBIAN_FRONTEND $*" >> {calls}\n')
    if sudo == "password":
        stub(folder, "sudo", f'echo "sudo $*" >> {calls}\necho "sudo: a password is required" >&2\nexit 1\n')
    elif sudo == "free":
        stub(folder, "sudo", f'echo "sudo $*" >> {calls}\n[ "$1" = "-n" ] && shift\n"$@"\n')
    if browser:
        for name in ("chromium", "chromedriver"):
            stub(folder, name, "exit 0\n")
    environment = {"HOME": str(tmp_path), "PATH": str(folder), "VIRTUAL_ENV": str(tmp_path / "venv"),
                   "DING_DICTIONARY": str(tmp_path / "no-dictionary")}
    return repository / "setup.sh", environment, calls


def run_setup(script, environment, *flags):
    """Run setup.sh as CI does, without standard input; returns the CompletedProcess."""
    return subprocess.run([BASH, str(script), *flags], capture_output=True, text=True, env=environment,
                          stdin=subprocess.DEVNULL, timeout=60)


def recorded(calls):
    return calls.read_text().splitlines() if calls.exists() else []


PIP = "python -m pip install --disable-pip-version-check -q -r requirements.txt"


@pytest.mark.skipif(BASH is None, reason="setup.sh is a bash script")
def test_setup_without_apt_get_or_sudo_installs_the_python_packages_and_notes_the_dictionary(tmp_path):
    script, environment, calls = sandbox(tmp_path)
    result = run_setup(script, environment)
    assert result.returncode == 0, result.stderr
    assert recorded(calls) == [PIP]
    assert result.stderr == ""
    note = result.stdout
    assert f"Note: DING_DICTIONARY={tmp_path / 'no-dictionary'} names no file" in note
    assert "training a translator and for run_translation.py --split train or all" in note
    assert "download de-en.txt from the Ding project at TU Chemnitz and set DING_DICTIONARY=" in note
    assert "apt-get" not in note  # not on this system
    assert "browser tests will be skipped; ./setup.sh --with-browser installs them" in note
    assert note.splitlines()[-2:] == ["Set up in the active environment (" + environment["VIRTUAL_ENV"] + ").",
                                      "(The notes above name what is missing; everything else is installed.)"]


@pytest.mark.skipif(BASH is None, reason="setup.sh is a bash script")
def test_setup_with_browser_but_no_way_to_install_it_notes_the_browser_tests(tmp_path):
    script, environment, calls = sandbox(tmp_path)
    result = run_setup(script, environment, "--with-browser")
    assert result.returncode == 0, result.stderr
    assert recorded(calls) == [PIP]
    assert "Note: no Chromium with chromedriver on the PATH; the attention explorer's browser tests are skipped" \
        in result.stdout
    assert "install Chromium or Google Chrome and the matching chromedriver" in result.stdout


@pytest.mark.skipif(BASH is None, reason="setup.sh is a bash script")
def test_setup_as_root_with_apt_get_installs_the_dictionary_and_only_with_a_flag_the_browser(tmp_path):
    script, environment, calls = sandbox(tmp_path, apt_get=True, user_id=0)
    assert run_setup(script, environment).returncode == 0
    assert recorded(calls) == [PIP, "apt-get DEBIAN_FRONTEND=noninteractive update -q",
                               "apt-get DEBIAN_FRONTEND=noninteractive install -y -q trans-de-en"]
    calls.unlink()
    assert run_setup(script, environment, "--with-browser").returncode == 0
    assert recorded(calls)[1:] == ["apt-get DEBIAN_FRONTEND=noninteractive update -q",
                                   "apt-get DEBIAN_FRONTEND=noninteractive install -y -q trans-de-en chromium "
                                   "chromium-driver"]


@pytest.mark.skipif(BASH is None, reason="setup.sh is a bash script")
def test_setup_uses_sudo_only_without_a_password(tmp_path):
    script, environment, calls = sandbox(tmp_path, apt_get=True, sudo="free")
    assert run_setup(script, environment).returncode == 0
    assert recorded(calls) == [PIP, "sudo -n true",
                               "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update -q",
                               "apt-get DEBIAN_FRONTEND=noninteractive update -q",
                               "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get install -y -q trans-de-en",
                               "apt-get DEBIAN_FRONTEND=noninteractive install -y -q trans-de-en"]


@pytest.mark.skipif(BASH is None, reason="setup.sh is a bash script")
def test_setup_never_asks_for_a_password_and_says_what_to_run(tmp_path):
    script, environment, calls = sandbox(tmp_path, apt_get=True, sudo="password")
    result = run_setup(script, environment, "--with-browser")
    assert result.returncode == 0, result.stderr
    assert recorded(calls) == [PIP, "sudo -n true"]  # asked, without a prompt, whether a password is needed
    assert "To get it: sudo apt-get install trans-de-en" in result.stdout
    assert "on Debian/Ubuntu sudo apt-get install chromium chromium-driver" in result.stdout


@pytest.mark.skipif(BASH is None, reason="setup.sh is a bash script")
def test_setup_installs_nothing_when_the_dictionary_and_browser_are_there(tmp_path):
    script, environment, calls = sandbox(tmp_path, apt_get=True, user_id=0, browser=True)
    dictionary = tmp_path / "de-en.txt"
    dictionary.write_text("Hund {m} :: dog\n", encoding="utf-8")
    environment["DING_DICTIONARY"] = str(dictionary)
    result = run_setup(script, environment, "--with-browser")
    assert result.returncode == 0 and recorded(calls) == [PIP]
    assert result.stdout == f"Set up in the active environment ({environment['VIRTUAL_ENV']}).\n"


@pytest.mark.skipif(BASH is None, reason="setup.sh is a bash script")
def test_setup_refuses_an_unknown_option(tmp_path):
    script, environment, calls = sandbox(tmp_path)
    result = run_setup(script, environment, "--with-browsers")
    assert result.returncode == 2 and not calls.exists()
    assert result.stderr == ("error: unknown option --with-browsers; the only option is --with-browser (see "
                             "./setup.sh --help)\n")


@pytest.mark.skipif(BASH is None, reason="runtests.sh is a bash script")
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


def test_ci_sets_up_with_the_browser_and_runtests_bat_keeps_its_variables_local():
    """CI must run the browser tests (.ci/run installs Chromium); runtests.bat must not leave PYTHON and the statuses
    set in the caller's cmd window (setlocal before the first set)."""
    with open(os.path.join(REPOSITORY, ".ci", "run"), encoding="utf-8") as file:
        commands = [line.strip() for line in file if line.strip() and not line.startswith("#")]
    assert commands[-2:] == ["./setup.sh --with-browser", "./runtests.sh"]
    with open(os.path.join(REPOSITORY, "runtests.bat"), encoding="utf-8") as file:
        lines = [line.strip().lower() for line in file if line.strip() and not line.lower().startswith("rem ")]
    assert lines[:2] == ["@echo off", "setlocal"]
