"""Tests of TrainConfig: every field documented (help text for the command line, range, resumable or not), and bad
values refused when the config is made, with the flag's name (the ranges are checked by lib.cli's argparse types,
so the command line built from the metadata says the same)."""
import math
import pathlib
import sys
from dataclasses import fields

import pytest

from lib.training.config import flag, TrainConfig


def test_every_field_has_a_help_text_and_a_range_or_kind():
    for setting in fields(TrainConfig):
        meta = setting.metadata
        assert isinstance(meta["help"], str) and len(meta["help"]) > 10, setting.name
        assert set(meta) == {"help", "low", "high", "low_open", "high_open", "choices", "resumable"}, setting.name
        assert isinstance(meta["resumable"], bool)


def test_defaults_are_valid_and_unchanged():
    config = TrainConfig()
    assert (config.lr, config.dropout, config.batch_tokens, config.max_len, config.phrases_per_epoch) == (
        1e-3, 0.1, 2500, 48, 40000)
    assert (config.pre_norm, config.tie_embeddings, config.ffn_dim, config.attention_dropout,
            config.activation_dropout, config.decoder_layerdrop, config.source_word_dropout,
            config.target_word_dropout, config.phrase_tag) == (False, False, 0, -1.0, 0.0, 0.0, 0.0, 0.0, False)
    assert (config.joint_vocab_size, config.share_all_embeddings) == (0, False)


BAD = [("lr", 0.0, "--lr must be above 0, got 0"), ("lr", -1.0, "--lr must be above 0"),
       ("lr", math.nan, "--lr must be a finite number, got nan"), ("lr", math.inf, "--lr must be a finite number"),
       ("dropout", 1.0, "--dropout must be at least 0 and below 1, got 1"), ("dropout", -0.1, "--dropout must be"),
       ("batch_tokens", 0, "--batch-tokens must be at least 1, got 0"), ("eval_every", 0, "--eval-every must be"),
       ("max_steps", 0, "--max-steps must be at least 1"), ("max_minutes", -1.0, "--max-minutes must be at least 0"),
       ("label_smoothing", 1.0, "--label-smoothing must be"), ("clip_norm", 0.0, "--clip-norm must be above 0"),
       ("weight_decay", -0.01, "--weight-decay must be at least 0"), ("warmup_steps", -1, "--warmup-steps"),
       ("seed", -1, "--seed must be from 0 to 4294967295, got -1"), ("seed", 2**32, "--seed must be"),
       ("ffn_dim", -1, "--ffn-dim must be at least 0"), ("attention_dropout", 1.0, "--attention-dropout must be below"),
       ("activation_dropout", 1.0, "--activation-dropout"), ("decoder_layerdrop", -0.1, "--decoder-layerdrop"),
       ("source_word_dropout", 1.0, "--source-word-dropout"), ("target_word_dropout", 2.0, "--target-word-dropout"),
       ("keep_snapshots", -1, "--keep-snapshots"), ("eval_sentences", 0, "--eval-sentences"),
       ("embed_dim", 0, "--embed-dim must be at least 1"), ("joint_vocab_size", -1, "--joint-vocab-size must be"),
       ("joint_vocab_size", 4, "--joint-vocab-size must be 0 (a vocabulary per language) or at least 5, got 4"),
       ("share_all_embeddings", True, "--share-all-embeddings needs one vocabulary for German and English: add "
        "--joint-vocab-size"), ("de_vocab_size", 4, "--de-vocab-size must be at least 5"),
       ("lr_schedule", "cosine", "--lr-schedule must be one of inverse-sqrt, linear"),
       ("corpus_format", "csv", "--corpus-format must be one of ding, tsv, iwslt"),
       ("embed_dim", "64", "--embed-dim must be a whole number, got '64'"),
       ("max_steps", 2.5, "--max-steps must be a whole number"),
       ("pre_norm", 1, "--pre-norm must be True or False, got 1"), ("lr", True, "--lr must be a finite number"),
       ("out_dir", 3, "--out-dir must be a string"), ("device", "gpu", "--device 'gpu' is not a device")]


@pytest.mark.parametrize("name, value, message", BAD, ids=[f"{name}={value!r}" for name, value, _ in BAD])
def test_bad_values_are_refused_naming_the_flag(name, value, message):
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        TrainConfig(**{name: value})


def test_limits_themselves_are_accepted():
    TrainConfig(lr=1e-12, dropout=0.0, attention_dropout=-1.0, batch_tokens=1, max_minutes=0.0, keep_snapshots=0,
                ffn_dim=0, seed=2**32 - 1, sentence_repeats=0, phrases_per_epoch=0, warmup_steps=0, enc_layers=0,
                dec_layers=0, eval_every=1, device="cuda:1")
    TrainConfig(attention_dropout=0.0, decoder_layerdrop=0.99, source_word_dropout=0.5, max_minutes=0.5, lr=2,
                joint_vocab_size=5, share_all_embeddings=True)


def test_the_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="^--num-heads 3 must divide --embed-dim 256"):
        TrainConfig(num_heads=3)


def test_paths_may_be_path_objects():
    config = TrainConfig(out_dir=pathlib.Path("runs") / "a", corpus=pathlib.Path("corpus.tsv"))
    assert config.out_dir == "runs/a" and config.corpus == "corpus.tsv"


def test_flag_names():
    assert flag("max_steps") == "--max-steps" and flag("lr") == "--lr"


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
