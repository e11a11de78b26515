"""Tests of lib/translation/corpus.py on hand-written Ding, tab-separated and IWSLT files; the Ding split when it is
installed."""
import gzip
import os
import re
import sys

import pytest

import run_translation
from lib.explorer.page import page_data
from lib.translation import corpus
from lib.translation.corpus import (DICTIONARY_VARIABLE, DING_PATH, SHIPPED_SPLITS, SPLITS, Pair, clean_text,
                                    corpus_line, is_sentence, parse_ding_line, read_corpus, read_ding, read_iwslt,
                                    read_extra_corpus, read_shipped_splits, read_tsv, split_corpus, split_of)
from lib.translation.translator import SHIPPED_CHECKPOINT
from tests.helpers import random_translator

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pairs_of(line):
    return [(pair.german, pair.english) for pair in parse_ding_line(line)]


# ---- Ding lines (made up in the dictionary's format) ------------------------------------------------------------


def test_sub_entries_and_synonyms_are_aligned():
    line = "Haus {n}; Gebäude {n} | Häuser {pl}; Gebäude {pl} :: house; building | houses; buildings\n"
    assert pairs_of(line) == [("Haus", "house"), ("Gebäude", "building"), ("Häuser", "houses"),
                              ("Gebäude", "buildings")]


def test_labels_and_remarks_are_stripped():
    line = ("Kfz {n} <Kraftfahrzeug> [auto.]; Auto {n} [ugs.] (mit Motor) | Autos {pl} :: "
            "motor vehicle [Br.]; car {n} (with an engine) | cars\n")
    assert pairs_of(line) == [("Kfz", "motor vehicle"), ("Auto", "car"), ("Autos", "cars")]
    assert clean_text("Er geht (ganz (sehr) langsam) nach Hause . ") == "Er geht nach Hause."
    assert clean_text("„Hallo“ {m} , sagte er") == '"Hallo", sagte er'


def test_mismatched_sub_entry_counts_are_dropped():
    assert parse_ding_line("Baum {m} | Bäume {pl} :: tree\n") == []
    assert parse_ding_line("Baum {m} :: tree | trees\n") == []


def test_unequal_synonym_counts_pair_with_the_first():
    assert pairs_of("Wagen {m}; Auto {n}; Karre {f} [ugs.] :: car; automobile\n") == [
        ("Wagen", "car"), ("Auto", "car"), ("Karre", "car"), ("Wagen", "automobile")]


def test_comments_empty_and_alternative_entries():
    assert parse_ding_line("# Version :: 1.9\n") == []
    assert parse_ding_line("no separator here\n") == []
    assert parse_ding_line("{m} :: [ugs.]\n") == []  # nothing left after stripping labels
    assert pairs_of("auf / an etw. warten | Hund {m} :: to wait for / on sth. | dog\n") == [("Hund", "dog")]


def test_sentences_are_marked():
    pairs = parse_ding_line("Ich habe morgen keine Zeit. [ugs.] | keine Zeit haben :: "
                            "I'm busy tomorrow. | to have no time\n")
    assert pairs == [Pair("Ich habe morgen keine Zeit.", "I'm busy tomorrow.", True),
                     Pair("keine Zeit haben", "to have no time", False)]


@pytest.mark.parametrize("text, expected", [
    ("Das ist gut.", True), ("Wie geht's?", True), ("Komm sofort her!", True), ("10 Leute kamen.", True),
    ('"Nein", sagte sie.', True), ("das ist gut.", False), ("Das ist gut", False), ("Hallo!", False),
    ("Ja.", False), ("Haus", False), ("", False)])
def test_is_sentence(text, expected):
    assert is_sentence(text) == expected


def test_read_ding_removes_duplicates(tmp_path):
    path = tmp_path / "de-en"
    path.write_text("# a comment :: line\nHund {m} :: dog\nHund {m} [zool.] :: dog\nKatze {f} :: cat\n",
                    encoding="utf-8")
    assert [(pair.german, pair.english) for pair in read_ding(str(path))] == [("Hund", "dog"), ("Katze", "cat")]
    assert read_corpus(str(path)) == read_ding(str(path))


# ---- the split ----------------------------------------------------------------------------------------------------


def test_split_is_deterministic_and_holds_out_sentences_only():
    sentences = [Pair(f"Das ist Satz Nummer {i}.", "This is a sentence.", True) for i in range(2000)]
    phrases = [Pair(f"Satz Nummer {i}", "sentence", False) for i in range(2000)]
    assert all(split_of(pair) == "train" for pair in phrases)
    splits = [split_of(pair) for pair in sentences]
    assert splits == [split_of(pair) for pair in sentences] and set(splits) == set(SPLITS)
    for name in ("valid", "test"):
        assert 50 <= splits.count(name) <= 150  # about 5% each
    # the split depends on the German side only: the same German never lands in two splits
    assert all(split_of(Pair(pair.german, "other", True)) == split for pair, split in zip(sentences, splits))
    # fixed values: the split must never change between runs, machines or versions
    assert [i for i, split in enumerate(splits[:140]) if split != "train"] == [
        29, 34, 38, 47, 63, 66, 73, 80, 84, 97, 114, 135]
    assert (splits[29], splits[34], splits[114]) == ("valid", "test", "valid")
    grouped = split_corpus(sentences + phrases)
    assert set(grouped) == set(SPLITS) and sum(map(len, grouped.values())) == 4000
    assert grouped["test"] == [pair for pair, split in zip(sentences, splits) if split == "test"]


_SENTENCE_END = re.compile(r"[.!?][\"')]*(\s*(\{[^}]*\}|\[[^\]]*\]|<[^>]*>|\([^)]*\)))*\s*(;|\||$)")


@pytest.mark.skipif(not os.path.isfile(DING_PATH), reason="the Ding dictionary (trans-de-en) is not installed")
def test_ding_split_has_about_a_thousand_held_out_sentences(tmp_path):
    """Parses only the dictionary lines that can hold a sentence (German ending in . ! or ?), for speed: the
    held-out splits are the same as those of the whole file."""
    with open(DING_PATH, encoding="utf-8") as file:
        lines = [line for line in file if _SENTENCE_END.search(line.split(" :: ", 1)[0])]
    path = tmp_path / "sentences"
    path.write_text("".join(lines), encoding="utf-8")
    splits = split_corpus(read_corpus(str(path)))
    for name in ("valid", "test"):
        assert 800 <= len(splits[name]) <= 1400
        assert all(pair.sentence and is_sentence(pair.german) for pair in splits[name])
    assert not {pair.german for pair in splits["test"]} & {pair.german for pair in splits["valid"]}


@pytest.mark.skipif(not os.path.isfile(DING_PATH), reason="the Ding dictionary (trans-de-en) is not installed")
def test_the_everyday_test_set_is_not_in_the_dictionary():
    """data/everyday.tsv (everyday sentences written for this project) measures translation outside the corpus:
    none of its German sentences may be a dictionary entry, compared without case and punctuation."""
    def normal(text):
        return " ".join(re.sub(r"[^\w ]", " ", text.lower()).split())
    everyday = read_tsv(os.path.join(REPOSITORY, "data", "everyday.tsv"))
    assert len(everyday) >= 400 and all(pair.sentence for pair in everyday)
    dictionary = {normal(pair.german) for pair in read_corpus(DING_PATH)}
    assert [pair.german for pair in everyday if normal(pair.german) in dictionary] == []


# ---- other formats and errors -------------------------------------------------------------------------------------


def test_read_tsv(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("Wie geht es dir?\tHow are you?\tCC-BY 2.0\nHallo\tHello\n\t\nJa\t\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"skipped 1 row of .*pairs.tsv with an empty German or English side \(line "
                                         r"4\)"):
        assert read_tsv(str(path)) == [Pair("Wie geht es dir?", "How are you?", True), Pair("Hallo", "Hello", False)]
        assert read_corpus(str(path), "tsv") == read_tsv(str(path))


def test_tsv_line_without_a_tab_is_an_error(tmp_path):
    path = tmp_path / "broken.tsv"
    path.write_text("Hallo\tHello\nno tab here\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken.tsv:2"):
        read_tsv(str(path))


def write_iwslt(folder, german, english):
    (folder / "train.tags.de-en.de").write_text(german, encoding="utf-8")
    (folder / "train.tags.de-en.en").write_text(english, encoding="utf-8")
    return str(folder / "train.tags.de-en")


def test_read_iwslt_skips_tag_lines(tmp_path):
    prefix = write_iwslt(tmp_path, "<url>http://x</url>\nIch bin hier.\n  <talkid>1</talkid>\nDanke.\n",
                         "<url>http://x</url>\nI am here.\n<talkid>1</talkid>\nThank you.\n")
    expected = [Pair("Ich bin hier.", "I am here.", True), Pair("Danke.", "Thank you.", True)]
    assert read_iwslt(prefix) == expected
    assert read_iwslt(prefix + ".en") == expected and read_iwslt(prefix + ".de") == expected
    assert read_corpus(prefix, "iwslt") == expected


def test_iwslt_files_of_different_lengths_are_an_error(tmp_path):
    prefix = write_iwslt(tmp_path, "Eins.\nZwei.\n", "One.\n")
    with pytest.raises(ValueError, match="text lines"):
        read_iwslt(prefix)


def test_clear_errors(tmp_path):
    missing = str(tmp_path / "missing.tsv")
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        read_corpus(missing, "tsv")
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        read_corpus(missing, "iwslt")
    with pytest.raises(FileNotFoundError, match="missing.tsv"):
        read_corpus(missing, "ding")
    with pytest.raises(ValueError, match="format"):
        read_corpus(missing, "xml")
    with pytest.raises(ValueError, match="--corpus"):
        read_corpus(None, "tsv")


def test_a_latin1_corpus_is_refused_naming_its_line_and_character(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes(b"Das ist gut.\tThat is good.\n\n" + "Er ist müde.\tHe is tired.\n".encode("latin-1"))
    for corpus_format in ("tsv", "ding"):
        with pytest.raises(ValueError, match=r"--corpus \S*latin1.tsv is not UTF-8 text: line 3 has the byte 0xfc at "
                                             r"character 9; it must be UTF-8 text, plain or gzip: convert it, e.g. "
                                             r"'iconv -f latin1"):
            read_corpus(str(path), corpus_format)
    mixed = tmp_path / "mixed.tsv"  # UTF-8 umlauts, then a Latin-1 one: characters are counted, not bytes
    mixed.write_bytes("Größe: ".encode("utf-8") + "ü\tsize\n".encode("latin-1"))
    with pytest.raises(ValueError, match="line 1 has the byte 0xfc at character 8"):
        read_tsv(str(mixed))
    prefix = tmp_path / "talks"
    (tmp_path / "talks.de").write_text("Guten Tag.\n", encoding="utf-8")
    (tmp_path / "talks.en").write_bytes("Good day.\n".encode("utf-8") + "Café.\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"talks.en is not UTF-8 text: line 2 has the byte 0xe9 at character 4"):
        read_corpus(str(prefix), "iwslt")


TSV = "Das ist gut.\tThat is good.\tdocs\nHaus\thouse\tgames\n" * 200
DING = "Das ist gut. :: That is good.\nHaus {n} :: house\n" * 200
# (reader, its text, the flag its errors name): every corpus reader reads through lib.files.open_text, so gzip is
# known by its first bytes whatever the name, and a damaged file is named by the flag that gave it
READERS = [
    ("tsv", lambda path: read_corpus(path, "tsv"), TSV, "--corpus"),
    ("ding", lambda path: read_corpus(path, "ding"), DING, "--corpus"),
    ("iwslt", lambda path: read_corpus(path[:-3], "iwslt"), "Das ist gut.\n" * 200, "--corpus"),
    ("extra corpus", corpus.read_extra_corpus, TSV, "--extra-corpus"),
    ("the builder's --ding", lambda path: read_corpus(path, "ding", flag="--ding"), DING, "--ding"),
]


@pytest.mark.parametrize("name, read, text, flag", READERS, ids=[row[0] for row in READERS])
def test_each_corpus_reader_reads_plain_or_gzip_and_names_its_flag_for_a_damaged_file(
        name, read, text, flag, tmp_path):
    plain, packed, cut, wide = (tmp_path / f"{stem}.de" for stem in ("plain", "packed", "cut", "wide"))
    plain.write_text(text, encoding="utf-8")
    compressed = gzip.compress(text.encode("utf-8"))
    packed.write_bytes(compressed)  # no .gz in the name
    cut.write_bytes(compressed[:len(compressed) // 2])
    wide.write_bytes(text.encode("utf-16"))
    for stem in ("plain", "packed", "cut", "wide"):  # the English side of the iwslt pair
        (tmp_path / f"{stem}.en").write_text("That is good.\n" * 200, encoding="utf-8")
    assert read(str(packed)) == read(str(plain)) and len(read(str(plain))) > 0
    with pytest.raises(ValueError, match=rf"^{flag} \S*cut.de is a damaged gzip file: it ends before its compressed "
                                         r"data does \(after line \d+\)"):
        read(str(cut))
    with pytest.raises(ValueError, match=rf"^{flag} \S*wide.de is UTF-16 text; it must be UTF-8 text, plain or gzip"):
        read(str(wide))


def test_a_missing_corpus_names_its_flag_and_only_the_extra_corpus_says_how_to_build_it(tmp_path):
    missing = str(tmp_path / "missing.tsv")
    with pytest.raises(FileNotFoundError, match="^--corpus .*missing.tsv does not exist") as caught:
        read_tsv(missing)
    assert "build_parallel_corpus" not in str(caught.value)
    with pytest.raises(FileNotFoundError, match="^--extra-corpus .*missing.tsv does not exist.*; build it with"):
        read_extra_corpus(missing)


def test_a_folder_is_refused_as_a_corpus(tmp_path):
    for corpus_format in FORMATS_WITH_PATHS:
        with pytest.raises(IsADirectoryError, match="is a folder; give a file"):
            read_corpus(str(tmp_path), corpus_format)


def test_blank_lines_and_a_byte_order_mark_are_ignored_in_tsv(tmp_path):
    path = tmp_path / "windows.tsv"
    path.write_bytes("\ufeffDas ist gut.\tThat is good.\r\n\r\nHaus\thouse\r\n\n".encode("utf-8"))
    assert read_tsv(str(path)) == [Pair("Das ist gut.", "That is good.", True), Pair("Haus", "house", False)]


def test_an_empty_split_says_so(tmp_path):
    path = tmp_path / "phrases.tsv"
    path.write_text("Haus\thouse\nrotes Auto\tred car\n", encoding="utf-8")
    with pytest.raises(ValueError, match="the test split of the corpus .*phrases.tsv is empty"):
        corpus_line(1, "test", str(path), "tsv")
    assert corpus_line(2, "all", str(path), "tsv") == (Pair("rotes Auto", "red car", False), 2, True)


FORMATS_WITH_PATHS = ("ding", "tsv", "iwslt")


def test_missing_dictionary_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(os.path, "isfile", lambda path: False)
    with pytest.raises(FileNotFoundError, match="apt-get install trans-de-en"):
        read_ding()


# ---- finding the dictionary; the shipped held-out splits ----------------------------------------------------------


@pytest.mark.skipif(not os.path.isfile(DING_PATH), reason="the Ding dictionary (trans-de-en) is not installed")
def test_the_shipped_splits_are_the_dictionarys_held_out_splits():
    """data/ding_valid.tsv and data/ding_test.tsv hold exactly the pairs, in order, that the installed dictionary's
    split gives (so the shipped translator's held-out sentences are the same with or without it)."""
    computed = split_corpus(read_corpus(DING_PATH, sentences_only=True))
    shipped = read_shipped_splits()
    assert set(shipped) == {"valid", "test"}
    assert shipped["valid"] == computed["valid"] and shipped["test"] == computed["test"]
    assert 2000 <= len(shipped["valid"]) + len(shipped["test"]) <= 2500


def test_the_shipped_split_files_carry_the_ding_licence_notice():
    for path in SHIPPED_SPLITS.values():
        with open(path, encoding="utf-8") as file:
            header = "".join(line for line in file if line.startswith("#"))
        assert "Frank Richter" in header and "TU Chemnitz" in header and "trans-de-en" in header
        assert "GNU General Public License, version 2 or (at your option) any later version" in header


@pytest.fixture
def no_dictionary(monkeypatch, tmp_path):
    """The Debian path made a missing file and DING_DICTIONARY unset. Returns the missing path."""
    missing = str(tmp_path / "no-dictionary")
    monkeypatch.setattr(corpus, "DING_PATH", missing)
    monkeypatch.delenv(DICTIONARY_VARIABLE, raising=False)
    return missing


def test_without_the_dictionary_the_held_out_splits_come_from_the_shipped_files(no_dictionary):
    shipped = read_shipped_splits()
    assert split_corpus(read_corpus(sentences_only=True)) == {"train": [], **shipped}
    assert corpus_line(7, "test") == (shipped["test"][6], len(shipped["test"]), False)
    assert corpus_line(len(shipped["valid"]), "valid")[0] == shipped["valid"][-1]
    with pytest.raises(ValueError, match=f"between 1 and {len(shipped['test'])}"):
        corpus_line(len(shipped["test"]) + 1, "test")


@pytest.mark.parametrize("call", [lambda: read_corpus(), lambda: read_ding(), lambda: corpus_line(1, "train"),
                                  lambda: corpus_line(1, "all")])
def test_training_and_the_whole_corpus_without_the_dictionary_name_every_way_to_give_it(no_dictionary, call):
    with pytest.raises(FileNotFoundError) as raised:
        call()
    message = str(raised.value)
    assert f"{no_dictionary} is missing" in message and "training, --split train and --split all need it" in message
    for way in ("--corpus PATH", "DING_DICTIONARY=PATH", "apt-get install trans-de-en", "de-en.txt",
                "Ding project at TU Chemnitz"):
        assert way in message
    assert "\n" not in message


def test_the_environment_variable_names_the_dictionary(no_dictionary, monkeypatch, tmp_path):
    path = tmp_path / "de-en.txt"
    path.write_text("# Version :: test\nHund {m} :: dog\nIch habe heute keine Zeit. :: I have no time today.\n",
                    encoding="utf-8")
    monkeypatch.setenv(DICTIONARY_VARIABLE, str(path))
    assert read_corpus() == [Pair("Hund", "dog", False),
                             Pair("Ich habe heute keine Zeit.", "I have no time today.", True)]
    assert read_corpus(sentences_only=True) == [Pair("Ich habe heute keine Zeit.", "I have no time today.", True)]
    monkeypatch.setenv(DICTIONARY_VARIABLE, str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match=f"DING_DICTIONARY={tmp_path / 'elsewhere'} names no file"):
        read_corpus()


def test_a_damaged_shipped_split_says_so(monkeypatch, tmp_path):
    damaged = tmp_path / "ding_test.tsv"
    damaged.write_text("# comment\nDas ist gut.\tThat is good.\nonly one column\n", encoding="utf-8")
    monkeypatch.setitem(SHIPPED_SPLITS, "test", str(damaged))
    with pytest.raises(ValueError, match=r"ding_test.tsv:3: expected 'german<TAB>english'.*restore the file"):
        read_shipped_splits()


@pytest.mark.skipif(not os.path.isfile(SHIPPED_CHECKPOINT), reason="no shipped translator")
def test_the_headline_runs_without_the_dictionary(no_dictionary, capsys, tmp_path):
    """run_translation.py --test --line=7 --html with the shipped translator on a machine without the dictionary."""
    page = tmp_path / "explorer.html"
    run_translation.main(run_translation.parse_args(["--test", "--line=7", "--html", str(page), "--no-show"]))
    lines = capsys.readouterr().out.splitlines()
    pair = read_shipped_splits()["test"][6]
    assert lines[:3] == [f"Line 7 of the test split ({len(read_shipped_splits()['test'])} pairs)",
                         f"German:      {pair.german}", f"Reference:   {pair.english}"]
    assert dict(page_data(page.read_text(encoding="utf-8"))["facts"])["Reference"] == pair.english


def test_scoring_runs_on_the_shipped_valid_split_without_the_dictionary(no_dictionary, capsys, tmp_path):
    valid = read_shipped_splits()["valid"]
    checkpoint = str(tmp_path / "tiny.pth")
    random_translator([(pair.german, pair.english) for pair in valid], 200, max_len=12, embed_dim=8, enc_layers=1,
                      dec_layers=1, num_heads=2).save(checkpoint)
    run_translation.main(run_translation.parse_args(["--eval", "--split", "valid", "--checkpoint", checkpoint,
                                                     "--beam", "1", "--batch-size", "256", "--threads", "1"]))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{len(valid)} valid sentences, greedy" and lines[-1].startswith("BLEU ")


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
