"""One way to open an input and one way to create an output, for every path flag of the scripts and tools.

Inputs (:func:`check_input`, :func:`open_input`): ``-`` and ``/dev/stdin`` read standard input, as do ``/dev/fd/N``
and FIFOs; symlinks are followed; a relative path means the working folder. Outputs (:func:`check_output`,
:func:`atomic_output`): checked before any work, then written to a temporary file in the same folder and renamed, so
an interrupted run never leaves a partial file; an output that is not a regular file (``/dev/null``,
``/dev/stdout``, a FIFO) is written in place. Every check raises an OSError or ValueError whose one-line message
names the flag and says what works instead.
"""
import contextlib
import os
import stat
import sys
import tempfile

STDIN_NAMES = ("-", "/dev/stdin")
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED_DATA = os.path.join(REPOSITORY, "data")


def is_stdin(path):
    """True when ``path`` names standard input (``-`` or ``/dev/stdin``)."""
    return path in STDIN_NAMES


def _is_regular(path):
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def check_input(path, flag, seekable=False):
    """Return ``path`` if it can be read as the file of ``flag``; else raise a one-line error that says what to do.

    ``seekable``: the flag needs a regular file (read twice or by offset), so standard input, a FIFO or a device is
    refused with a line that says so.
    """
    if not path:
        raise ValueError(f"{flag} is empty; give a file name")
    if is_stdin(path) or (not os.path.isdir(path) and os.path.exists(path) and not _is_regular(path)):
        if seekable:
            raise ValueError(f"{flag} {path}: this flag needs a regular file that can be read twice, not standard "
                             f"input, a pipe or a device; save the input to a file and give its name")
        return path
    if os.path.isdir(path):
        raise IsADirectoryError(f"{flag} {path} is a folder; give a file")
    if os.path.islink(path) and not os.path.exists(path):
        raise FileNotFoundError(f"{flag} {path} is a link to {os.readlink(path)}, which does not exist")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{flag} {path} does not exist (relative paths start in {os.getcwd()})")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"{flag} {path} cannot be read (permissions)")
    return path


def open_input(path, flag, mode="r", encoding="utf-8", errors="strict"):
    """Open the checked input ``path`` for reading (``mode`` 'r' or 'rb'); ``-`` and ``/dev/stdin`` give standard
    input (not closed on exit)."""
    check_input(path, flag)
    if path == "-":
        stream = sys.stdin.buffer if "b" in mode else sys.stdin
        return contextlib.nullcontext(stream)
    if "b" in mode:
        return open(path, mode)
    return open(path, mode, encoding=encoding, errors=errors)


def same_file(first, second):
    """True when the two paths name the same file (symlinks and hard links followed; a missing path is no file)."""
    if is_stdin(first) or is_stdin(second):
        return False
    try:
        return os.path.samefile(first, second)
    except OSError:
        return os.path.realpath(first) == os.path.realpath(second)


def is_shipped(path):
    """True when ``path`` is an existing regular file in the repository's data/ (a file the project ships)."""
    real = os.path.realpath(path)
    return _is_regular(real) and os.path.commonpath([real, os.path.realpath(SHIPPED_DATA)]) == \
        os.path.realpath(SHIPPED_DATA)


def check_output(path, flag, force=None, inputs=(), make_folder=False):
    """Return ``path`` if ``flag`` may create it; else raise a one-line error that says what works.

    Refused: a folder, a missing parent folder (made instead where ``make_folder``, for defaults), a path that is
    also one of ``inputs``, a shipped file of data/, and an existing regular file unless ``force`` (None: the script
    has no --force, so it may be replaced). Non-regular outputs (/dev/null, /dev/stdout, a FIFO) are always allowed.
    """
    if not path:
        raise ValueError(f"{flag} is empty; give a file name")
    if path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise IsADirectoryError(f"{flag} {path} is a folder; give a file name inside it")
    for source in inputs:
        if source and os.path.exists(path) and same_file(path, source):
            raise ValueError(f"{flag} {path} is also an input; write the output to another file")
    if os.path.exists(path) and not _is_regular(path):
        return path  # a device or a FIFO: written in place
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"{flag} {path}: {os.path.dirname(path)} is a file, not a folder")
    if not os.path.exists(folder):
        if not make_folder:
            raise FileNotFoundError(f"{flag} {path}: the folder {os.path.dirname(path)} does not exist; make it "
                                    f"first or choose another {flag}")
        os.makedirs(folder, exist_ok=True)
    if is_shipped(path):
        raise ValueError(f"{flag} {path} is a file the project ships in data/; write to another file")
    if os.path.exists(path) and force is False:
        raise FileExistsError(f"{flag} {path} already exists: add --force to overwrite it, or choose another file")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise PermissionError(f"{flag} {path} cannot be written (permissions); choose another {flag}")
    return path


@contextlib.contextmanager
def atomic_output(path, mode="w", encoding="utf-8", suffix=""):
    """Context manager giving a file to write ``path``: a temporary file in the same folder, renamed onto ``path``
    when the block ends without an exception (removed otherwise). A non-regular ``path`` (/dev/null, /dev/stdout, a
    FIFO) is opened and written in place."""
    text = "b" not in mode
    if os.path.exists(path) and not _is_regular(path):
        with open(path, mode, encoding=encoding if text else None) as handle:
            yield handle
        return
    target = os.path.realpath(path)  # a symlinked output keeps its link: the file it points to is replaced
    folder = os.path.dirname(target)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(handle, mode, encoding=encoding if text else None) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes the file private; give it the usual permissions
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
