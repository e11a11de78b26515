"""lib/training/data.py: what a run trains on. The everyday dev set (data/everyday.tsv) is never trained on: its
sentences are dropped from the corpus's training split and from --extra-corpus, German or English side, case and
punctuation ignored, as the valid and test sentences are."""
import sys

import pytest

from lib.translation.corpus import (EVERYDAY_PATH, Pair, everyday_keys, read_corpus, read_tsv, split_corpus,
                                    without_everyday, without_held_out)
from lib.training.data import prepare_data
from tests.helpers import tiny_config

EVERYDAY = read_tsv(EVERYDAY_PATH)


def test_without_everyday_drops_a_pair_by_either_side_case_and_punctuation_ignored():
    german, english = EVERYDAY[0].german, EVERYDAY[1].english
    pairs = [Pair(german.upper().rstrip(".!?"), "something else", True), Pair("Etwas anderes.", english, True),
             Pair("Etwas anderes.", "Something else.", True)]
    assert without_everyday(pairs) == pairs[2:]
    assert without_everyday(pairs, keys=(set(), set())) == pairs


def test_without_held_out_drops_everyday_pairs_from_extra_text():
    extra = [(EVERYDAY[2], "games"), (Pair("Der Hund schläft gern.", "The dog likes to sleep.", True), "games")]
    splits = {"valid": [], "test": []}
    assert without_held_out(extra, splits) == extra[1:]


def test_the_everyday_keys_hold_every_sentence_of_the_set():
    german, english = everyday_keys()
    assert len(EVERYDAY) >= 400 and len(german) == len(EVERYDAY)  # the German sides are unique
    assert len(english) > 0.9 * len(EVERYDAY)


def test_a_run_never_trains_on_an_everyday_sentence(tmp_path, monkeypatch):
    config = tiny_config(tmp_path, de_vocab_size=150, en_vocab_size=150)
    with open(config.corpus, "a", encoding="utf-8") as corpus:
        corpus.writelines(f"{pair.german}\t{pair.english}\n" for pair in EVERYDAY)
    training = split_corpus(read_corpus(config.corpus, "tsv"))["train"]
    everyday_in_train = len(training) - len(without_everyday(training))
    assert everyday_in_train > 300  # most of them fall in the training split by their hash
    data = prepare_data(config)
    plain = prepare_data(tiny_config(tmp_path / "plain", de_vocab_size=150, en_vocab_size=150))
    assert len(data.train_sentences) == len(plain.train_sentences)  # everyday pairs added, none of them kept
    monkeypatch.setattr("lib.training.data.without_everyday", lambda pairs: pairs)  # the filter matters
    assert len(prepare_data(config).train_sentences) > len(plain.train_sentences) + 20


def test_the_second_dev_set_is_the_everyday_set_unless_another_or_none_is_named(tmp_path):
    default = prepare_data(tiny_config(tmp_path / "default"))
    assert default.dev_pairs == EVERYDAY
    none = prepare_data(tiny_config(tmp_path / "none", dev_corpus="none"))
    assert none.dev_pairs == [] and none.train_sentences == default.train_sentences


def test_a_dev_set_of_ones_own_is_never_trained_on(tmp_path):
    config = tiny_config(tmp_path)
    training = split_corpus(read_corpus(config.corpus, "tsv"))["train"]
    mine = training[:5]
    (tmp_path / "mine.tsv").write_text("".join(f"{pair.german.upper()}\t{pair.english}\n" for pair in mine))
    extra = tmp_path / "extra.tsv"  # the same sentences as extra text, and one other pair
    extra.write_text("".join(f"{pair.german}\t{pair.english}\tgames\n" for pair in mine) + "Ein Hund.\tA dog.\tgames\n")
    data = prepare_data(tiny_config(tmp_path, dev_corpus=str(tmp_path / "mine.tsv"), extra_corpus=str(extra)))
    assert [pair.english for pair in data.dev_pairs] == [pair.english for pair in mine]
    assert len(data.train_sentences) == len(prepare_data(config).train_sentences) - 5
    assert len(data.train_extra) == 1


def test_extra_sources_without_an_extra_corpus_is_an_error(tmp_path):
    from lib.training.loop import train
    config = tiny_config(tmp_path, extra_sources="games")
    with pytest.raises(ValueError, match="--extra-sources games chooses among the sources of --extra-corpus, but no "
                                         "--extra-corpus is given"):
        train(config, progress=False)
    assert not (tmp_path / "run" / "last.pth").exists()


def test_an_extra_corpus_that_leaves_nothing_is_an_error(tmp_path):
    from lib.training.loop import train
    tabs = tmp_path / "tabs.tsv"
    tabs.write_text("\t\t\n\t\t\n", encoding="utf-8")
    with pytest.raises(ValueError, match="tabs.tsv leaves no pair to train on"):
        train(tiny_config(tmp_path, extra_corpus=str(tabs)), progress=False)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
