"""lib/training/run_folder.py: the run folder's lock never ends another process, on any system. Liveness is asked
with signal 0 on POSIX and through the Windows API on Windows (simulated here: os.kill must not be called there, since
on Windows it terminates the process); a real process that holds the lock survives being checked, and a lock left by
an ended process is taken over."""
import ctypes
import os
import re
import socket
import subprocess
import sys

import pytest

from lib.training import run_folder
from lib.training.run_folder import LOCK_FILE, RunLock, check_new_run, check_resumable, process_alive


class FakeKernel32:
    """The three kernel32 calls process_alive makes on Windows, answering for the processes in ``exit_codes``."""

    def __init__(self, exit_codes):
        self.exit_codes, self.closed = exit_codes, []

    def OpenProcess(self, access, inherit, pid):
        return pid if pid in self.exit_codes else 0

    def GetExitCodeProcess(self, handle, code):
        code._obj.value = self.exit_codes[handle]
        return 1

    def CloseHandle(self, handle):
        self.closed.append(handle)


@pytest.fixture
def windows(monkeypatch):
    """Windows (run_folder.ON_WINDOWS), a fake kernel32 (process 11 running, 12 ended), and os.kill that fails the
    test if called."""
    kernel32 = FakeKernel32({11: 259, 12: 0})
    monkeypatch.setattr(run_folder, "ON_WINDOWS", True)
    monkeypatch.setattr(ctypes, "windll", type("WinDLL", (), {"kernel32": kernel32}), raising=False)
    monkeypatch.setattr(ctypes, "GetLastError", lambda: 87, raising=False)  # ERROR_INVALID_PARAMETER: no process
    monkeypatch.setattr(os, "kill", lambda *args: pytest.fail("os.kill would terminate the process on Windows"))
    return kernel32


def test_on_windows_liveness_comes_from_the_exit_code_and_never_from_os_kill(windows):
    assert process_alive(11) is True
    assert process_alive(12) is False  # ended: its exit code is not STILL_ACTIVE
    assert process_alive(13) is False  # no such process
    assert windows.closed == [11, 12]


def test_on_windows_a_lock_held_by_a_running_process_is_refused_and_a_stale_one_taken_over(windows, tmp_path):
    lock = tmp_path / LOCK_FILE
    lock.write_text(f"11 {socket.gethostname()}\n")
    with pytest.raises(RuntimeError, match="in use by the run of process 11"):
        with RunLock(str(tmp_path)):
            pass
    lock.write_text(f"12 {socket.gethostname()}\n")
    with RunLock(str(tmp_path)):
        assert lock.read_text() == f"{os.getpid()} {socket.gethostname()}\n"
    assert not lock.exists()


def test_posix_liveness_sends_only_signal_0(monkeypatch):
    sent = []
    monkeypatch.setattr(run_folder, "ON_WINDOWS", False)
    monkeypatch.setattr(os, "kill", lambda pid, signal: sent.append((pid, signal)))
    assert process_alive(4242) is True and sent == [(4242, 0)]


@pytest.mark.skipif(run_folder.ON_WINDOWS, reason="a POSIX process check")
def test_the_holder_of_the_lock_survives_being_checked(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK_FILE).write_text(f"{holder.pid} {socket.gethostname()}\n")
        for _ in range(3):
            with pytest.raises(RuntimeError, match=f"in use by the run of process {holder.pid}"):
                with RunLock(str(tmp_path)):
                    pass
        assert holder.poll() is None  # still running
        assert (tmp_path / LOCK_FILE).read_text().split()[0] == str(holder.pid)  # and still holding the lock
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_an_ended_process_is_taken_over(tmp_path):
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    (tmp_path / LOCK_FILE).write_text(f"{ended.pid} {socket.gethostname()}\n")
    with RunLock(str(tmp_path)) as lock:
        assert lock.held
    assert not (tmp_path / LOCK_FILE).exists()


def test_the_module_keeps_no_other_liveness_check():
    source = open(run_folder.__file__, encoding="utf-8").read()
    assert source.count("os.kill(") == 1  # the POSIX branch of process_alive alone


# (what the folder holds (None: no folder), the error of a resume (None: none), that of a new run (None: none))
FOLDERS = [
    (None, r"^--out-dir {out} does not exist, so there is no run to resume: check the folder name, or start a new "
           r"run without --resume$", None),
    ("a file", r"^--out-dir {out} is not a folder, so there is no run to resume", None),
    ((), r"^--out-dir {out} holds no run to resume \(no last.pth\): start a new run without --resume$", None),
    (("last.pth", "best.pth", "log.jsonl"), None,
     r"^--out-dir {out} holds a run \(last.pth, best.pth, log.jsonl\): continue it with --resume, or start over with "
     r"--force \(which deletes those files\), or choose another --out-dir$"),
    (("best.pth", "log.jsonl"),
     r"^{out}/last.pth is missing, so the run cannot continue where it stopped; to keep its best.pth, start a new run "
     r"from its weights with --init-from '{out}/best.pth' --out-dir ANOTHER_FOLDER \(a fresh optimizer and "
     r"schedule\); or start over here with --force \(which deletes best.pth\)$",
     r"^--out-dir {out} holds a run \(best.pth, log.jsonl\): it has no last.pth to resume; to keep its best.pth, start "
     r"a new run from its weights with --init-from '{out}/best.pth' --out-dir ANOTHER_FOLDER .*, or start over with "
     r"--force"),
    (("log.jsonl",), r"holds no run to resume \(no last.pth\)",
     r"holds a run \(log.jsonl\): it has no last.pth to resume, or start over with --force"),
]


@pytest.mark.parametrize("holds, resumed, started", FOLDERS, ids=[str(row[0]) for row in FOLDERS])
def test_what_a_run_folder_allows_is_said_before_anything_is_made(tmp_path, holds, resumed, started):
    out = tmp_path / "run ü"  # a name the shell must quote
    if holds == "a file":
        out.write_text("")
    elif holds is not None:
        out.mkdir()
        for name in holds:
            (out / name).write_text("")
    before = sorted(tmp_path.rglob("*"))
    for check, error, message in ((check_resumable, FileNotFoundError, resumed),
                                  (check_new_run, FileExistsError, started)):
        if message is None:
            check(str(out))
        else:
            with pytest.raises(error) as raised:
                check(str(out))
            assert re.search(message.format(out=re.escape(str(out))), str(raised.value)), str(raised.value)
    assert sorted(tmp_path.rglob("*")) == before


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
