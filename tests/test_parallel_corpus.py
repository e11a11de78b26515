"""The Debian corpus builder on catalogues and packages the tests make themselves (no network): every cleaning rule,
gettext reading, selective unpacking of a .deb built with dpkg-deb, duplicates, Ding's held-out sentences, the
script."""
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter

import polib
import pytest

from lib.translation.corpus import Pair, comparison_key, held_out_keys, is_held_out, split_of
from lib.debian_corpus import fetch
from lib.debian_corpus.build import clean_pairs, merge, package_licence, SourceResult
from lib.debian_corpus.cleaning import clean_pair, has_placeholder, repair, strip_accelerators
from lib.debian_corpus.gettext import GERMAN_CATALOGUE, catalogue_pairs
from lib.debian_corpus.language import looks_english, looks_german
from lib.debian_corpus.sentences import aligned_paragraphs, aligned_sentences
from lib.debian_corpus.sources import Source, read_sources

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tools", "build_parallel_corpus.py")
KEEP = ("Das Haus ist sehr groß.", "The house is very big.")


# --- cleaning: every rule, each with a pair it must change or drop ---

def test_a_clean_pair_is_kept_as_it_is():
    assert clean_pair(*KEEP) == (*KEEP, None)


@pytest.mark.parametrize("german, english", [("Datei", "Datei"), ("Datei", "datei "), ("", "File"), ("Datei", "  ")])
def test_untranslated_and_empty_entries_are_dropped(german, english):
    assert clean_pair(german, english)[2] in ("untranslated", "empty")


@pytest.mark.parametrize("text", ["Datei %s öffnen", "%1 Dateien", "%L1 Dateien", "{0} Dateien", "{name} fehlt",
                                  "Wert $(ARG1) fehlt", "%qD ist veraltet", "%(count)d Dateien", "%-5.2f Meter",
                                  "Pfad ${HOME}", "Version @VERSION@", "Datei %{file}", "%PRODUCTVERSION neu",
                                  "%d%% fertig", "$HOME fehlt", "%q#D fehlt", "Ziel%'s Gruppen"])
def test_placeholders_drop_the_pair(text):
    assert has_placeholder(text)
    assert clean_pair(text, "Some English words here")[2] == "placeholder"
    assert clean_pair("Ein deutscher Satz hier", text.replace("Datei", "File"))[2] == "placeholder"


@pytest.mark.parametrize("text", ["50 % der Dateien", "Kosten: $5", "Tom & Jerry", "a {b"])
def test_text_without_placeholders_is_not_taken_for_one(text):
    assert not has_placeholder(text)


@pytest.mark.parametrize("marked, plain", [("_Datei", "Datei"), ("&Datei", "Datei"), ("~Datei", "Datei"),
                                           ("Da&tei", "Datei"), ("F_ull screen", "Full screen"),
                                           ("B~riefanrede", "Briefanrede"), ("Tom && Jerry", "Tom & Jerry"),
                                           ("file_name_here", "file_name_here")])
def test_accelerators_are_stripped(marked, plain):
    assert strip_accelerators(marked) == plain


def test_accelerators_are_stripped_from_a_pair():
    assert clean_pair("Datei ö&ffnen", "_Open file")[:2] == ("Datei öffnen", "Open file")


def test_markup_and_entities_are_stripped():
    assert clean_pair("<b>Groß</b> &amp; <i>klein</i><br/>Ende", "<b>Big</b> &amp; <i>small</i><br>end") == \
        ("Groß & klein Ende", "Big & small end", None)
    assert repair("<filename>Datei</filename> &lt;x&gt;") == "Datei <x>"


def test_markup_on_one_side_only_drops_the_pair():
    assert clean_pair("<b>Groß</b> und klein", "Big and small")[2] == "markup differs"


def test_context_prefixes_bullets_and_the_product_name_are_repaired():
    assert clean_pair("race^Menschen", "race^Humans")[:2] == ("Menschen", "Humans")
    assert clean_pair("?verb:Bauen", "?verb:Build")[:2] == ("Bauen", "Build")
    assert clean_pair("‒ Sie können gehen.", "* You can go.")[:2] == ("Sie können gehen.", "You can go.")
    assert clean_pair("Über %PRODUCTNAME", "About %PRODUCTNAME")[:2] == ("Über LibreOffice", "About LibreOffice")


def test_digits_that_differ_drop_the_pair():
    assert clean_pair("Drücken Sie Alt+6.", "Press Alt+5.")[2] == "digits differ"
    assert clean_pair("Drücken Sie Alt+5.", "Press Alt+5.")[2] is None


def test_a_length_ratio_beyond_the_limit_drops_the_pair():
    assert clean_pair("Mehr", "More than you could ever imagine in a lifetime")[2] == "length ratio"
    assert clean_pair("Einstellungen", "Settings")[2] is None  # short strings are not judged


def test_no_words_drops_the_pair():
    assert clean_pair("…", "...")[2] == "no words"


@pytest.mark.parametrize("german, english", [("-s, --separator mögliche Trenner", "-s, --separator delimiters"),
                                             ("--sort nach Größe", "--sort by size"),
                                             ("Datei|Ordner wählen", "Choose file|folder"),
                                             ("Zeile\\nNeue Zeile", "Line\\nNew line")])
def test_command_line_syntax_and_escapes_drop_the_pair(german, english):
    assert clean_pair(german, english)[2] == "command line"
    assert clean_pair("Weder -a noch --sort angeben", "Give neither -a nor --sort")[2] is None


@pytest.mark.parametrize("identifier", ["multiple-operation-time-out-action", "media.om_medium-photo_130x180mm",
                                        "print_quality_high", "org.gnome.app"])
def test_identifiers_instead_of_text_drop_the_pair(identifier):
    assert clean_pair("Bei Zeitüberschreitung", identifier)[2] == "identifier"
    assert clean_pair("E-Mail-Adresse", "e-mail")[2] is None


def test_the_wrong_language_on_a_side_drops_the_pair():
    assert clean_pair("This is the file that you want", "This is the file you want")[2] == "wrong language"
    assert clean_pair("Das ist die Datei, die Sie wollen", "Das ist die Datei, die du willst")[2] == "wrong language"
    assert clean_pair("Das ist gut", "Größe")[2] == "wrong language"  # German letters on the English side


def test_the_language_check_judges_only_texts_with_enough_function_words():
    assert looks_german("Das ist nicht die Datei.") and not looks_german("This is not the file.")
    assert looks_english("This is not the file.") and not looks_english("Das ist nicht die Datei und nicht mehr.")
    assert looks_german("Firefox") and looks_english("Firefox")


# --- sentences ---

def test_paragraphs_and_sentences_are_split_only_where_both_sides_agree():
    assert aligned_paragraphs("Eins.\n\nZwei.", "One.\n\nTwo.") == [("Eins.", "One."), ("Zwei.", "Two.")]
    assert aligned_paragraphs("Eins.\n\nZwei.", "One. Two.") == [("Eins.\n\nZwei.", "One. Two.")]
    assert aligned_sentences("Das ist z.B. gut. Er kommt!", "That is e.g. good. He comes!") == \
        [("Das ist z.B. gut.", "That is e.g. good."), ("Er kommt!", "He comes!")]
    assert aligned_sentences("Er kommt. Sie geht.", "He comes and she goes.") == \
        [("Er kommt. Sie geht.", "He comes and she goes.")]


def test_clean_pairs_splits_sentences_and_counts_what_it_drops():
    dropped = Counter()
    pairs = clean_pairs([("Er kommt heute. Sie geht morgen.", "He comes today. She leaves tomorrow."),
                         ("%s Dateien", "%s files"), ("Datei", "Datei")], dropped)
    assert pairs == [("Er kommt heute.", "He comes today."), ("Sie geht morgen.", "She leaves tomorrow.")]
    assert dropped == Counter(placeholder=1, untranslated=1)


# --- gettext ---

def write_catalogue(folder):
    """A German catalogue with a plain entry, a plural, a context, a fuzzy, an obsolete, an untranslated and a
    translator-credit entry; saved as .po and compiled to .mo. Returns (po path, mo path)."""
    catalogue = polib.POFile()
    catalogue.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Plural-Forms": "nplurals=2; plural=(n != 1);"}
    catalogue.append(polib.POEntry(msgid=KEEP[1], msgstr=KEEP[0]))
    catalogue.append(polib.POEntry(msgid="One red apple", msgid_plural="Many red apples",
                                   msgstr_plural={0: "Ein roter Apfel", 1: "Viele rote Äpfel"}))
    catalogue.append(polib.POEntry(msgctxt="menu", msgid="Open the door", msgstr="Öffne die Tür"))
    catalogue.append(polib.POEntry(msgid="A fuzzy guess", msgstr="Eine unscharfe Vermutung", flags=["fuzzy"]))
    catalogue.append(polib.POEntry(msgid="Gone for good", msgstr="Für immer fort", obsolete=True))
    catalogue.append(polib.POEntry(msgid="Not translated", msgstr=""))
    catalogue.append(polib.POEntry(msgid="Your names", msgstr="Erika Mustermann"))
    os.makedirs(folder, exist_ok=True)
    po_path, mo_path = os.path.join(folder, "demo.po"), os.path.join(folder, "demo.mo")
    catalogue.save(po_path)
    catalogue.save_as_mofile(mo_path)
    return po_path, mo_path


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


# --- packages ---

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: demo

Files: *
Copyright: 2024 Someone
License: GPL-2+
 The licence text.

Files: data/*
Copyright: 2024 Someone
License: CC-BY-SA-4.0
"""


def build_deb(folder, package, catalogues):
    """A .deb of ``package`` built with dpkg-deb holding the catalogues (dict language -> .mo path), a copyright
    file and an unrelated file; returns its path."""
    root = tempfile.mkdtemp(prefix=package + "-root-")
    os.makedirs(os.path.join(root, "DEBIAN"))
    with open(os.path.join(root, "DEBIAN", "control"), "w", encoding="utf-8") as handle:
        handle.write(f"Package: {package}\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <t@example.org>\n"
                     "Description: test package\n")
    for language, mo_path in catalogues.items():
        target = os.path.join(root, "usr", "share", "locale", language, "LC_MESSAGES", "demo.mo")
        os.makedirs(os.path.dirname(target))
        with open(mo_path, "rb") as source, open(target, "wb") as handle:
            handle.write(source.read())
    doc = os.path.join(root, "usr", "share", "doc", package)
    os.makedirs(doc)
    with open(os.path.join(doc, "copyright"), "w", encoding="utf-8") as handle:
        handle.write(COPYRIGHT)
    os.makedirs(os.path.join(root, "usr", "bin"))
    with open(os.path.join(root, "usr", "bin", "demo"), "w", encoding="utf-8") as handle:
        handle.write("#!/bin/sh\n")
    deb = os.path.join(folder, f"{package}_1.0_all.deb")
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", root, deb], check=True, capture_output=True)
    shutil.rmtree(root)
    return deb


@pytest.fixture
def deb_dir(tmp_path):
    """A folder with the .deb of 'demo-data', which holds a German and a French catalogue."""
    _, mo_path = write_catalogue(str(tmp_path / "catalogue"))
    debs = tmp_path / "debs"
    debs.mkdir()
    build_deb(str(debs), "demo-data", {"de": mo_path, "fr": mo_path})
    return str(debs)


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


# --- duplicates and held-out sentences ---

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


# --- sources file and the script ---

def test_the_sources_file_of_the_repository_reads_and_bad_lines_are_named(tmp_path):
    from lib.debian_corpus.build import ALIGNERS
    sources = read_sources(os.path.join(ROOT, "data", "debian_sources.tsv"), ALIGNERS)
    assert len(sources) > 100 and {source.kind for source in sources} >= {"games", "software"}
    bad = tmp_path / "sources.tsv"
    bad.write_text("demo-data\tgames\tbogus\n")
    with pytest.raises(ValueError, match="line 1: unknown align 'bogus'"):
        read_sources(str(bad), ALIGNERS)
    bad.write_text("# comment\n\nDemo_Data\tgames\tgettext\n")
    with pytest.raises(ValueError, match="line 3: 'Demo_Data' is not a Debian package name"):
        read_sources(str(bad), ALIGNERS)


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
    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)  # from the unpacked cache
    assert again.returncode == 0 and out.read_text(encoding="utf-8").count("\n") == 4


def test_the_script_explains_an_unknown_kind(tmp_path):
    result = subprocess.run([sys.executable, SCRIPT, "--only", "poetry", "--cache-dir", str(tmp_path),
                             "--out", str(tmp_path / "out.tsv")], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1 and "error: --only poetry" in result.stderr and "Traceback" not in result.stderr


# --- help pages and guides ---

def write(path, text):
    """Write ``text`` to ``path``, making its folders."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


LIBREOFFICE_PAGE = """<html><body><h1 id="hd_id1" dir="auto">{title}</h1>
<p id="par_id2" class="paragraph">{text} <span class="switchinline"><span hidden="true" id="MACx_1" class="MAC">
<span class="keycode">{mac}</span></span><span hidden="true" id="defaultx_1"><span class="keycode">{key}</span></span>
</span>+F.</p><p id="par_id3" class="bascode">Print 1</p><p id="par_id9">{only}</p></body></html>"""


def test_libreoffice_help_pairs_paragraphs_by_id_without_platform_variants_or_code(tmp_path):
    from lib.debian_corpus.libreoffice_help import libreoffice_help_pairs
    german, english = str(tmp_path / "de"), str(tmp_path / "en")
    write(os.path.join(german, "usr/share/libreoffice/help/de/text/a.html"),
          LIBREOFFICE_PAGE.format(title="Suchen", text="Drücken Sie", mac="Befehl", key="Strg", only="Nur hier"))
    write(os.path.join(english, "usr/share/libreoffice/help/en-US/text/a.html"),
          LIBREOFFICE_PAGE.format(title="Find", text="Press", mac="Command", key="Ctrl", only="Only here")
          .replace("par_id9", "par_id10"))
    pairs = [(" ".join(g.split()), " ".join(e.split())) for g, e in libreoffice_help_pairs([german, english])]
    assert pairs == [("Suchen", "Find"), ("Drücken Sie Strg +F.", "Press Ctrl +F.")]


MALLARD_PAGE = """<?xml version="1.0" encoding="utf-8"?>
<page xmlns="http://projectmallard.org/1.0/" id="x"><info><credit><name>Erika</name></credit>
<desc>{desc}</desc></info><title>{title}</title><p>{text} <gui>{gui}</gui>.</p>{extra}</page>"""


def test_mallard_pairs_blocks_in_order_and_skips_pages_that_differ(tmp_path):
    from lib.debian_corpus.mallard import mallard_pairs
    folder = str(tmp_path)
    german = dict(desc="Tasten ignorieren.", title="Tastatur", text="Klicken Sie auf", gui="Einstellungen")
    english = dict(desc="Ignore keys.", title="Keyboard", text="Click", gui="Settings")
    keys = ("<p>Drücken Sie <keyseq><key>Strg</key><key>F</key></keyseq> oder "
            "<guiseq><gui>Datei</gui><gui>Suchen</gui></guiseq>.</p>")
    write(os.path.join(folder, "usr/share/help/de/app/a.page"), MALLARD_PAGE.format(extra=keys, **german))
    write(os.path.join(folder, "usr/share/help/C/app/a.page"), MALLARD_PAGE.format(
        extra=keys.replace("Drücken Sie", "Press").replace("Strg", "Ctrl").replace("oder", "or")
        .replace("Datei", "File").replace("Suchen", "Find"), **english))
    write(os.path.join(folder, "usr/share/help/de/app/b.page"), MALLARD_PAGE.format(extra="", **german))
    write(os.path.join(folder, "usr/share/help/C/app/b.page"), MALLARD_PAGE.format(extra="<p>More.</p>", **english))
    assert mallard_pairs([folder]) == [("Tasten ignorieren.", "Ignore keys."), ("Tastatur", "Keyboard"),
                                       ("Klicken Sie auf Einstellungen.", "Click Settings."),
                                       ("Drücken Sie Strg+F oder Datei ▸ Suchen.", "Press Ctrl+F or File ▸ Find.")]


def test_html_docs_find_the_english_page_and_pair_blocks_of_plausible_pages(tmp_path):
    from lib.debian_corpus.html_docs import html_docs_pairs
    german, english = str(tmp_path / "de"), str(tmp_path / "en")
    page = "<html><head><title>T</title></head><body><div class='navheader'><p>{nav}</p></div><h1>{title}</h1>" \
           "<p>{text}</p><pre>ls -l</pre><ul><li>{item}</li></ul></body></html>"
    write(os.path.join(german, "usr/share/doc/guide-de/html/ch1.de.html"),
          page.format(nav="Weiter", title="Einleitung", text="Das ist ein Handbuch.", item="Erster Punkt"))
    write(os.path.join(english, "usr/share/doc/guide/html/ch1.en.html"),
          page.format(nav="Next", title="Introduction", text="This is a manual.", item="First point"))
    write(os.path.join(german, "usr/share/doc/guide-de/html/ch2.de.html"),  # another version: not plausible
          page.format(nav="", title="Ein sehr langer Titel, der nicht passt", text="Nein.",
                      item="Ein langer Punkt, viel länger als der englische"))
    write(os.path.join(english, "usr/share/doc/guide/html/ch2.en.html"),
          page.format(nav="", title="Short", text="A long paragraph that has no counterpart at all here.",
                      item="Point"))
    assert html_docs_pairs([german, english]) == [("Einleitung", "Introduction"),
                                                  ("Das ist ein Handbuch.", "This is a manual."),
                                                  ("Erster Punkt", "First point")]


def test_sentences_of_implausible_lengths_stay_one_pair():
    german = "Das Programm läuft. Es wird dann ausgeführt, um daraus den neuen Baum zu erzeugen."
    english = "Out of the files that match, the newest is taken and the program is run. Done."
    assert aligned_sentences(german, english) == [(german, english)]


def test_the_unpack_pattern_of_a_package_joins_what_its_sources_read():
    from lib.debian_corpus.build import unpack_patterns
    patterns = unpack_patterns([Source("gimp", "software", "gettext"), Source("gimp", "docs", "mallard"),
                                Source("guide-de", "docs", "html-docs", "guide")])
    assert patterns["gimp"].search("usr/share/locale/de/LC_MESSAGES/gimp.mo")
    assert patterns["gimp"].search("usr/share/help/C/gimp/index.page")
    assert not patterns["guide"].search("usr/share/locale/de/LC_MESSAGES/gimp.mo")
    assert patterns["guide"].search("usr/share/doc/guide/html/ch1.en.html")
    assert all(pattern.search("usr/share/doc/gimp/copyright") for pattern in patterns.values())


GERMAN_MANPAGE = r""".\" generated with po4a
.TH LS 1 "2022" "coreutils" "Dienstprogramme"
.SH BEZEICHNUNG
ls \- Verzeichnisinhalte auflisten
.SH BESCHREIBUNG
.PP
Auflistung von Informationen über die \fBDATEIen\fP.
.TP
\fB\-a\fP, \fB\-\-all\fP
Einträge nicht ignorieren
.nf
ls \-la /tmp
.fi
.SH ÜBERSETZUNG
Die deutsche Übersetzung wurde von Erika Mustermann erstellt.
"""
ENGLISH_MANPAGE = r""".TH LS 1 "2022" "coreutils" "User Commands"
.SH NAME
ls \- list directory contents
.SH DESCRIPTION
.PP
List information about the \fIFILEs\fR.
.TP
\fB\-a\fR, \fB\-\-all\fR
do not ignore entries
.nf
ls \-la /tmp
.fi
"""


def test_manpages_pair_blocks_without_examples_option_tags_or_the_translators_section(tmp_path):
    import gzip
    from lib.debian_corpus.manpages import manpage_pairs
    german, english = str(tmp_path / "de"), str(tmp_path / "en")
    for folder, relative, text in ((german, "usr/share/man/de/man1/ls.1.gz", GERMAN_MANPAGE),
                                   (english, "usr/share/man/man1/ls.1.gz", ENGLISH_MANPAGE)):
        os.makedirs(os.path.dirname(os.path.join(folder, relative)))
        with gzip.open(os.path.join(folder, relative), "wt", encoding="utf-8") as handle:
            handle.write(text)
    assert manpage_pairs([german, english]) == [
        ("BEZEICHNUNG", "NAME"), ("ls - Verzeichnisinhalte auflisten", "ls - list directory contents"),
        ("BESCHREIBUNG", "DESCRIPTION"), ("Auflistung von Informationen über die DATEIen.",
                                          "List information about the FILEs."),
        ("Einträge nicht ignorieren", "do not ignore entries")]


def test_mozilla_pairs_fluent_and_properties_messages_by_id(tmp_path):
    import zipfile
    from lib.debian_corpus.mozilla import mozilla_pairs
    german, english = tmp_path / "de", tmp_path / "en"
    langpack = german / "usr/lib/firefox-esr/browser/extensions/langpack-de@firefox-esr.mozilla.org.xpi"
    omni = english / "usr/lib/firefox-esr/browser/omni.ja"
    langpack.parent.mkdir(parents=True)
    omni.parent.mkdir(parents=True)
    with zipfile.ZipFile(langpack, "w") as archive:
        archive.writestr("browser/localization/de/browser/logins.ftl",
                         "# Kommentar\nlogins-title = Passwörter\nmenu =\n    .title = Menü öffnen\n"
                         "long-text =\n    Eine Zeile\n    und noch eine.\nonly-german = Nur hier\n")
        archive.writestr("chrome/de/locale/de/global/alert.properties",
                         "closeButton=Schlie\\u00dfen\ndownloads=#1 Download;#1 Downloads\n")
    with zipfile.ZipFile(omni, "w") as archive:
        archive.writestr("localization/en-US/browser/logins.ftl",
                         "logins-title = Passwords\nmenu =\n    .title = Open menu\n"
                         "long-text =\n    One line\n    and another.\n")
        archive.writestr("chrome/en-US/locale/en-US/global/alert.properties",
                         "closeButton = Close\ndownloads=#1 download;#1 downloads\n")
    assert sorted(mozilla_pairs([str(german), str(english)])) == sorted([
        ("Passwörter", "Passwords"), ("Menü öffnen", "Open menu"),
        ("Eine Zeile und noch eine.", "One line and another."), ("Schließen", "Close")])


@pytest.mark.parametrize("path, read", [("usr/lib/firefox-esr/browser/omni.ja", True),
                                        ("usr/share/thunderbird/omni.ja", True),  # usr/lib/thunderbird links to it
                                        ("usr/lib/thunderbird/extensions/langpack-de@thunderbird.mozilla.org.xpi",
                                         True),
                                        ("usr/lib/thunderbird/extensions/langpack-fr@thunderbird.mozilla.org.xpi",
                                         False)])
def test_the_mozilla_archives_are_recognised_by_path(path, read):
    from lib.debian_corpus.mozilla import LANGUAGE_PACK
    assert bool(LANGUAGE_PACK.search(path)) == read


# --- the builder's gates: inputs, outputs, failures and stops ---

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
    result = run_builder(tmp_path, "--sources", str(sources), "--out", str(out), "--deb-dir", str(tmp_path / "empty"))
    assert "1 of 1 sources failed" in one_error_line(result)
    assert f"kept {out} as it was" in result.stdout
    assert out.read_text() == "Guter Satz.\tGood sentence.\tgames\tdemo-data\n"


@pytest.mark.parametrize("case, words", [
    ("empty sources", "lists no package"),
    ("utf-16 sources", "must be a plain UTF-8 text file"),
    ("gzip sources", "must be a plain UTF-8 text file"),
    ("out is the sources", "is also an input"),
    ("out is a shipped file", "a file the project ships in data/"),
    ("out in a missing folder", "does not exist; make it first"),
    ("missing ding", "--ding"),
    ("ding is a folder", "--ding"),
])
def test_a_request_that_cannot_work_is_refused_in_one_line_before_any_download(tmp_path, case, words):
    import gzip
    sources = tmp_path / "sources.tsv"
    line = "demo-data\tgames\tgettext\n"
    content = {"empty sources": b"# nothing\n", "utf-16 sources": line.encode("utf-16"),
               "gzip sources": gzip.compress(line.encode())}.get(case, line.encode())
    sources.write_bytes(content)
    out = {"out is the sources": str(sources), "out is a shipped file": os.path.join(ROOT, "data", "everyday.tsv"),
           "out in a missing folder": str(tmp_path / "no" / "out.tsv")}.get(case, str(tmp_path / "out.tsv"))
    flags = ["--sources", str(sources), "--out", out, "--deb-dir", str(tmp_path)]
    if case in ("missing ding", "ding is a folder"):
        flags += ["--ding", str(tmp_path / "nonexistent" / "de-en") if case == "missing ding" else str(tmp_path)]
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


def test_the_builder_drops_pairs_whose_side_is_an_everyday_sentence():
    from lib.debian_corpus.build import EVERYDAY, everyday_keys
    from lib.translation.corpus import read_tsv
    first = read_tsv(EVERYDAY)[0]
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
