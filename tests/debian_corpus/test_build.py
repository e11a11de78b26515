"""lib.debian_corpus.build, fetch, gettext and report on catalogues and packages the tests make themselves (no network):
gettext reading, selective unpacking of a .deb built with dpkg-deb, duplicates, held-out and everyday sentences, the
workers."""
import os
import subprocess
from collections import Counter

import pytest

from lib.translation.corpus import Pair, comparison_key, held_out_keys, is_held_out
from lib.debian_corpus import fetch
from lib.debian_corpus.build import clean_pairs, merge, package_licence, SourceResult
from lib.debian_corpus.gettext import GERMAN_CATALOGUE, catalogue_pairs
from lib.debian_corpus.sources import Source
from tests.helpers import KEEP, write_catalogue


def test_clean_pairs_splits_sentences_and_counts_what_it_drops():
    dropped = Counter()
    pairs = clean_pairs([("Er kommt heute. Sie geht morgen.", "He comes today. She leaves tomorrow."),
                         ("%s Dateien", "%s files"), ("Datei", "Datei")], dropped)
    assert pairs == [("Er kommt heute.", "He comes today."), ("Sie geht morgen.", "She leaves tomorrow.")]
    assert dropped == Counter(placeholder=1, untranslated=1)


EXPECTED_RAW = {KEEP, ("Ein roter Apfel", "One red apple"), ("Viele rote Äpfel", "Many red apples"),
                ("Öffne die Tür", "Open the door")}


@pytest.mark.parametrize("which", [0, 1])
def test_gettext_pairs_read_plurals_and_contexts_and_skip_fuzzy_obsolete_and_credits(tmp_path, which):
    path = write_catalogue(str(tmp_path))[which]
    untranslated = {("", "Not translated")} if which == 0 else set()  # msgfmt leaves these out of a .mo
    assert set(catalogue_pairs(path)) == EXPECTED_RAW | untranslated


def test_a_broken_catalogue_is_a_clear_error(tmp_path):
    path = tmp_path / "broken.mo"
    path.write_bytes(b"not a catalogue at all")
    with pytest.raises(ValueError, match="not a readable gettext catalogue"):
        catalogue_pairs(str(path))


@pytest.mark.parametrize("path, german", [("usr/share/locale/de/LC_MESSAGES/app.mo", True),
                                          ("usr/share/locale/de_DE/LC_MESSAGES/app.mo", True),
                                          ("usr/share/games/flare/languages/data.de.po", True),
                                          ("usr/share/supertux2/levels/de.po", True),
                                          ("usr/share/locale/fr/LC_MESSAGES/app.mo", False),
                                          ("usr/share/locale/de_CH/LC_MESSAGES/app.mo", False),
                                          ("usr/share/app/code.po", False)])
def test_german_catalogues_are_recognised_by_path(path, german):
    assert bool(GERMAN_CATALOGUE.search(path)) == german


def test_unpack_writes_only_the_wanted_members_and_marks_the_package(deb_dir, tmp_path):
    from lib.debian_corpus.build import unpack_patterns
    destination = str(tmp_path / "unpacked")
    wanted = unpack_patterns([Source("demo-data", "games", "gettext")])["demo-data"]
    written = fetch.unpack(fetch.deb_path("demo-data", deb_dir), destination, wanted)
    assert sorted(written) == ["usr/share/doc/demo-data/copyright", "usr/share/locale/de/LC_MESSAGES/demo.mo"]
    assert not os.path.exists(os.path.join(destination, "usr", "bin"))
    assert os.path.exists(os.path.join(destination, fetch.DONE_MARKER))
    assert package_licence("demo-data", destination) == "GPL-2+ / CC-BY-SA-4.0"


def test_a_broken_deb_is_a_clear_error(tmp_path):
    deb = tmp_path / "broken_1.0_all.deb"
    deb.write_bytes(b"!<arch>\nnonsense")
    with pytest.raises((RuntimeError, OSError, Exception), match="dpkg-deb|tar|file"):
        fetch.unpack(str(deb), str(tmp_path / "out"), GERMAN_CATALOGUE)


def test_download_skips_packages_already_in_the_cache(deb_dir, monkeypatch):
    def no_apt(*args, **kwargs):
        raise AssertionError("apt-get was called for a cached package")
    monkeypatch.setattr(fetch.subprocess, "run", no_apt)
    done = []
    assert fetch.download(["demo-data"], deb_dir, done.append) == []
    assert done == [1]


def test_missing_tools_and_a_short_disk_are_clear_errors(monkeypatch, tmp_path):
    monkeypatch.setattr(fetch.shutil, "which", lambda tool: None)
    with pytest.raises(RuntimeError, match="apt-get is missing.*Debian"):
        fetch.download(["demo-data"], str(tmp_path))
    with pytest.raises(OSError, match="GiB free.*--cache-dir"):
        fetch.check_disk(str(tmp_path), 10 ** 18)


def result_of(package, pairs):
    return SourceResult(Source(package, "games", "gettext"), pairs=pairs)


def test_merge_keeps_one_copy_and_the_most_frequent_english():
    results = [result_of("a", [("Haus", "house"), ("Haus", "home"), ("Baum", "tree")]),
               result_of("b", [("Haus", "home"), ("Baum", "tree")])]
    rows, removed = merge(results, (set(), set()))
    assert rows == [("Haus", "home", "games", "a"), ("Baum", "tree", "games", "a")]
    assert removed["duplicate"] == 2 and removed["other_english"] == 1


def test_merge_among_equally_frequent_englishes_keeps_the_first():
    rows, _ = merge([result_of("a", [("Haus", "house"), ("Haus", "home")])], (set(), set()))
    assert rows == [("Haus", "house", "games", "a")]


def test_held_out_sentences_are_removed_by_either_side_with_case_and_punctuation_ignored():
    keys = held_out_keys([Pair("Wie bitte?", "Pardon?", True)])
    assert comparison_key("  WIE, bitte!") == comparison_key("wie bitte")
    assert is_held_out("wie bitte", "What did you say", keys)
    assert is_held_out("Was hast du gesagt?", "pardon", keys)
    assert not is_held_out("Wie geht es?", "How are you?", keys)
    rows, removed = merge([result_of("a", [("Wie bitte!", "Come again?"), KEEP])], keys)
    assert rows == [(*KEEP, "games", "a")] and removed["held out by Ding"] == 1


def test_the_unpack_pattern_of_a_package_joins_what_its_sources_read():
    from lib.debian_corpus.build import unpack_patterns
    patterns = unpack_patterns([Source("gimp", "software", "gettext"), Source("gimp", "docs", "mallard"),
                                Source("guide-de", "docs", "html-docs", "guide")])
    assert patterns["gimp"].search("usr/share/locale/de/LC_MESSAGES/gimp.mo")
    assert patterns["gimp"].search("usr/share/help/C/gimp/index.page")
    assert not patterns["guide"].search("usr/share/locale/de/LC_MESSAGES/gimp.mo")
    assert patterns["guide"].search("usr/share/doc/guide/html/ch1.en.html")
    assert all(pattern.search("usr/share/doc/gimp/copyright") for pattern in patterns.values())


def test_the_builder_drops_pairs_whose_side_is_an_everyday_sentence():
    from lib.translation.corpus import EVERYDAY_PATH, everyday_keys, read_tsv
    first = read_tsv(EVERYDAY_PATH)[0]
    result = result_of("demo", [(first.german, "Something else entirely."), ("Etwas ganz anderes.", first.english),
                                ("Ein roter Apfel", "One red apple")])
    rows, removed = merge([result], (set(), set()), everyday_keys())
    assert [row[:2] for row in rows] == [("Ein roter Apfel", "One red apple")]
    assert removed["an everyday sentence"] == 2


def test_a_member_over_the_size_limit_is_skipped_with_a_warning(deb_dir, tmp_path, monkeypatch, capsys):
    from lib.debian_corpus.build import unpack_patterns
    monkeypatch.setattr(fetch, "MAX_MEMBER", 100)  # the catalogue is larger than 100 bytes, the copyright not
    wanted = unpack_patterns([Source("demo-data", "games", "gettext")])["demo-data"]
    written = fetch.unpack(fetch.deb_path("demo-data", deb_dir), str(tmp_path / "unpacked"), wanted)
    assert "demo.mo" not in " ".join(written)
    assert "usr/share/locale/de/LC_MESSAGES/demo.mo is skipped" in capsys.readouterr().err


def test_an_archive_of_translations_may_be_larger_and_is_written_whole(deb_dir, tmp_path, monkeypatch):
    from lib.debian_corpus.build import unpack_patterns
    monkeypatch.setattr(fetch, "MAX_MEMBER", 100)
    monkeypatch.setattr(fetch, "ARCHIVE_SUFFIXES", (".mo",))  # the catalogue stands for an omni.ja here
    wanted = unpack_patterns([Source("demo-data", "games", "gettext")])["demo-data"]
    written = fetch.unpack(fetch.deb_path("demo-data", deb_dir), str(tmp_path / "unpacked"), wanted)
    catalogue = "usr/share/locale/de/LC_MESSAGES/demo.mo"
    assert catalogue in written
    with open(tmp_path / "catalogue" / "demo.mo", "rb") as original, \
            open(tmp_path / "unpacked" / catalogue, "rb") as unpacked:
        assert unpacked.read() == original.read()


def kill_myself(job):
    """A job whose worker dies as the out-of-memory killer would end it."""
    import signal
    if job == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return job


def test_a_worker_killed_by_the_system_ends_the_build_with_one_line():
    from lib.debian_corpus.build import run_jobs
    with pytest.raises(RuntimeError, match="worker process of 'unpack' died"):
        run_jobs(kill_myself, [0, 1, 2], 2, "unpack", "package")
    assert run_jobs(kill_myself, [0, 2], 2, "unpack", "package") == [0, 2]


def test_ctrl_c_ends_the_workers_with_the_build():
    import signal
    import sys
    import time
    code = ("import sys, time\nfrom lib.debian_corpus.build import run_jobs\nprint('started', flush=True)\n"
            "try:\n    run_jobs(time.sleep, [60, 60, 60], 2, 'unpack', 'package')\n"
            "except KeyboardInterrupt:\n    sys.exit('interrupted')\n")
    process = subprocess.Popen([sys.executable, "-c", code], cwd=os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "started\n"
    time.sleep(3)  # the workers have started their jobs
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert time.monotonic() - started < 20  # not after the 60-second jobs
    assert err.strip() == "interrupted", err  # no traceback from a worker
