"""Tests of lib/training/state.py's check of a last.pth before --resume builds anything from it: the settings a
resumed run cannot change are checked against their flags' ranges, naming the file."""
import sys
from dataclasses import asdict

import pytest
import torch

from lib.training.config import TrainConfig, resumed_config
from lib.training.state import TRAINING_STATE_KEYS, check_training_state

PATH = "run/last.pth"
ADVICE = "; it cannot be resumed: start a new run in another --out-dir (--init-from its best.pth keeps the weights)"


def last_pth(**changes):
    """A training state as save_last writes it, its config's values changed by ``changes`` (no model in it: the
    check reads the config alone)."""
    state = {key: torch.zeros(1) for key in TRAINING_STATE_KEYS}
    state["config"] = dict(asdict(TrainConfig()), **changes)
    return state


# (the stored config's changes, the words of the one-line error)
DAMAGED = [
    (dict(max_len=2_000_000), f"{PATH} is a damaged training state: its stored config max_len must be from 1 to "
                              f"1024, got 2000000{ADVICE}"),
    (dict(embed_dim=10 ** 6, enc_layers=-1), "its stored config embed_dim must be from 1 to 8192, got 1000000; "
                                             "enc_layers must be from 0 to 64, got -1;"),
    (dict(num_heads=10 ** 40), "num_heads must be from 1 to 256, got a number of about 41 digits"),
    (dict(ffn_dim=10 ** 7), "ffn_dim must be from 1 to 65536, got 10000000"),
    (dict(de_vocab_size="8000"), "de_vocab_size must be a whole number, got '8000'"),
    (dict(seed=-1), "seed must be from 0 to 4294967295, got -1"),
    (dict(corpus_format="csv"), "corpus_format must be one of ding, tsv, iwslt, got 'csv'"),
    (dict(pre_norm="no"), "pre_norm must be True or False, got 'no'"),
]


@pytest.mark.parametrize("changes, words", DAMAGED, ids=[str(changes)[:40] for changes, _ in DAMAGED])
def test_a_stored_setting_that_a_resume_cannot_change_is_checked_against_its_flag_range(changes, words):
    with pytest.raises(ValueError) as error:
        check_training_state(last_pth(**changes), PATH)
    assert words in str(error.value) and "\n" not in str(error.value), str(error.value)


def test_old_spellings_of_unset_and_resumable_settings_are_left_to_the_resumed_config():
    """ffn_dim 0 meant "unset" before None did; a resumable setting out of range is named by its flag, which a
    resumed run may give to replace it."""
    check_training_state(last_pth(ffn_dim=0, attention_dropout=-1.0), PATH)
    check_training_state(last_pth(batch_tokens=10 ** 9), PATH)
    with pytest.raises(ValueError, match="--batch-tokens must be from 1 to 1000000, got 1000000000"):
        resumed_config(last_pth(batch_tokens=10 ** 9)["config"], {}, PATH)
    assert resumed_config(last_pth(batch_tokens=10 ** 9)["config"], {"batch_tokens": 500}, PATH).batch_tokens == 500


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
