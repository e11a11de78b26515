"""Tests of the recipe options of lib/training/loop.py: the model's shape and dropouts reach
TransformerModel and its checkpoints, word dropout replaces the expected share of tokens and only real ones, and
tagged phrases carry the tag where sentences and validation never do."""
import math
import os
import sys

import pytest
import torch

from lib.checkpoint import load_checkpoint
from lib.translation.tokenizer import END, PAD, START, UNK
from lib.transformer import TransformerModel
from lib.translation.translator import Translator
from lib.training.config import build_model, model_kwargs, shape_of, TrainConfig
from lib.training.data import collate, epoch_batches, PHRASE_TAG, prepare_data, training_batch
from tests.helpers import PHRASES, tiny_config, train_recording

RECIPE = dict(pre_norm=True, tie_embeddings=True, ffn_dim=24, attention_dropout=0.2, activation_dropout=0.1,
              decoder_layerdrop=0.25, scale_embeddings=True)


def test_model_kwargs_map_the_config_to_the_models_arguments():
    assert model_kwargs(TrainConfig(), 100, 200) == dict(
        en_vocab_size=100, de_vocab_size=200, max_len=48, embed_dim=256, enc_layers=3, dec_layers=3, num_heads=4,
        dropout=0.1, pre_norm=False, tie_embeddings=False, ffn_dim=None, attention_dropout=None,
        activation_dropout=0.0, decoder_layerdrop=0.0, scale_embeddings=False, share_all_embeddings=False)
    options = model_kwargs(TrainConfig(**RECIPE), 100, 200)
    assert {name: options[name] for name in RECIPE} == RECIPE


def test_the_default_config_builds_the_exercises_model(tmp_path):
    """Same parameters, in the same creation order, as the constructor called with the exercise's arguments alone."""
    config = TrainConfig(embed_dim=16, enc_layers=2, dec_layers=2, num_heads=2, max_len=10)
    vocabularies = type("Data", (), {"en_vocab": range(30), "de_vocab": range(40)})
    torch.manual_seed(0)
    built = build_model(config, vocabularies)
    torch.manual_seed(0)
    exercise = TransformerModel(30, 40, max_len=10, embed_dim=16, enc_layers=2, dec_layers=2, num_heads=2,
                                dropout=0.1)
    assert list(built.state_dict()) == list(exercise.state_dict())
    for name, value in exercise.state_dict().items():
        assert torch.equal(built.state_dict()[name], value), name


def test_each_option_reaches_the_model():
    vocabularies = type("Data", (), {"en_vocab": range(30), "de_vocab": range(40)})
    model = build_model(TrainConfig(embed_dim=16, num_heads=2, **RECIPE), vocabularies)
    assert {name: model.config()[name] for name in RECIPE} == RECIPE
    assert model.enc_increase_hidden[0].out_features == 24 and not hasattr(model, "decoder_final_dense")
    assert shape_of(model) == dict(max_len=48, embed_dim=16, enc_layers=3, dec_layers=3, num_heads=2, pre_norm=True,
                                   tie_embeddings=True, ffn_dim=24, scale_embeddings=True,
                                   share_all_embeddings=False)
    default = build_model(TrainConfig(embed_dim=16, num_heads=2), vocabularies)
    assert default.enc_increase_hidden[0].out_features == 32 and shape_of(default)["ffn_dim"] is None


def test_a_run_keeps_the_options_in_its_checkpoints(tmp_path, single_process):
    config = tiny_config(tmp_path, max_steps=4, **RECIPE)
    train_recording(config)
    last = load_checkpoint(os.path.join(config.out_dir, "last.pth"))
    assert {name: last["config"][name] for name in RECIPE} == RECIPE
    translator = Translator.load(os.path.join(config.out_dir, "best.pth"))
    assert {name: translator.model.config()[name] for name in RECIPE} == RECIPE
    for name, value in last["model"].items():
        assert torch.equal(translator.model.state_dict()[name], value), name


def test_init_from_takes_the_translators_shape_options(tmp_path, single_process):
    first = tiny_config(tmp_path, out_dir=str(tmp_path / "first"), max_steps=4, pre_norm=True, tie_embeddings=True,
                        ffn_dim=24)
    train_recording(first)
    second = tiny_config(tmp_path, out_dir=str(tmp_path / "second"), max_steps=2, eval_every=2,
                         init_from=os.path.join(first.out_dir, "best.pth"))
    train_recording(second)
    saved = load_checkpoint(os.path.join(second.out_dir, "last.pth"))["config"]
    assert (saved["pre_norm"], saved["tie_embeddings"], saved["ffn_dim"]) == (True, True, 24)


# ---- word dropout -----------------------------------------------------------------------------------------------


def word_dropout_counts(clean, noisy):
    """(replaced eligible tokens, eligible tokens, changed protected tokens, changed to something other than UNK)."""
    eligible = ~torch.isin(clean, torch.tensor([PAD, START, END]))
    changed = clean != noisy
    return (int((changed & eligible).sum()), int(eligible.sum()), int((changed & ~eligible).sum()),
            int((changed & (noisy != UNK)).sum()))


def test_word_dropout_in_a_run_replaces_about_p_of_the_real_tokens(tmp_path, single_process):
    """p = 0.5 on both sides over 6 steps: the replaced share of the real source and decoder-input tokens lies
    within 4 binomial standard deviations of 0.5; padding, start and end tokens and the labels never change."""
    config = tiny_config(tmp_path, max_steps=6, eval_every=6, source_word_dropout=0.5, target_word_dropout=0.5)
    _, steps = train_recording(config)
    data = prepare_data(config, (Translator.load(os.path.join(config.out_dir, "best.pth")).de_vocab,
                                 Translator.load(os.path.join(config.out_dir, "best.pth")).en_vocab))
    batches = epoch_batches(data, config, 0)
    replaced = eligible = 0
    for step, batch in zip(steps, batches):
        source, decoder_input, decoder_target = collate(batch, "cpu")
        assert torch.equal(step["decoder_target"], decoder_target)
        for clean, noisy in ((source, step["source"]), (decoder_input, step["decoder_input"])):
            counts = word_dropout_counts(clean, noisy)
            assert counts[2:] == (0, 0)
            replaced, eligible = replaced + counts[0], eligible + counts[1]
    assert eligible > 500
    assert abs(replaced - 0.5 * eligible) <= 4 * math.sqrt(eligible * 0.25), (replaced, eligible)


def test_word_dropout_is_a_function_of_seed_rank_and_step(tmp_path):
    """Not of torch's global RNG (so other options' random draws do not move it), and not the same at every step."""
    config = tiny_config(tmp_path, source_word_dropout=0.3, target_word_dropout=0.3)
    batch = [([5, 6, 7, 8, 9, 10], [5, 6, 7, 8]), ([11, 12, 13], [9, 10, 11, 12, 13])] * 8
    torch.manual_seed(1)
    first = training_batch(batch, config, "cpu", rank=0, step=3)
    torch.manual_seed(2)
    again = training_batch(batch, config, "cpu", rank=0, step=3)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    for rank, step in ((0, 4), (1, 3)):
        other = training_batch(batch, config, "cpu", rank=rank, step=step)
        assert not torch.equal(other[0], first[0])
    clean = collate(batch, "cpu")
    assert all(torch.equal(a, b) for a, b in zip(training_batch(batch, tiny_config(tmp_path), "cpu"), clean))


# ---- tagged phrases ---------------------------------------------------------------------------------------------


def test_the_tag_is_on_phrases_only(tmp_path):
    untagged = tiny_config(tmp_path, phrases=True, phrases_per_epoch=12)
    tagged = tiny_config(tmp_path, phrases=True, phrases_per_epoch=12, phrase_tag=True)
    plain = prepare_data(untagged)
    data = prepare_data(tagged, (plain.de_vocab, plain.en_vocab))
    assert len(data.train_phrases) == len(PHRASES)
    assert [(german[1:], english) for german, english in data.train_phrases] == plain.train_phrases
    assert all(german[0] == PHRASE_TAG for german, _ in data.train_phrases)
    assert data.train_sentences == plain.train_sentences and data.valid_examples == plain.valid_examples
    assert not any(PHRASE_TAG in german for german, _ in data.train_sentences + data.valid_examples)
    assert plain.de_vocab.encode(["<START> der Hund"])[0][0] != PHRASE_TAG  # text cannot make the tag


def test_a_tagged_run_trains_on_tagged_phrases_and_plain_sentences(tmp_path, single_process):
    config = tiny_config(tmp_path, phrases=True, phrases_per_epoch=12, phrase_tag=True, max_steps=8)
    _, steps = train_recording(config)
    data = prepare_data(config, (Translator.load(os.path.join(config.out_dir, "best.pth")).de_vocab,
                                 Translator.load(os.path.join(config.out_dir, "best.pth")).en_vocab))
    phrases = {tuple(german[1:]) for german, _ in data.train_phrases}
    sentences = {tuple(german) for german, _ in data.train_sentences}
    tagged = untagged = 0
    for step in steps:
        for row in step["source"].tolist():
            row = tuple(token for token in row if token != PAD)
            if row[0] == PHRASE_TAG:
                assert row[1:] in phrases
                tagged += 1
            else:
                assert row in sentences
                untagged += 1
    assert tagged > 0 and untagged > 0


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
