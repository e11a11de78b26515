"""--extra-corpus: a tsv of extra training pairs beside the corpus: read by source, never held out, its
held-out sentences dropped, tokenized behind an optional domain tag and drawn per epoch."""
import gzip

import pytest

from lib.translation.corpus import Pair, comparison_key, read_corpus, read_extra_corpus, split_corpus, without_held_out
from lib.translation.tokenizer import END
from lib.training.data import EXTRA_TAG, epoch_batches, prepare_data
from lib.training.loop import train
from tests.helpers import tiny_config

EXTRA = [("Datei öffnen", "Open file", "software"), ("Der Hund schläft gern.", "The dog likes to sleep.", "games"),
         ("Die Katze läuft heute nach Hause.", "The cat runs home today.", "games"),
         ("Speichern unter", "Save as", "software"), ("Ein Kind singt.", "A child sings.", "docs")]


def write_extra(path, rows=EXTRA):
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def test_comparison_key_ignores_case_and_punctuation():
    assert comparison_key("Wie bitte?") == comparison_key("wie  BITTE") == "wie bitte"
    assert comparison_key("Ich weiß nicht.") == comparison_key("Ich weiss nicht") == "ich weiss nicht"  # casefold
    assert comparison_key("Wie bitte?") != comparison_key("Wie bitte, Herr?")


def test_read_extra_corpus_keeps_file_order_and_filters_sources(tmp_path):
    path = write_extra(tmp_path / "extra.tsv")
    pairs = read_extra_corpus(path)
    assert [(pair.german, pair.english, source) for pair, source in pairs] == EXTRA
    assert [pair.sentence for pair, _ in pairs] == [False, True, True, False, True]
    assert [pair.english for pair, _ in read_extra_corpus(path, ["games"])] == [EXTRA[1][1], EXTRA[2][1]]
    assert len(read_extra_corpus(path, {"games", "docs"})) == 3


def test_a_gzip_compressed_corpus_reads_as_the_plain_one(tmp_path):
    plain = write_extra(tmp_path / "extra.tsv")
    compressed = tmp_path / "extra.tsv.gz"
    with open(plain, "rb") as source, gzip.open(compressed, "wb") as target:
        target.write(source.read())
    assert read_extra_corpus(str(compressed)) == read_extra_corpus(plain)
    assert read_corpus(str(compressed), "tsv") == read_corpus(plain, "tsv")
    broken = tmp_path / "latin1.tsv.gz"
    with gzip.open(broken, "wb") as target:
        target.write("Der Hund.\tThe dog.\nGrüße.\tGreetings.\n".encode("latin-1"))
    with pytest.raises(ValueError, match="line 2 has the byte 0xfc at character 3"):
        read_extra_corpus(str(broken))


def test_read_extra_corpus_errors_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="tools/build_parallel_corpus.py"):
        read_extra_corpus(str(tmp_path / "missing.tsv"))
    path = write_extra(tmp_path / "extra.tsv")
    with pytest.raises(ValueError, match="has no source manpages; its sources are docs, games, software"):
        read_extra_corpus(path, ["games", "manpages"])
    bad = tmp_path / "bad.tsv"
    bad.write_text("nur Deutsch\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.tsv:1: expected 'german<TAB>english<TAB>source'"):
        read_extra_corpus(str(bad))


def test_without_held_out_drops_valid_and_test_sentences_on_either_side():
    splits = {"train": [], "valid": [Pair("Wie bitte?", "Pardon?", True)],
              "test": [Pair("Ich weiß nicht.", "I don't know.", True)]}
    extra = [(Pair("wie bitte", "What?", False), "a"), (Pair("Keine Ahnung.", "I DON'T KNOW", True), "b"),
             (Pair("Wie bitte, Herr?", "Pardon, sir?", True), "c")]
    assert without_held_out(extra, splits) == [extra[2]]


def test_prepare_data_tokenizes_extra_pairs_behind_the_tag_and_never_holds_them_out(tmp_path):
    config = tiny_config(tmp_path)
    held_out = split_corpus(read_corpus(config.corpus, "tsv"))["valid"][0]
    path = write_extra(tmp_path / "extra.tsv", EXTRA + [(held_out.german.upper(), "something else", "games")])
    plain = prepare_data(config)
    data = prepare_data(tiny_config(tmp_path, extra_corpus=path, max_len=64), (plain.de_vocab, plain.en_vocab))
    expected = [(plain.de_vocab.encode([german])[0], plain.en_vocab.encode([english])[0]) for german, english, _ in
                EXTRA]
    assert data.train_extra == expected  # in file order, the held-out sentence dropped
    assert data.splits == plain.splits
    tagged = prepare_data(tiny_config(tmp_path, extra_corpus=path, extra_tag=True, extra_sources="games", max_len=64),
                          (plain.de_vocab, plain.en_vocab))
    assert EXTRA_TAG == END
    assert tagged.train_extra == [([END] + german, english) for german, english in expected[1:3]]


def test_epoch_batches_draw_extra_per_epoch_pairs(tmp_path):
    path = write_extra(tmp_path / "extra.tsv")
    plain = prepare_data(tiny_config(tmp_path))
    vocabularies = (plain.de_vocab, plain.en_vocab)

    def count(config, epoch=0):
        data = prepare_data(config, vocabularies)
        examples = [example for batch in epoch_batches(data, config, epoch) for example in batch]
        return sum(example in data.train_extra for example in examples), len(examples)
    base = len(plain.train_sentences) * 2
    assert count(tiny_config(tmp_path)) == (0, base)
    fitting = len(prepare_data(tiny_config(tmp_path, extra_corpus=path), vocabularies).train_extra)
    assert 2 <= fitting < len(EXTRA)  # --max-len 16 leaves some out
    assert count(tiny_config(tmp_path, extra_corpus=path, extra_per_epoch=1)) == (1, base + 1)
    assert count(tiny_config(tmp_path, extra_corpus=path, extra_per_epoch=None)) == (fitting, base + fitting)
    assert count(tiny_config(tmp_path, extra_corpus=path, extra_per_epoch=9)) == (fitting, base + fitting)
    # Without an extra corpus the batches are exactly those of a run that never had the option.
    assert epoch_batches(plain, tiny_config(tmp_path), 3) == epoch_batches(
        prepare_data(tiny_config(tmp_path, extra_per_epoch=7), vocabularies), tiny_config(tmp_path), 3)


def test_a_run_trains_on_the_extra_corpus(tmp_path, single_process):
    config = tiny_config(tmp_path, extra_corpus=write_extra(tmp_path / "extra.tsv"), extra_tag=True, max_steps=4)
    records = train(config, progress=False)
    assert [record["step"] for record in records] == [4]


def test_a_missing_extra_corpus_is_refused_before_the_corpus_is_read(tmp_path, single_process, monkeypatch):
    from lib.training import loop
    monkeypatch.setattr(loop, "prepare_data", lambda *args: pytest.fail("the corpus was read"))
    for missing, what in ((tmp_path / "missing.tsv", "does not exist"), (tmp_path, "is a folder")):
        with pytest.raises(OSError, match=f"^--extra-corpus .* {what}.*; build it with 'python "
                                          "tools/build_parallel_corpus.py'"):
            train(tiny_config(tmp_path / "run", extra_corpus=str(missing)), progress=False)
