"""lib.files: the one way to open an input and create an output."""
import gzip
import io
import os
import sys
import threading

import pytest

from lib import files

NAMES = ["plain.txt", "with space.txt", "Grüße.txt", "-leading-dash.txt", "new\nline.txt"]


@pytest.mark.parametrize("name", NAMES)
def test_an_input_with_an_unusual_name_is_read(tmp_path, name):
    path = tmp_path / name
    path.write_text("hallo\n", encoding="utf-8")
    with files.open_input(str(path), "--in") as handle:
        assert handle.read() == "hallo\n"


def test_a_symlinked_input_is_followed_and_a_relative_path_starts_in_the_working_folder(tmp_path, monkeypatch):
    (tmp_path / "real.txt").write_text("x")
    os.symlink(tmp_path / "real.txt", tmp_path / "link.txt")
    monkeypatch.chdir(tmp_path)
    with files.open_input("link.txt", "--in") as handle:
        assert handle.read() == "x"


def test_dash_reads_standard_input(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"von stdin\n")))
    with files.open_input("-", "--in") as handle:
        assert handle.read() == "von stdin\n"
    assert not sys.stdin.closed


def test_a_fifo_is_an_input_but_not_a_seekable_one(tmp_path):
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    assert files.check_input(fifo, "--in") == fifo
    with pytest.raises(ValueError, match="--in .*regular file"):
        files.check_input(fifo, "--in", seekable=True)
    with pytest.raises(ValueError, match="--in -: .*regular file"):
        files.check_input("-", "--in", seekable=True)


@pytest.mark.parametrize("make, error, words", [
    (lambda tmp: str(tmp), IsADirectoryError, "is a folder"),
    (lambda tmp: str(tmp / "missing.txt"), FileNotFoundError, "does not exist"),
    (lambda tmp: "", ValueError, "is empty"),
])
def test_a_bad_input_is_refused_in_one_line_naming_the_flag(tmp_path, make, error, words):
    with pytest.raises(error, match=words) as caught:
        files.check_input(make(tmp_path), "--in")
    assert "--in" in str(caught.value) and "\n" not in str(caught.value).replace(str(tmp_path), "")


def test_a_dangling_link_says_where_it_points(tmp_path):
    os.symlink(tmp_path / "gone.txt", tmp_path / "link.txt")
    with pytest.raises(FileNotFoundError, match="gone.txt, which does not exist"):
        files.check_input(str(tmp_path / "link.txt"), "--in")


@pytest.mark.parametrize("case", ["folder", "missing parent", "same as input", "same as input via link",
                                  "exists without force", "shipped file"])
def test_a_bad_output_is_refused_before_any_work(tmp_path, case):
    source = tmp_path / "in.txt"
    source.write_text("input")
    os.symlink(source, tmp_path / "link.txt")
    path, force = {"folder": (tmp_path, None), "missing parent": (tmp_path / "no" / "out.txt", None),
                   "same as input": (source, True), "same as input via link": (tmp_path / "link.txt", True),
                   "exists without force": (source, False),
                   "shipped file": (os.path.join(files.SHIPPED_DATA, "everyday.tsv"), True)}[case]
    inputs = [] if case == "exists without force" else [str(source)]
    with pytest.raises((OSError, ValueError)) as caught:
        files.check_output(str(path), "--out", force=force, inputs=inputs)
    assert "--out" in str(caught.value)
    assert source.read_text() == "input"


def test_an_output_is_allowed_where_it_is_new_forced_or_not_a_regular_file(tmp_path):
    existing = tmp_path / "old.txt"
    existing.write_text("old")
    assert files.check_output(str(tmp_path / "new.txt"), "--out")
    assert files.check_output(str(existing), "--out", force=True)
    assert files.check_output(os.devnull, "--out", inputs=[str(existing)])


def test_the_default_output_has_its_folder_made_and_is_replaced_by_a_rerun(tmp_path):
    default = tmp_path / "made" / "out.txt"
    files.check_output(str(default), "--out", default=str(default))
    assert default.parent.is_dir()
    default.write_text("the last run's")
    assert files.check_output(str(default), "--out", default=str(default))
    with pytest.raises(FileExistsError, match="--out .* already exists: add --force"):  # a trained model is kept
        files.check_output(str(default), "--out", default=str(default), rerun_replaces=False)
    other = tmp_path / "made" / "mine.txt"  # a file the user named is not the default, even in its folder
    other.write_text("mine")
    with pytest.raises(FileExistsError, match="add --force"):
        files.check_output(str(other), "--out", default=str(default))
    with pytest.raises(FileNotFoundError, match="the folder .*elsewhere does not exist"):
        files.check_output(str(tmp_path / "elsewhere" / "out.txt"), "--out", default=str(default))


def test_an_output_folder_is_made_and_proven_writable(tmp_path):
    files.check_output_folder(str(tmp_path / "new" / "deeper"), "--out-dir")
    assert os.listdir(tmp_path / "new" / "deeper") == []  # the probe file is removed
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(NotADirectoryError, match="--out-dir .* is a file; give a folder"):
        files.check_output_folder(str(a_file), "--out-dir")
    with pytest.raises(NotADirectoryError, match="file/x.png: .*file is a file, not a folder"):
        files.check_output(str(a_file / "x.png"), "--out")
    # /proc is not writable even for root: the probe write fails and the message names the flag.
    with pytest.raises(PermissionError, match="--out-dir /proc/self cannot be written"):
        files.check_output_folder("/proc/self", "--out-dir")
    with pytest.raises(PermissionError, match="--out /proc/self/x.png cannot be written"):
        files.check_output("/proc/self/x.png", "--out")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_an_unwritable_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="cannot be written"):
            files.check_output_folder(str(locked), "--out-dir")
    finally:
        locked.chmod(0o700)


def test_an_output_is_written_whole_or_not_at_all(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with files.atomic_output(str(path)) as handle:
            handle.write("half")
            raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["out.txt"]  # no temporary file left
    umask = os.umask(0o022)
    try:
        with files.atomic_output(str(path)) as handle:
            handle.write("new")
    finally:
        os.umask(umask)
    assert path.read_text() == "new"
    assert path.stat().st_mode & 0o777 == 0o644  # the usual permissions, not the temporary file's private ones


def test_a_symlinked_output_keeps_its_link_and_replaces_its_target(tmp_path):
    (tmp_path / "target.txt").write_text("old")
    os.symlink(tmp_path / "target.txt", tmp_path / "link.txt")
    with files.atomic_output(str(tmp_path / "link.txt")) as handle:
        handle.write("new")
    assert os.path.islink(tmp_path / "link.txt") and (tmp_path / "target.txt").read_text() == "new"


def test_a_non_regular_output_is_written_in_place_not_replaced(tmp_path):
    with files.atomic_output(os.devnull) as handle:
        handle.write("gone")
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)


LINES = "Grüße aus Köln.\tGreetings from Cologne.\nZweite Zeile.\tSecond line.\n" * 100
PACKED = gzip.compress(LINES.encode("utf-8"))
MUST_BE = "it must be UTF-8 text, plain or gzip"
# (case, file name, its bytes, the lines read or the error's regular expression): gzip is known by its first bytes,
# whatever the name; every error is one line naming the flag, the file, the line where known and what the file must be
TEXT_FILES = [
    ("plain", "plain.tsv", LINES.encode("utf-8"), LINES.splitlines(keepends=True)),
    ("byte-order mark dropped", "marked.tsv", b"\xef\xbb\xbf" + LINES.encode("utf-8"),
     LINES.splitlines(keepends=True)),
    ("gzip named .gz", "packed.tsv.gz", PACKED, LINES.splitlines(keepends=True)),
    ("gzip named .tsv", "packed.tsv", PACKED, LINES.splitlines(keepends=True)),
    ("plain named .gz", "plain.gz", LINES.encode("utf-8"), LINES.splitlines(keepends=True)),
    ("truncated gzip", "cut.tsv.gz", PACKED[:len(PACKED) // 2],
     rf"--in \S*cut.tsv.gz is a damaged gzip file: it ends before its compressed data does \(after line \d+\); "
     rf"{MUST_BE}: copy or compress it again"),
    ("damaged gzip", "bad.gz", PACKED[:10] + b"\xff" * 40,
     rf"--in \S*bad.gz is a damaged gzip file \(.*, after line 0\); {MUST_BE}"),
    ("UTF-16", "wide.tsv", LINES.encode("utf-16"),
     rf"--in \S*wide.tsv is UTF-16 text; {MUST_BE}: convert it, e.g. 'iconv -f utf-16 -t utf-8 \S*wide.tsv > "),
    ("Latin-1", "latin1.tsv", "Guten Tag.\nGrüße.\n".encode("latin-1"),
     rf"--in \S*latin1.tsv is not UTF-8 text: line 2 has the byte 0xfc at character 3; {MUST_BE}: convert it, e.g. "
     r"'iconv -f latin1 -t utf-8 \S*latin1.tsv > converted.txt' for Latin-1 text"),
    ("Latin-1 in gzip", "latin1.tsv", gzip.compress("Guten Tag.\nGrüße.\n".encode("latin-1")),
     r"--in \S*latin1.tsv is not UTF-8 text: line 2 has the byte 0xfc at character 3"),
    ("NUL byte", "binary.txt", b"Hallo\nab\x00c\n",
     rf"--in \S*binary.txt is a binary file, not text: line 2 holds a NUL byte; {MUST_BE}"),
]


@pytest.mark.parametrize("case, name, content, expected", TEXT_FILES, ids=[row[0] for row in TEXT_FILES])
def test_open_text_reads_plain_or_gzip_utf8_and_names_what_is_wrong_in_one_line(tmp_path, case, name, content,
                                                                                expected):
    path = tmp_path / name
    path.write_bytes(content)
    if isinstance(expected, list):
        with files.open_text(str(path), "--in") as lines:
            assert list(lines) == expected
        return
    with pytest.raises(ValueError, match=expected) as caught:
        with files.open_text(str(path), "--in") as lines:
            for _ in lines:  # errors arise while the lines are read, not only when the file is opened
                pass
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("case, content, expected", [
    ("plain", "Erste.\nZweite.\n".encode("utf-8"), ["Erste.\n", "Zweite.\n"]),
    ("gzip", gzip.compress("Erste.\nZweite.\n".encode("utf-8")), ["Erste.\n", "Zweite.\n"]),
    ("Latin-1", "Erste.\nGrüße.\n".encode("latin-1"),
     r"--in -: standard input is not UTF-8 text: line 2 has the byte 0xfc at character 3; it must be UTF-8 text, "
     r"plain or gzip: convert it, e.g. 'iconv -f latin1 -t utf-8' for Latin-1 text"),
])
def test_open_text_reads_standard_input_alike(monkeypatch, case, content, expected):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(content))))
    read = []
    if isinstance(expected, list):
        with files.open_text("-", "--in") as lines:
            read = list(lines)
        assert read == expected and not sys.stdin.closed
        return
    with pytest.raises(ValueError, match=expected):
        with files.open_text("-", "--in") as lines:
            read.extend(lines)
    assert read == ["Erste.\n"]  # the lines before the bad one were given first


def test_open_text_reads_a_pipe_as_it_comes(tmp_path):
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb") as writer:
            writer.write(gzip.compress(b"aus der Leitung\n"))
    writer = threading.Thread(target=write)
    writer.start()
    with files.open_text(fifo, "--in") as lines:
        assert list(lines) == ["aus der Leitung\n"]
    writer.join()
