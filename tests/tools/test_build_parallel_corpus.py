"""tools/build_parallel_corpus.py on packages the tests make themselves (no network): the tsv and its tables, and
the gates: inputs, outputs, failures that keep the old corpus, upper bounds."""
import gzip
import os
import signal
import subprocess
import sys
import time

import polib
import pytest

from lib.translation.corpus import Pair, split_of
from lib.debian_corpus import fetch
from tests.helpers import KEEP, build_deb


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


SCRIPT = os.path.join(ROOT, "tools", "build_parallel_corpus.py")


def ding_with_heldout(path, count=1):
    """A tiny Ding file whose first ``count`` valid-or-test sentences are known; returns (file, held-out pairs)."""
    lines, heldout, number = [], [], 0
    while len(heldout) < count:
        number += 1
        pair = Pair(f"Der Zug {number} fährt ab.", f"Train {number} leaves.", True)
        lines.append(f"{pair.german} :: {pair.english}")
        if split_of(pair) != "train":
            heldout.append(pair)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path), heldout


def test_the_script_builds_the_tsv_from_debs_and_removes_held_out_sentences(deb_dir, tmp_path):
    ding, heldout = ding_with_heldout(tmp_path / "ding.txt")
    catalogue = polib.mofile(os.path.join(str(tmp_path), "catalogue", "demo.mo"))
    catalogue.append(polib.POEntry(msgid=heldout[0].english.upper(), msgstr="Etwas ganz anderes hier."))
    catalogue.save(os.path.join(str(tmp_path), "catalogue", "demo.mo"))
    os.remove(fetch.deb_path("demo-data", deb_dir))
    build_deb(deb_dir, "demo-data", {"de": os.path.join(str(tmp_path), "catalogue", "demo.mo")})
    sources = tmp_path / "sources.tsv"
    sources.write_text("demo-data\tgames\tgettext\n")
    out = tmp_path / "corpus" / "out.tsv"
    out.parent.mkdir()  # a missing folder of --out is refused, not made
    command = [sys.executable, SCRIPT, "--sources", str(sources), "--deb-dir", deb_dir, "--cache-dir",
               str(tmp_path / "cache"), "--out", str(out), "--ding", ding, "--jobs", "1", "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(len(row) == 4 for row in rows)
    assert sorted(row[:2] for row in rows) == sorted([list(KEEP), ["Ein roter Apfel", "One red apple"],
                                                      ["Viele rote Äpfel", "Many red apples"],
                                                      ["Öffne die Tür", "Open the door"]])
    assert {row[2] for row in rows} == {"games"} and {row[3] for row in rows} == {"demo-data"}
    package_table = (tmp_path / "corpus" / "out.packages.tsv").read_text().splitlines()
    assert len(package_table) == 2 and package_table[1].startswith("demo-data\tgames\t4\t")
    assert "GPL-2+" in package_table[1]
    assert "| games | 4 |" in (tmp_path / "corpus" / "out.sources.md").read_text()
    again = subprocess.run(command + ["--force"], capture_output=True, text=True, cwd=ROOT)  # from the cache
    assert again.returncode == 0 and out.read_text(encoding="utf-8").count("\n") == 4


def test_the_script_explains_an_unknown_kind(tmp_path):
    result = subprocess.run([sys.executable, SCRIPT, "--only", "poetry", "--cache-dir", str(tmp_path),
                             "--out", str(tmp_path / "out.tsv")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "error: --only poetry" in result.stderr and "Traceback" not in result.stderr


def run_builder(tmp_path, *flags):
    """Run the builder with a tiny Ding file and --no-progress; returns the CompletedProcess."""
    ding, _ = ding_with_heldout(tmp_path / "ding.txt")
    defaults = {"--cache-dir": str(tmp_path / "cache"), "--ding": ding, "--jobs": "1"}
    for flag, value in defaults.items():
        if flag not in flags:
            flags += (flag, value)
    return subprocess.run([sys.executable, SCRIPT, *flags, "--no-progress"], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def one_error_line(result):
    """The one line the builder ended with; checks that there is no traceback."""
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


def test_a_failed_source_keeps_the_old_corpus_and_fails(tmp_path):
    sources = tmp_path / "sources.tsv"
    sources.write_text("demo-data\tgames\tgettext\n")
    out = tmp_path / "out.tsv"
    out.write_text("Guter Satz.\tGood sentence.\tgames\tdemo-data\n")
    (tmp_path / "empty").mkdir()
    result = run_builder(tmp_path, "--sources", str(sources), "--out", str(out), "--deb-dir", str(tmp_path / "empty"),
                         "--force")
    assert "1 of 1 sources failed" in one_error_line(result)
    assert f"kept {out} as it was" in result.stdout
    assert out.read_text() == "Guter Satz.\tGood sentence.\tgames\tdemo-data\n"


@pytest.mark.parametrize("case, words", [
    ("empty sources", "lists no package"),
    ("utf-16 sources", "is UTF-16 text; it must be UTF-8 text, plain or gzip"),
    ("latin-1 sources", "is not UTF-8 text: line 1 has the byte 0xe9 at character 4"),
    ("gzip sources of nothing", "lists no package"),
    ("out is the sources", "is also an input"),
    ("out is a shipped file", "a file the project ships in data/"),
    ("out in a missing folder", "does not exist; make it first"),
    ("missing ding", "--ding"),
    ("ding is a folder", "--ding"),
    ("ding in latin-1", "is not UTF-8 text: line 1 has the byte 0xe4 at character 10; it must be UTF-8 text, plain or "
                        "gzip"),
    ("ding a truncated gzip", "is a damaged gzip file: it ends before its compressed data does"),
])
def test_a_request_that_cannot_work_is_refused_in_one_line_before_any_download(tmp_path, case, words):
    sources = tmp_path / "sources.tsv"
    line = "demo-data\tgames\tgettext\n"
    content = {"empty sources": b"# nothing\n", "utf-16 sources": line.encode("utf-16"),
               "latin-1 sources": "caf\xe9\tgames\tgettext\n".encode("latin-1"),
               "gzip sources of nothing": gzip.compress(b"# nothing\n")}.get(case, line.encode())
    sources.write_bytes(content)
    out = {"out is the sources": str(sources), "out is a shipped file": os.path.join(ROOT, "data", "everyday.tsv"),
           "out in a missing folder": str(tmp_path / "no" / "out.tsv")}.get(case, str(tmp_path / "out.tsv"))
    flags = ["--sources", str(sources), "--out", out, "--deb-dir", str(tmp_path)]
    if case in ("missing ding", "ding is a folder"):
        flags += ["--ding", str(tmp_path / "nonexistent" / "de-en") if case == "missing ding" else str(tmp_path)]
    if case in ("ding in latin-1", "ding a truncated gzip"):
        ding = tmp_path / "de-en"
        text = "Der Zug fährt ab. :: The train leaves.\n" * 300
        ding.write_bytes(text.encode("latin-1") if case == "ding in latin-1" else gzip.compress(text.encode())[:40])
        flags += ["--ding", str(ding)]
        words = f"error: --ding {ding} {words}"
    assert words in one_error_line(run_builder(tmp_path, *flags))
    assert sources.read_bytes() == content and not os.path.exists(tmp_path / "cache" / "debs")


def test_the_advice_for_a_missing_dictionary_names_the_builders_own_flag(tmp_path, monkeypatch):
    import importlib.util
    spec = importlib.util.spec_from_file_location("build_parallel_corpus", SCRIPT)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(tool, "DING", str(tmp_path / "not-installed"))
    args = tool.build_parser().parse_args(["--out", str(tmp_path / "out.tsv"), "--cache-dir", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="--ding PATH") as caught:
        tool.main(args)
    assert "--corpus" not in str(caught.value)


def test_every_number_flag_of_the_builder_has_an_upper_bound():
    import importlib.util
    spec = importlib.util.spec_from_file_location("build_parallel_corpus", SCRIPT)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    parser = tool.build_parser()
    flags = [action.option_strings[0] for action in parser._actions
             if getattr(action.type, "__name__", "") in ("integer", "number")]
    assert flags == ["--jobs"]
    for flag in flags:
        with pytest.raises(SystemExit):
            parser.parse_args([flag, str(10 ** 15)])


def stop_by(signum):
    """A function that sends ``signum`` to this process, as Ctrl-C or kill would while the build works."""
    def stop(*args, **kwargs):
        os.kill(os.getpid(), signum)
        time.sleep(10)  # the signal arrives first
    return stop


@pytest.mark.parametrize("signum, how", [(signal.SIGINT, "interrupted"), (signal.SIGTERM, "stopped by SIGTERM")],
                         ids=["SIGINT", "SIGTERM"])
def test_a_stop_during_the_build_keeps_the_old_corpus_and_says_so_in_one_line(
        signum, how, tmp_path, capsys, monkeypatch):
    import importlib.util
    from tests.helpers import cli_outcome
    spec = importlib.util.spec_from_file_location("build_parallel_corpus", SCRIPT)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(tool, "build", stop_by(signum))
    ding, _ = ding_with_heldout(tmp_path / "ding.txt")
    sources, out = tmp_path / "sources.tsv", tmp_path / "out.tsv"
    sources.write_text("demo-data\tgames\tgettext\n")
    out.write_text("old corpus\n")
    flags = ["--sources", str(sources), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--ding", ding,
             "--deb-dir", str(tmp_path), "--no-progress", "--force"]
    code, printed = cli_outcome(tool.build_parser().parse_args, tool.main, flags, capsys)
    assert code == 128 + signum and out.read_text() == "old corpus\n"
    assert printed == (f"{how}: {out} was left as it was; the packages fetched and unpacked so far stay in "
                       f"{tmp_path / 'cache'} for the next run\n")
