"""Tests of a joint German+English vocabulary (TrainConfig.joint_vocab_size) and of one embedding shared by the
encoder's input, the decoder's input and the output projection (share_all_embeddings): the vocabulary against
vocabularies trained on one language alone (which cannot encode the other's letters), the shared model against an
untied model holding the same values (its logits, and the sum of its three gradients), the parameter count in closed
form, the creation order against parameters drawn by hand, clear errors, and a tiny run that saves, resumes, exports
to float16 and loads back with the sharing intact."""
import os
import sys
from dataclasses import asdict

import pytest
import torch
import torch.nn as nn

import run_translation
from lib.checkpoint import load_checkpoint
from lib.translation.tokenizer import UNK, Vocabulary
from lib.transformer import TransformerModel
from lib.translation.translator import Translator
from lib.training.config import model_kwargs, SHAPE_FIELDS, shape_of, TrainConfig
from lib.translation import commands
from lib.training.data import prepare_data
from tests.helpers import (SUBJECTS, VERBS, WHEN, expected_attention_state, expected_module_list, tiny_config,
                           train_recording)

VOCAB, MAX_LEN, EMBED, HEADS = 12, 6, 8, 2


def shared_model(enc_layers=2, dec_layers=2, seed=0, **kwargs):
    """A small shared-embedding model with every parameter redrawn so that outputs vary."""
    torch.manual_seed(seed)
    model = TransformerModel(VOCAB, VOCAB, max_len=MAX_LEN, embed_dim=EMBED, enc_layers=enc_layers,
                             dec_layers=dec_layers, num_heads=HEADS, share_all_embeddings=True, **kwargs)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.3)
    return model.eval()


def untied_copy(model):
    """The same network without any sharing (three matrices, two input biases), holding ``model``'s values."""
    untied = TransformerModel(**dict(model.config(), share_all_embeddings=False, tie_embeddings=False)).eval()
    state = {name: value for name, value in model.state_dict().items() if name != "decoder_output_bias"}
    state["decoder_final_dense.weight"] = model.enc_input_dense.weight.detach().t().clone()
    state["decoder_final_dense.bias"] = model.decoder_output_bias.detach().clone()
    untied.load_state_dict(state)
    assert untied.enc_input_dense.weight is not untied.dec_input_dense.weight
    return untied


def ids(batch, length, seed):
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def german_english(pairs):
    return [german for german, _ in pairs], [english for _, english in pairs]


CORPUS = [(f"{subject} {verb}{when}.", f"{english_subject} {english_verb}{english_when}.")
          for subject, english_subject in SUBJECTS for verb, english_verb in VERBS for when, english_when in WHEN]


# ---- the joint vocabulary -----------------------------------------------------------------------------------------


def test_a_joint_vocabulary_encodes_both_languages_where_one_language_alone_cannot():
    """The tiny corpus: 'y' and 'w' occur in English only ('today', 'woman'), 'ä' in German only ('läuft'). A
    vocabulary of one language (full character coverage) maps the other language's letters to <UNK>; the joint one
    encodes both languages without <UNK> and decodes every line back to itself."""
    german, english = german_english(CORPUS)
    german_only, english_only = Vocabulary.train(german, 60), Vocabulary.train(english, 60)
    joint = Vocabulary.train_joint(german, english, 60)
    assert UNK in german_only.encode(["today"])[0] and UNK in german_only.encode(["woman"])[0]
    assert UNK in english_only.encode(["läuft"])[0]
    for word in ("today", "woman", "läuft", "schläft"):
        assert UNK not in joint.encode([word])[0], word
    for texts in (german, english):
        assert UNK not in sum(joint.encode(texts), [])
        assert joint.decode(joint.encode(texts)) == texts
    assert joint.model_bytes not in (german_only.model_bytes, english_only.model_bytes)


def test_train_joint_takes_both_languages_in_turns():
    """A cap on the sentences read (here 120 of 288; SentencePiece's least is 101) keeps both languages: SentencePiece
    reads the first ones, so German first and English after would leave English out ('today' would have <UNK>, as
    the cap shows for that order). Lists of unequal length are taken in turns to the end: the same model as
    training on the interleaved list."""
    german, english = german_english(CORPUS * 2)
    capped = Vocabulary.train_joint(german, english, 60, max_sentences=120)
    assert UNK not in capped.encode(["today"])[0] and UNK not in capped.encode(["läuft"])[0]
    assert UNK in Vocabulary.train(german + english, 60, max_sentences=120).encode(["today"])[0]
    turns = [text for pair in zip(german[:40], english[:40]) for text in pair] + german[40:]
    assert Vocabulary.train_joint(german, english[:40], 60).model_bytes == Vocabulary.train(turns, 60).model_bytes


def test_prepare_data_with_a_joint_vocabulary_uses_one_model_for_both_sides(tmp_path):
    config = tiny_config(tmp_path, joint_vocab_size=60)
    data = prepare_data(config)
    assert data.de_vocab.model_bytes == data.en_vocab.model_bytes
    texts = ["Der Hund läuft heute.", "The woman plays today.", "Das Kind"]
    assert data.de_vocab.encode(texts) == data.en_vocab.encode(texts)
    german, english = german_english([(pair.german, pair.english) for pair in data.splits["train"]])
    assert UNK not in sum(data.de_vocab.encode(german) + data.en_vocab.encode(english), [])
    separate = prepare_data(tiny_config(tmp_path))  # the default: two vocabularies, one per language
    assert separate.de_vocab.model_bytes != separate.en_vocab.model_bytes
    assert UNK in separate.de_vocab.encode(["today"])[0]


# ---- the shared embedding -----------------------------------------------------------------------------------------


def test_the_three_uses_are_one_tensor_and_the_logits_use_it():
    model = shared_model()
    weight = model.enc_input_dense.weight
    assert model.dec_input_dense is model.enc_input_dense and model.dec_input_dense.weight is weight
    assert model.tie_embeddings and not hasattr(model, "decoder_final_dense")
    assert sum(parameter is weight for parameter in model.parameters()) == 1
    x1, x2 = ids(2, 5, 1), ids(2, 4, 2)
    logits, _ = model(x1, x2)
    states = []
    model.output_projection = lambda h: states.append(h) or h
    model.decode(x2, model.encode(x1))
    del model.output_projection
    torch.testing.assert_close(logits, states[0] @ weight + model.decoder_output_bias)
    torch.testing.assert_close(logits, untied_copy(model)(x1, x2)[0])  # sharing changes nothing but the identity


def test_the_shared_gradient_is_the_sum_of_the_three_untied_gradients():
    """An untied model whose encoder embedding, decoder embedding and output layer hold the same matrix W (the
    output layer as W^T) gets three gradients; the shared W's is their sum, the shared input bias's the sum of the
    two input biases' gradients."""
    model = shared_model()
    untied = untied_copy(model)
    x1, x2 = ids(3, 5, 3), ids(3, 6, 4)
    for network in (model, untied):
        network.zero_grad()
        network(x1, x2)[0].square().mean().backward()
    gradients = (untied.enc_input_dense.weight.grad, untied.dec_input_dense.weight.grad,
                 untied.decoder_final_dense.weight.grad.t())
    assert all(gradient.abs().sum() > 0 for gradient in gradients)
    torch.testing.assert_close(model.enc_input_dense.weight.grad, sum(gradients))
    torch.testing.assert_close(model.enc_input_dense.bias.grad,
                               untied.enc_input_dense.bias.grad + untied.dec_input_dense.bias.grad)
    torch.testing.assert_close(model.decoder_output_bias.grad, untied.decoder_final_dense.bias.grad)


@pytest.mark.parametrize("enc_layers, dec_layers, pre_norm", [(2, 2, False), (1, 3, True), (0, 1, False)])
def test_the_parameter_count_in_closed_form(enc_layers, dec_layers, pre_norm):
    """V (vocab), E (width), H = 2E (feed-forward), L (max_len): one embedding V*E + E, positions (2L + 1) E, per
    encoder layer 2EH + H + E (feed-forward) + 2E (norm) + 4E^2 + 2E (attention), per decoder layer that plus one
    more attention, the output bias V, and 4E for pre-norm's final norms. That is the untied model's count less its
    decoder embedding (V*E + E) and its output matrix (E*V)."""
    v, e, h, length = VOCAB, EMBED, 2 * EMBED, MAX_LEN
    model = shared_model(enc_layers, dec_layers, pre_norm=pre_norm)
    count = sum(parameter.numel() for parameter in model.parameters())
    attention = 4 * e * e + 2 * e
    layer = 2 * e * h + h + e + 2 * e + attention
    expected = v * e + e + (2 * length + 1) * e + enc_layers * layer + dec_layers * (layer + attention) + v
    assert count == expected + (4 * e if pre_norm else 0)
    untied = untied_copy(model)
    assert count == sum(parameter.numel() for parameter in untied.parameters()) - (v * e + e) - e * v


def test_the_other_parameters_keep_their_creation_order():
    """Seed 0: every parameter equals one drawn by hand in the exercise's order (docs/interface.md) with the decoder's
    input Linear left out (it draws nothing) and decoder_output_bias (zeros) in place of decoder_final_dense."""
    layers, hidden = 2, 2 * EMBED
    torch.manual_seed(0)
    expected = {f"enc_input_dense.{name}": value for name, value in nn.Linear(VOCAB, EMBED).state_dict().items()}
    expected["enc_pos_enc"] = torch.zeros(1, MAX_LEN, EMBED)
    for side, length in (("enc", MAX_LEN), ("dec", MAX_LEN + 1)):
        expected[f"{side}_pos_enc"] = torch.zeros(1, length, EMBED)
        expected.update(expected_module_list(f"{side}_increase_hidden", layers, lambda: nn.Linear(EMBED, hidden)))
        expected.update(expected_module_list(f"{side}_decrease_hidden", layers, lambda: nn.Linear(hidden, EMBED)))
        expected.update(expected_module_list(f"{side}_layer_norm", layers, lambda: nn.LayerNorm(EMBED)))
        for i in range(layers):
            expected.update(expected_attention_state(f"{side}_att.{i}", EMBED))
    for i in range(layers):
        expected.update(expected_attention_state(f"enc_dec_att.{i}", EMBED))
    expected["decoder_output_bias"] = torch.zeros(VOCAB)
    after = torch.rand(3)
    torch.manual_seed(0)
    model = TransformerModel(VOCAB, VOCAB, MAX_LEN, EMBED, layers, layers, HEADS, share_all_embeddings=True)
    assert torch.equal(torch.rand(3), after)  # no other random draws
    state = model.state_dict()
    for name in ("weight", "bias"):
        expected[f"dec_input_dense.{name}"] = expected[f"enc_input_dense.{name}"]
    assert set(state) == set(expected)
    for name, value in expected.items():
        assert torch.equal(state[name], value), name


def test_cached_decoding_equals_the_full_forward():
    model = shared_model(dec_layers=3, pre_norm=True)
    source, target = ids(2, 5, 7), ids(2, MAX_LEN + 1, 8)
    logits, _ = model(source, target)
    memory, caches = model.encode(source), model.new_caches()
    for position in range(MAX_LEN + 1):
        step_logits, _ = model.decode_step(target[:, position:position + 1], memory, caches, position)
        torch.testing.assert_close(step_logits, logits[:, position])


def test_config_round_trip_and_old_configs():
    model = shared_model()
    assert model.config()["share_all_embeddings"] is True and model.config()["tie_embeddings"] is True
    rebuilt = TransformerModel(**model.config())
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.dec_input_dense.weight is rebuilt.enc_input_dense.weight
    assert torch.equal(rebuilt.eval()(ids(1, 3, 5), ids(1, 2, 6))[0], model(ids(1, 3, 5), ids(1, 2, 6))[0])
    old = {name: value for name, value in TransformerModel(VOCAB, VOCAB, MAX_LEN, EMBED).config().items()
           if name != "share_all_embeddings"}  # a config saved before the option existed
    assert TransformerModel(**old).share_all_embeddings is False


# ---- errors -------------------------------------------------------------------------------------------------------


def test_unequal_vocabulary_sizes_are_refused():
    with pytest.raises(ValueError, match="^share_all_embeddings needs one vocabulary for both languages, but "
                                         "en_vocab_size is 11 and de_vocab_size 13"):
        TransformerModel(11, 13, share_all_embeddings=True)


def test_share_all_embeddings_needs_a_joint_vocabulary(tmp_path, single_process, monkeypatch):
    message = "^--share-all-embeddings needs one vocabulary for German and English: add --joint-vocab-size"
    with pytest.raises(ValueError, match=message):
        TrainConfig(share_all_embeddings=True)
    TrainConfig(share_all_embeddings=True, joint_vocab_size=8000)
    TrainConfig(share_all_embeddings=True, init_from="translator.pth")  # its vocabularies and shape are taken
    with pytest.raises(ValueError, match="^--joint-vocab-size must be from 5 to 100000, got 3"):
        TrainConfig(joint_vocab_size=3)
    with pytest.raises(ValueError, match="^--joint-vocab-size must be from 5 to 100000, got -1"):
        TrainConfig(joint_vocab_size=-1)
    monkeypatch.setattr("lib.training.loop.train", lambda *args, **kwargs: pytest.fail("trained"))
    args = run_translation.parse_args(["--train", "--share-all-embeddings", "--out-dir", str(tmp_path / "run")])
    with pytest.raises(ValueError, match=message):
        commands.train(args)


def test_the_flags_reach_the_config_and_the_model():
    args = run_translation.parse_args(["--train", "--joint-vocab-size", "500", "--share-all-embeddings"])
    assert commands.given_settings(args) == {"joint_vocab_size": 500, "share_all_embeddings": True}
    config = TrainConfig(joint_vocab_size=500, share_all_embeddings=True)
    assert model_kwargs(config, 500, 500)["share_all_embeddings"] is True
    assert "share_all_embeddings" in SHAPE_FIELDS
    assert shape_of(shared_model())["share_all_embeddings"] is True
    assert model_kwargs(TrainConfig(), 5, 6)["share_all_embeddings"] is False


# ---- a run: save, resume, export, load ----------------------------------------------------------------------------


def assert_shared(model):
    assert model.dec_input_dense is model.enc_input_dense
    assert model.dec_input_dense.weight is model.enc_input_dense.weight
    assert model.share_all_embeddings and not hasattr(model, "decoder_final_dense")


def test_a_joint_shared_run_saves_resumes_exports_and_loads_back(tmp_path, single_process, capsys):
    """A tiny run of 4 steps, resumed to 8, equals the same run of 8 steps without a break; its last.pth and
    best.pth hold one vocabulary twice; --export writes float16 weights stored once, which load back shared and
    translate as the float32 translator rounded to float16 does (and, here, as the float32 one); a new run
    --init-from the export keeps the sharing and the one vocabulary."""
    joint = dict(joint_vocab_size=60, share_all_embeddings=True)
    straight = tiny_config(tmp_path / "straight", **joint)
    _, straight_steps = train_recording(straight)
    config = tiny_config(tmp_path / "broken", max_steps=4, **joint)
    train_recording(config)
    _, resumed_steps = train_recording(config, resume=True, overrides={"max_steps": 8})
    assert [step["loss"] for step in resumed_steps] == pytest.approx([step["loss"] for step in straight_steps[4:]],
                                                                     rel=1e-5)
    last, expected = (load_checkpoint(os.path.join(run.out_dir, "last.pth")) for run in (config, straight))
    assert last["step"] == 8
    assert {name: value for name, value in last["config"].items() if name not in ("corpus", "out_dir")} == {
        name: value for name, value in asdict(straight).items() if name not in ("corpus", "out_dir")}
    for name, value in expected["model"].items():
        torch.testing.assert_close(last["model"][name], value, rtol=1e-5, atol=1e-6)
    assert torch.equal(last["de_vocab"], last["en_vocab"])
    assert torch.equal(last["model"]["enc_input_dense.weight"], last["model"]["dec_input_dense.weight"])

    best = os.path.join(config.out_dir, "best.pth")
    translator = Translator.load(best)
    assert_shared(translator.model)
    assert translator.de_vocab.model_bytes == translator.en_vocab.model_bytes
    exported = str(tmp_path / "exported.pth")
    run_translation.main(run_translation.parse_args(["--export", exported, "--checkpoint", best]))
    saved = load_checkpoint(exported)["model"]
    assert saved["enc_input_dense.weight"].dtype == torch.float16
    assert (saved["enc_input_dense.weight"].untyped_storage().data_ptr()
            == saved["dec_input_dense.weight"].untyped_storage().data_ptr())  # stored once
    loaded = Translator.load(exported)
    assert_shared(loaded.model)
    rounded = Translator.load(best)
    with torch.no_grad():
        for parameter in rounded.model.parameters():
            parameter.copy_(parameter.half().float())
    for name, value in rounded.model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], value), name
    german = [pair[0] for pair in CORPUS[::5]]
    translations = loaded.translate(german)
    assert translations == rounded.translate(german) == translator.translate(german)
    assert any(translations)

    # --init-from the exported translator, without --joint-vocab-size: its shape (shared) and its one vocabulary
    second = tiny_config(tmp_path / "second", max_steps=2, eval_every=2, init_from=exported)
    train_recording(second)
    assert load_checkpoint(os.path.join(second.out_dir, "last.pth"))["config"]["share_all_embeddings"] is True
    continued = Translator.load(os.path.join(second.out_dir, "best.pth"))
    assert_shared(continued.model)
    assert continued.de_vocab.model_bytes == continued.en_vocab.model_bytes == translator.de_vocab.model_bytes


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
