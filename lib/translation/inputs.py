"""German text to translate, one sentence a line, from a file or standard input: checked before any work (UTF-8
throughout, no NUL byte), with errors that name the line and say how to convert the text."""
from lib.translation.corpus import bad_byte, not_utf8_error


def scan_input(path, flag="--input"):
    """Check the text file ``path`` (given as ``flag``) before any work: UTF-8 throughout and no NUL byte (else a
    ValueError naming the line). Returns its number of lines."""
    count = 0
    with open(path, "rb") as file:
        for count, line in enumerate(file, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                raise not_utf8_error(path, f"{flag} file") from None
            if b"\0" in line:
                raise ValueError(nul_error(f"{flag} {path}", count))
    return count


def nul_error(what, number):
    """The message for a NUL byte on line ``number`` of ``what`` (a binary file given as text)."""
    return (f"{what} is a binary file, not text: line {number} holds a NUL byte; give a UTF-8 text file, one German "
            "sentence a line")


def standard_input_lines(stdin):
    """The lines of ``stdin`` (sys.stdin), decoded as UTF-8 one at a time as they are read (a byte order mark on the
    first is dropped); a line that is not UTF-8 or holds a NUL byte raises a ValueError naming it."""
    buffer = getattr(stdin, "buffer", None)
    if buffer is None:  # a text stream put in place of stdin
        yield from stdin
        return
    for number, raw in enumerate(buffer, 1):
        try:
            line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"standard input is not UTF-8 text: line {number} has {bad_byte(raw, error)}; convert "
                             "it, e.g. with 'iconv -f latin1 -t utf-8'") from None
        if "\0" in line:
            raise ValueError(nul_error("standard input", number))
        yield line
