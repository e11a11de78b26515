"""--extra-corpus: a tsv of extra training pairs beside the corpus: read by source, never held out, its
held-out sentences dropped, tokenized behind an optional domain tag and drawn per epoch."""
import gzip

import pytest

from lib.translation.corpus import Pair, comparison_key, read_corpus, read_extra_corpus, split_corpus, without_held_out
from lib.translation.tokenizer import END
from lib.training.config import extra_source_weights
from lib.training.data import EXTRA_TAG, epoch_batches, prepare_data, weighted_draw
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


@pytest.mark.parametrize("text, weights", [
    (None, {}), ("", {}), ("games", {"games": 1.0}), (" games : 3 , docs,software:0.2 ,", {"games": 3.0, "docs": 1.0,
                                                                                           "software": 0.2}),
    ("docs:1e-1", {"docs": 0.1})])
def test_extra_sources_name_sources_with_optional_weights(text, weights):
    assert extra_source_weights(text) == weights
    assert list(extra_source_weights(text)) == list(weights)  # in the order given


@pytest.mark.parametrize("text", ["games:0", "games:-1", "games:x", "games:inf", "games:nan", ":2", "games:2:3",
                                  "games:"])
def test_an_extra_source_weight_that_is_not_a_positive_number_is_refused(text, tmp_path):
    with pytest.raises(ValueError, match=f"^--extra-sources {text}: .* is not SOURCE or SOURCE:WEIGHT with a positive "
                                         "weight"):
        extra_source_weights(text)
    with pytest.raises(ValueError, match="is not SOURCE or SOURCE:WEIGHT"):  # the config refuses it
        tiny_config(tmp_path, extra_corpus=write_extra(tmp_path / "extra.tsv"), extra_sources=text)


def test_a_weighted_draw_gives_each_source_its_weight_times_its_size():
    import random
    examples = [("a", index) for index in range(100)] + [("b", index) for index in range(50)] + [
        ("c", index) for index in range(1000)]
    sources = [name for name, _ in examples]
    drawn = weighted_draw(examples, sources, {"a": 2.0, "c": 0.1}, 300, random.Random(0))
    # masses 200, 50 and 100 of 350: 171.4, 42.9 and 85.7 of the 300 pairs
    assert [sum(name == source for name, _ in drawn) for source in "abc"] == [171, 43, 86]
    assert {example for example in drawn if example[0] == "a"} == set(examples[:100])  # each once, 71 twice
    assert len(set(drawn[171:])) == 43 + 86  # below their size: no pair twice
    assert drawn == weighted_draw(examples, sources, {"a": 2.0, "c": 0.1}, 300, random.Random(0))  # seeded


def test_the_epoch_draws_extra_pairs_by_source_weight_and_unit_weights_change_nothing(tmp_path):
    path = write_extra(tmp_path / "extra.tsv", EXTRA * 3)
    plain = prepare_data(tiny_config(tmp_path))
    vocabularies = (plain.de_vocab, plain.en_vocab)
    data = prepare_data(tiny_config(tmp_path, extra_corpus=path, max_len=64), vocabularies)
    assert data.train_extra_sources == [source for _, _, source in EXTRA * 3]

    def key(example):
        return tuple(example[0]), tuple(example[1])
    source_of = {key(example): source for example, source in zip(data.train_extra, data.train_extra_sources)}

    def drawn(**changes):
        """The sources of the extra pairs that epoch 1 holds, and its batches."""
        config = tiny_config(tmp_path, extra_corpus=path, max_len=64, extra_per_epoch=12, **changes)
        batches = epoch_batches(data, config, 1)
        examples = [key(example) for batch in batches for example in batch]
        return [source_of[example] for example in examples if example in source_of], batches
    sources, _ = drawn(extra_sources="software:4,games,docs")  # masses 24, 6 and 3 of 33: 8.7, 2.2, 1.1 of 12
    assert [sources.count(name) for name in ("software", "games", "docs")] == [9, 2, 1]
    assert drawn(extra_sources="software:1,games:1,docs")[1] == drawn()[1]  # weights of 1: the unweighted draw


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
