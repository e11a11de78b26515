"""One way to open an input and one way to create an output, for every path flag of the scripts and tools.

Inputs (:func:`check_input`, :func:`open_input`; :func:`open_text` for corpora and lists of text): ``-`` and
``/dev/stdin`` read standard input, as do ``/dev/fd/N`` and FIFOs; symlinks are followed; a relative path means the
working folder. Outputs (:func:`check_output`,
:func:`atomic_output`): checked before any work, then written to a temporary file in the same folder and renamed, so
an interrupted run never leaves a partial file; an output that is not a regular file (``/dev/null``,
``/dev/stdout``, a FIFO) is written in place. Every check raises an OSError or ValueError whose one-line message
names the flag and says what works instead.
"""
import contextlib
import gzip
import os
import stat
import sys
import tempfile
import zlib

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


def arrives_over_time(path):
    """True when the input ``path`` is not a regular file: a pipe, a terminal, a FIFO or a socket, whose lines come
    as another program or a person writes them (``-`` is judged by what standard input is)."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode if path == "-" else os.stat(path).st_mode
    except (OSError, ValueError, AttributeError):  # a closed or replaced standard input
        return True
    return not stat.S_ISREG(mode)


def check_input(path, flag, seekable=False, hint=""):
    """Return ``path`` if it can be read as the file of ``flag``; else raise a one-line error that says what to do.

    ``seekable``: the flag needs a regular file (read twice or by offset), so standard input, a FIFO or a device is
    refused with a line that says so. ``hint`` ends the message of a missing file or a folder: where such a file comes
    from (e.g. "train one with 'python train.py'").
    """
    hint = f"; {hint}" if hint else ""
    if not path:
        raise ValueError(f"{flag} is empty; give a file name")
    if is_stdin(path) or (not os.path.isdir(path) and os.path.exists(path) and not _is_regular(path)):
        if seekable:
            raise ValueError(f"{flag} {path}: this flag needs a regular file that can be read twice, not standard "
                             f"input, a pipe or a device; save the input to a file and give its name")
        return path
    if os.path.isdir(path):
        raise IsADirectoryError(f"{flag} {path} is a folder; give a file{hint}")
    if os.path.islink(path) and not os.path.exists(path):
        raise FileNotFoundError(f"{flag} {path} is a link to {os.readlink(path)}, which does not exist{hint}")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{flag} {path} does not exist (relative paths start in {os.getcwd()}){hint}")
    if not os.access(path, os.R_OK):
        raise PermissionError(f"{flag} {path} cannot be read (permissions)")
    return path


def open_input(path, flag, mode="r", encoding="utf-8", errors="strict", hint=""):
    """Open the checked input ``path`` for reading (``mode`` 'r' or 'rb'; ``hint`` as for :func:`check_input`); ``-``
    and ``/dev/stdin`` give standard input (not closed on exit)."""
    check_input(path, flag, hint=hint)
    if path == "-":
        stream = sys.stdin.buffer if "b" in mode else sys.stdin
        return contextlib.nullcontext(stream)
    if "b" in mode:
        return open(path, mode)
    return open(path, mode, encoding=encoding, errors=errors)


GZIP_MAGIC = b"\x1f\x8b"
UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")
PLAIN_OR_GZIP = "UTF-8 text, plain or gzip"


@contextlib.contextmanager
def open_text(path, flag, must_be=PLAIN_OR_GZIP, hint=""):
    """Open the checked input ``path`` of ``flag`` (a file, or standard input for ``-``) as text: gzip data is
    decompressed, known by its first bytes whatever the name. Gives an iterator of its UTF-8 lines (newlines kept, a
    leading byte-order mark dropped). A line that is not UTF-8 or holds a NUL byte, UTF-16 text and damaged or
    truncated gzip data raise, while the lines are read, a one-line ValueError that names ``flag``, the file, the
    line and what the file ``must_be``. ``hint``: as for :func:`check_input`."""
    if path == "-" and sys.stdin is None:
        raise ValueError(f"{flag} -: standard input is closed; pipe text into it or give a file")
    if path == "-" and getattr(sys.stdin, "buffer", None) is None:  # a text stream put in place of standard input
        check_input(path, flag, hint=hint)
        yield iter(sys.stdin)
        return
    with open_input(path, flag, "rb", hint=hint) as raw:
        compressed = _starts_with(raw, GZIP_MAGIC)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        try:
            yield _text_lines(stream, path, flag, must_be)
        finally:
            if compressed:
                stream.close()  # the decompressor only: ``raw`` is closed by open_input (standard input never)


def _starts_with(stream, magic):
    """Whether the binary ``stream`` starts with ``magic``, read without consuming it."""
    if hasattr(stream, "peek"):
        return stream.peek(len(magic))[:len(magic)] == magic
    if stream.seekable():
        start = stream.tell()
        head = stream.read(len(magic))
        stream.seek(start)
        return head == magic
    return False


def bad_byte(line, error):
    """'the byte 0x.. at character N' for the UnicodeDecodeError ``error`` of the bytes ``line`` (N counts the
    characters before it, from 1)."""
    return f"the byte 0x{line[error.start]:02x} at character {len(line[:error.start].decode('utf-8')) + 1}"


def _text_lines(stream, path, flag, must_be):
    """The decoded lines of the binary ``stream`` read from ``path``; open_text's errors."""
    name = f"{flag} -: standard input" if path == "-" else f"{flag} {path}"
    target = "" if path == "-" else f" {path} > converted.txt"
    number = 0
    try:
        for number, line in enumerate(stream, 1):
            if number == 1 and line.startswith(UTF16_MARKS):
                raise ValueError(f"{name} is UTF-16 text; it must be {must_be}: convert it, e.g. 'iconv -f utf-16 -t "
                                 f"utf-8{target}'")
            try:
                text = line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise ValueError(f"{name} is not UTF-8 text: line {number} has {bad_byte(line, error)}; it must be "
                                 f"{must_be}: convert it, e.g. 'iconv -f latin1 -t utf-8{target}' for Latin-1 "
                                 "text") from None
            if "\0" in text:
                raise ValueError(f"{name} is a binary file, not text: line {number} holds a NUL byte; it must be "
                                 f"{must_be}")
            yield text
    except EOFError:
        raise ValueError(f"{name} is a damaged gzip file: it ends before its compressed data does (after line "
                         f"{number}); it must be {must_be}: copy or compress it again") from None
    except (gzip.BadGzipFile, zlib.error) as error:
        raise ValueError(f"{name} is a damaged gzip file ({error}, after line {number}); it must be {must_be}: copy "
                         "or compress it again") from None


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


def check_output(path, flag, force=False, inputs=(), default=None, rerun_replaces=True):
    """Return ``path`` if ``flag`` may create it; else raise a one-line error that says what works.

    Refused: a folder, a path that is also one of ``inputs``, a shipped file of data/, a missing parent folder, and
    an existing regular file unless ``force`` (the script's --force): nothing a user made is replaced without it.
    ``default``: the script's own default output (e.g. results/attention.png): its folder is made, and where
    ``rerun_replaces`` a rerun replaces it without --force (False for outputs of long work, such as a trained model).
    Non-regular outputs (/dev/null, /dev/stdout, a FIFO) are always allowed: they are written in place.
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
    is_default = default is not None and os.path.abspath(path) == os.path.abspath(default)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"{flag} {path}: {os.path.dirname(path)} is a file, not a folder")
    if not os.path.exists(folder):
        if not is_default:
            raise FileNotFoundError(f"{flag} {path}: the folder {os.path.dirname(path)} does not exist; make it "
                                    f"first or choose another {flag}")
        check_output_folder(folder, flag)
    if is_shipped(path):
        raise ValueError(f"{flag} {path} is a file the project ships in data/; write to another file")
    if os.path.exists(path) and not force and not (is_default and rerun_replaces):
        raise FileExistsError(f"{flag} {path} already exists: add --force to overwrite it, or choose another file")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise PermissionError(f"{flag} {path} cannot be written (permissions); choose another {flag}")
    return path


def check_output_folder(folder, flag):
    """Make the output ``folder`` of ``flag`` if needed and prove it can be written (a temporary file is written
    and removed); else raise a one-line error that says what to do."""
    if not folder:
        raise ValueError(f"{flag} is empty; give a folder")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise NotADirectoryError(f"{flag} {folder} is a file; give a folder")
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise PermissionError(f"{flag} {folder} cannot be written ({error.strerror or error}); "
                              f"choose another {flag}") from None
    return folder


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
