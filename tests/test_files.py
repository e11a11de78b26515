"""lib.files: the one way to open an input and create an output."""
import os
import sys

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
    import io
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
    assert files.check_output(str(tmp_path / "new.txt"), "--out", force=False)
    assert files.check_output(str(existing), "--out", force=True)
    assert files.check_output(str(existing), "--out")  # a script without --force replaces its output
    assert files.check_output(os.devnull, "--out", force=False, inputs=[str(existing)])
    made = tmp_path / "made" / "out.txt"
    files.check_output(str(made), "--out", make_folder=True)
    assert made.parent.is_dir()


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
