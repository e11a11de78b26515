"""A training run's folder (``--out-dir``): the files a run writes, starting over in a folder that holds a run, and the
lock file that keeps two processes from writing one run at once."""
import os
import shlex
import shutil
import socket

from lib.files import check_output_folder

# What a run writes into its folder (besides the lock): refused without --force, deleted by it.
LAST_FILE, BEST_FILE = "last.pth", "best.pth"
RUN_FILES = (LAST_FILE, BEST_FILE, "log.jsonl", "snapshots")
LOCK_FILE = "run.lock"
ON_WINDOWS = os.name == "nt"


def run_files(out_dir):
    """The RUN_FILES that exist in ``out_dir``."""
    return [name for name in RUN_FILES if os.path.lexists(os.path.join(out_dir, name))]


def check_new_run(out_dir, force=False):
    """Before a new (not resumed) run: refuse an ``out_dir`` that holds a run unless ``force``."""
    found = run_files(out_dir)
    if found and not force:
        if os.path.isfile(os.path.join(out_dir, LAST_FILE)):
            keep = "continue it with --resume"
        elif os.path.isfile(os.path.join(out_dir, BEST_FILE)):
            keep = f"it has no {LAST_FILE} to resume; {_from_best(out_dir)}"
        else:
            keep = f"it has no {LAST_FILE} to resume"
        raise FileExistsError(f"--out-dir {out_dir} holds a run ({', '.join(found)}): {keep}, or start over with "
                              "--force (which deletes those files), or choose another --out-dir")


def check_resumable(out_dir):
    """Before anything is made or read for ``--resume``: raise a one-line error unless ``out_dir`` holds a run's
    last.pth, saying what works instead (a missing folder is never created; a best.pth is never only offered to
    --force)."""
    last_path = os.path.join(out_dir, LAST_FILE)
    if os.path.isfile(last_path):
        return
    if not os.path.isdir(out_dir):
        what = "is not a folder" if os.path.lexists(out_dir) else "does not exist"
        raise FileNotFoundError(f"--out-dir {out_dir} {what}, so there is no run to resume: check the folder name, "
                                "or start a new run without --resume")
    if os.path.isfile(os.path.join(out_dir, BEST_FILE)):
        raise FileNotFoundError(f"{last_path} is missing, so the run cannot continue where it stopped; "
                                f"{_from_best(out_dir)}; or start over here with --force (which deletes best.pth)")
    raise FileNotFoundError(f"--out-dir {out_dir} holds no run to resume (no {LAST_FILE}): start a new run without "
                            "--resume")


def _from_best(out_dir):
    """How to go on from the best.pth of a run without last.pth, keeping it."""
    best_path = shlex.quote(os.path.join(out_dir, BEST_FILE))
    return (f"to keep its best.pth, start a new run from its weights with --init-from {best_path} --out-dir "
            "ANOTHER_FOLDER (a fresh optimizer and schedule)")


def clear_run(out_dir):
    """Delete the files of an earlier run in ``out_dir`` (what --force promises); the lock stays."""
    for name in run_files(out_dir):
        path = os.path.join(out_dir, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def process_alive(pid):
    """Whether process ``pid`` runs on this machine, asked without touching it on every system: on Windows
    ``os.kill`` would end the process, so there the process is opened through the Windows API and its exit code
    read; elsewhere signal 0 is sent, which only checks."""
    if ON_WINDOWS:
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _windows_process_alive(pid):
    import ctypes
    query_limited_information, still_active = 0x1000, 259
    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(query_limited_information, False, pid)
    if not handle:  # no such process, or one we may not open: only an existing process refuses access
        return ctypes.GetLastError() == 5  # ERROR_ACCESS_DENIED
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == still_active
    finally:
        kernel32.CloseHandle(handle)


def _create_with(path, text):
    """Create ``path`` holding ``text`` unless it exists (atomically: no reader sees it half written). Returns
    whether it was created."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w") as file:
        file.write(text)
    try:
        os.link(temporary, path)
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links
        try:
            with open(path, "x") as file:
                file.write(text)
            return True
        except FileExistsError:
            return False
    finally:
        os.remove(temporary)


class RunLock:
    """A context manager: ``out_dir/run.lock`` holds "PID HOST" of the process that writes the run. A second process
    raises at once (naming the first's PID); a lock left by a process that no longer runs (on this host) is taken
    over. Only the lock this process made is removed at the end."""

    def __init__(self, out_dir):
        self.path = os.path.join(out_dir, LOCK_FILE)
        self.mine = f"{os.getpid()} {socket.gethostname()}\n"
        self.held = False

    def holder(self):
        """(pid, host) written in the lock file, or None when it is unreadable."""
        try:
            with open(self.path) as file:
                pid, host = file.read().split()
            return int(pid), host
        except (OSError, ValueError):
            return None

    def __enter__(self):
        check_output_folder(os.path.dirname(self.path) or ".", "--out-dir")
        for _ in range(3):
            if _create_with(self.path, self.mine):
                self.held = True
                return self
            holder = self.holder()
            if holder is not None and holder[1] != socket.gethostname():
                raise RuntimeError(f"--out-dir {os.path.dirname(self.path)} is in use by process {holder[0]} on "
                                   f"{holder[1]} ({self.path}): choose another --out-dir, or delete the lock file if "
                                   "that run has ended")
            if holder is not None and holder[0] != os.getpid() and process_alive(holder[0]):
                raise RuntimeError(f"--out-dir {os.path.dirname(self.path)} is in use by the run of process "
                                   f"{holder[0]} ({self.path}): wait for it to end (or stop it), or choose another "
                                   "--out-dir")
            try:  # left by a process that has ended (killed): take it over
                os.remove(self.path)
            except FileNotFoundError:
                pass
        raise RuntimeError(f"could not take the lock {self.path}: another process keeps taking it")

    def __exit__(self, *exc):
        if self.held and self.holder() == (os.getpid(), socket.gethostname()):
            try:
                os.remove(self.path)
            except OSError:  # e.g. the folder was made read-only: the next run takes the stale lock over
                pass
        self.held = False
