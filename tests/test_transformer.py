"""Tests of lib/transformer.py against independent references: the exercise's seeded parameter order and values,
torch's scaled_dot_product_attention per head, causality, cached decoding, key padding, ids versus
one-hot; the recipe options against formulas written out by hand (pre-norm), gradient sums (tied embeddings), torch's
dropout with the same seed and a model without the skipped layers (layer-drop); clear errors for bad ids."""
import math
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.transformer import MultiHeadAttention, TransformerModel
from tests.helpers import expected_attention_state, expected_module_list

EN, DE, MAX_LEN, EMBED, HEADS = 11, 13, 7, 16, 4


def random_model(enc_layers=2, dec_layers=2, std=0.3, seed=0, **kwargs):
    """A small model with every parameter (positional encodings included) redrawn so that outputs vary."""
    torch.manual_seed(seed)
    model = TransformerModel(EN, DE, max_len=MAX_LEN, embed_dim=EMBED, enc_layers=enc_layers,
                             dec_layers=dec_layers, num_heads=HEADS, **kwargs)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, std)
    return model.eval()


def random_ids(batch, length, vocab, seed):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(seed))


def one_hot(ids, vocab):
    return F.one_hot(ids, vocab).float()


def close(actual, expected, atol=1e-5):
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=atol)


# ---- construction: the exercise's parameter order --------------------------------------------------------------


def expected_side(side, vocab, length, layers, embed_dim):
    """The parameters of one side (encoder or decoder), created by hand in the exercise's order."""
    state = {f"{side}_input_dense.{name}": value for name, value in nn.Linear(vocab, embed_dim).state_dict().items()}
    state[f"{side}_pos_enc"] = torch.zeros(1, length, embed_dim)
    state.update(expected_module_list(f"{side}_increase_hidden", layers, lambda: nn.Linear(embed_dim, 2 * embed_dim)))
    state.update(expected_module_list(f"{side}_decrease_hidden", layers, lambda: nn.Linear(2 * embed_dim, embed_dim)))
    state.update(expected_module_list(f"{side}_layer_norm", layers, lambda: nn.LayerNorm(embed_dim)))
    for i in range(layers):
        state.update(expected_attention_state(f"{side}_att.{i}", embed_dim))
    return state


@pytest.mark.parametrize("enc_layers, dec_layers", [(2, 3), (1, 6), (0, 2)])
def test_seeded_parameters_follow_the_interface_order(enc_layers, dec_layers):
    max_len, embed_dim, heads = 5, 8, 2
    torch.manual_seed(0)
    expected = expected_side("enc", DE, max_len, enc_layers, embed_dim)
    expected.update(expected_side("dec", EN, max_len + 1, dec_layers, embed_dim))
    for i in range(dec_layers):
        expected.update(expected_attention_state(f"enc_dec_att.{i}", embed_dim))
    expected.update({f"decoder_final_dense.{name}": value
                     for name, value in nn.Linear(embed_dim, EN).state_dict().items()})
    next_expected = torch.rand(3)  # no other random draws may happen during construction

    torch.manual_seed(0)
    model = TransformerModel(EN, DE, max_len, embed_dim, enc_layers, dec_layers, heads)
    assert torch.equal(torch.rand(3), next_expected)
    state = model.state_dict()
    assert set(state) == set(expected)
    for name, value in expected.items():
        assert torch.equal(state[name], value), name
    for name in ("en_vocab_size", "de_vocab_size", "max_len", "embed_dim", "enc_layers", "dec_layers", "num_heads"):
        assert hasattr(model, name)
    assert (model.en_vocab_size, model.de_vocab_size, model.max_len, model.embed_dim) == (EN, DE, max_len, embed_dim)
    assert (model.enc_layers, model.dec_layers, model.num_heads) == (enc_layers, dec_layers, heads)


def test_seeded_multi_head_attention_parameters():
    torch.manual_seed(0)
    expected = expected_attention_state("att", 12)
    torch.manual_seed(0)
    attention = MultiHeadAttention(3, 12)
    for name, value in attention.state_dict().items():
        assert torch.equal(value, expected[f"att.{name}"]), name
    assert [name for name, _ in attention.named_parameters()][:4] == ["W_query", "W_key", "W_value", "W_output"]


def test_default_constructor_sizes():
    model = TransformerModel(10, 12)
    assert (model.max_len, model.embed_dim, model.enc_layers, model.dec_layers, model.num_heads) == (20, 64, 6, 6, 4)
    assert model.enc_pos_enc.shape == (1, 20, 64) and model.dec_pos_enc.shape == (1, 21, 64)


# ---- MultiHeadAttention against torch's scaled_dot_product_attention --------------------------------------------


def random_attention(heads=HEADS, embed_dim=EMBED, std=0.3):
    torch.manual_seed(1)
    attention = MultiHeadAttention(heads, embed_dim)
    with torch.no_grad():
        for parameter in attention.parameters():
            parameter.normal_(0.0, std)
    return attention


def reference_attention(attention, query, key, value, causal):
    """Each head with F.scaled_dot_product_attention on the projected inputs; concatenate, W_output, residual, norm."""
    d_head = attention.embed_dim // attention.num_heads
    q, k, v = query @ attention.W_query, key @ attention.W_key, value @ attention.W_value
    heads, weights = [], []
    for h in range(attention.num_heads):
        columns = slice(h * d_head, (h + 1) * d_head)
        heads.append(F.scaled_dot_product_attention(q[..., columns], k[..., columns], v[..., columns],
                                                    is_causal=causal))
        scores = q[..., columns] @ k[..., columns].transpose(-2, -1) / math.sqrt(d_head)
        if causal:
            scores = scores.masked_fill(torch.ones_like(scores, dtype=torch.bool).triu(1), float("-inf"))
        weights.append(scores.softmax(dim=-1))
    output = attention.layer_norm(torch.cat(heads, dim=-1) @ attention.W_output + query)
    return output, torch.stack(weights)


@pytest.mark.parametrize("causal", [False, True])
def test_each_head_equals_scaled_dot_product_attention(causal):
    attention = random_attention()
    generator = torch.Generator().manual_seed(2)
    query = torch.randn(3, 5, EMBED, generator=generator)
    key_value = query if causal else torch.randn(3, 6, EMBED, generator=generator)
    output, weights = attention(query, key_value, key_value, mask=causal)
    expected_output, expected_weights = reference_attention(attention, query, key_value, key_value, causal)
    assert output.shape == query.shape and weights.shape == (HEADS, 3, 5, key_value.shape[1])
    close(output, expected_output)
    close(weights, expected_weights)
    fused, no_weights = attention(query, key_value, key_value, mask=causal, need_weights=False)
    assert no_weights is None
    close(fused, expected_output)


def test_different_key_and_value_inputs():
    attention = random_attention()
    generator = torch.Generator().manual_seed(3)
    query, key, value = (torch.randn(2, n, EMBED, generator=generator) for n in (4, 6, 6))
    output, _ = attention(query, key, value)
    close(output, reference_attention(attention, query, key, value, False)[0])


def test_causal_weights_are_renormalised_over_earlier_positions():
    attention = random_attention()
    x = torch.randn(2, 6, EMBED, generator=torch.Generator().manual_seed(4))
    _, full = attention(x, x, x)
    _, causal = attention(x, x, x, mask=True)
    assert torch.all(causal.triu(1) == 0)
    close(causal.sum(-1), torch.ones(HEADS, 2, 6))
    allowed = full.tril()
    close(causal, allowed / allowed.sum(-1, keepdim=True))
    assert causal[..., 0, 0].eq(1).all() and not torch.allclose(causal, full)


def test_attention_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(3, 16)


# ---- the full model -----------------------------------------------------------------------------------------------


def test_one_hot_and_ids_give_identical_outputs_and_gradients():
    model = random_model()
    x1, x2 = random_ids(3, MAX_LEN, DE, 5), random_ids(3, MAX_LEN + 1, EN, 6)
    from_ids, attention_ids = model(x1, x2)
    from_one_hot, attention_one_hot = model(one_hot(x1, DE), one_hot(x2, EN))
    mixed, _ = model(x1, one_hot(x2, EN))
    close(from_ids, from_one_hot, atol=1e-6)
    close(attention_ids, attention_one_hot, atol=1e-6)
    close(mixed, from_one_hot, atol=1e-6)
    gradients = []
    for inputs in ((x1, x2), (one_hot(x1, DE), one_hot(x2, EN))):
        model.zero_grad()
        model(*inputs)[0].square().mean().backward()
        gradients.append({name: p.grad.clone() for name, p in model.named_parameters()})
    for name, gradient in gradients[0].items():
        close(gradient, gradients[1][name], atol=1e-6)


def test_output_and_attention_shapes():
    model = random_model(enc_layers=1, dec_layers=2)
    logits, attention = model(one_hot(random_ids(2, MAX_LEN, DE, 7), DE), one_hot(random_ids(2, MAX_LEN + 1, EN, 8),
                                                                                  EN))
    assert logits.shape == (2, MAX_LEN + 1, EN)
    assert attention.shape == (HEADS, 2, MAX_LEN + 1, MAX_LEN)
    close(attention.sum(-1), torch.ones(HEADS, 2, MAX_LEN + 1))


def test_no_decoder_layers_gives_no_attention():
    model = random_model(enc_layers=1, dec_layers=0)
    x2 = random_ids(2, 4, EN, 9)
    logits, attention = model(random_ids(2, 5, DE, 10), x2)
    assert attention is None and logits.shape == (2, 4, EN)
    close(logits, model.decoder_final_dense(model.dec_input_dense(one_hot(x2, EN)) + model.dec_pos_enc[:, :4]))


def test_decoder_is_causal():
    model = random_model()
    x1, x2 = random_ids(2, 6, DE, 11), random_ids(2, MAX_LEN + 1, EN, 12)
    logits, attention = model(x1, x2)
    for k in range(1, MAX_LEN + 1):
        changed = x2.clone()
        changed[:, k:] = (changed[:, k:] + 1 + torch.arange(MAX_LEN + 1 - k)) % EN
        new_logits, new_attention = model(x1, changed)
        close(new_logits[:, :k], logits[:, :k], atol=1e-6)
        close(new_attention[:, :, :k], attention[:, :, :k], atol=1e-6)
        assert not torch.allclose(new_logits[:, k], logits[:, k], atol=1e-3)


def test_encoder_sees_the_whole_source():
    model = random_model()
    x1, x2 = random_ids(1, 6, DE, 13), random_ids(1, 3, EN, 14)
    changed = x1.clone()
    changed[0, -1] = (changed[0, -1] + 1) % DE
    assert not torch.allclose(model(x1, x2)[0][:, 0], model(changed, x2)[0][:, 0], atol=1e-4)


def test_shorter_sequences_use_the_first_positions():
    model = random_model()
    x1, x2 = random_ids(2, 4, DE, 15), random_ids(2, MAX_LEN + 1, EN, 16)
    full, _ = model(x1, x2)
    for length in (1, 3):
        short, attention = model(x1, x2[:, :length])
        assert short.shape == (2, length, EN) and attention.shape == (HEADS, 2, length, 4)
        close(short, full[:, :length], atol=1e-6)
    assert model.encode(x1).shape == (2, 4, EMBED)


def padded_batch():
    """Two source sentences of lengths 5 and 2, padded with token 0 to length 5, and their padding mask."""
    source = random_ids(2, 5, DE, 17).clamp(min=4)
    source[1, 2:] = 0
    return source, source == 0


def test_padding_gets_no_attention_and_does_not_change_outputs():
    model = random_model()
    source, padding = padded_batch()
    x2 = random_ids(2, 4, EN, 18)
    logits, attention = model(source, x2, src_padding_mask=padding)
    assert torch.all(attention[:, 1, :, 2:] == 0)
    close(attention.sum(-1), torch.ones(HEADS, 2, 4))
    other = source.clone()
    other[1, 2:] = torch.tensor([5, 6, 7])  # different tokens under the padding mask
    close(model(other, x2, src_padding_mask=padding)[0], logits, atol=1e-6)
    alone, alone_attention = model(source[1:, :2], x2[1:])
    close(logits[1:], alone, atol=1e-5)
    close(attention[:, 1:, :, :2], alone_attention, atol=1e-6)
    unmasked, _ = model(source, x2)
    assert not torch.allclose(unmasked[1], logits[1], atol=1e-4)


def test_need_weights_false_gives_the_same_outputs():
    model = random_model()
    source, padding = padded_batch()
    x2 = random_ids(2, 6, EN, 19)
    with_weights, attention = model(source, x2, src_padding_mask=padding)
    fused, no_attention = model(source, x2, src_padding_mask=padding, need_weights=False)
    assert attention is not None and no_attention is None
    close(fused, with_weights)


@pytest.mark.parametrize("need_weights", [False, True])
def test_cached_decoding_equals_the_full_forward(need_weights):
    model = random_model(enc_layers=2, dec_layers=3)
    source, padding = padded_batch()
    x2 = random_ids(2, MAX_LEN + 1, EN, 20)
    logits, _ = model(source, x2, src_padding_mask=padding)
    _, full_attentions = model.decode(x2, model.encode(source, padding), padding)
    memory = model.encode(source, padding)
    caches = model.new_caches()
    for position in range(MAX_LEN + 1):
        step_logits, attentions = model.decode_step(x2[:, position:position + 1], memory, caches, position, padding,
                                                    need_weights=need_weights)
        assert step_logits.shape == (2, EN)
        close(step_logits, logits[:, position])
        if need_weights:
            for step, full in zip(attentions, full_attentions):
                close(step[:, :, 0], full[:, :, position], atol=1e-6)
    self_cache, cross_cache = caches[0]
    assert self_cache["k"].shape == (2, HEADS, MAX_LEN + 1, EMBED // HEADS)
    assert cross_cache["k"].shape == (2, HEADS, 5, EMBED // HEADS)


def test_reorder_caches_selects_batch_entries():
    model = random_model()
    source, padding = padded_batch()
    x2 = random_ids(2, 3, EN, 21)
    memory = model.encode(source, padding)
    caches = model.new_caches()
    for position in range(2):
        model.decode_step(x2[:, position:position + 1], memory, caches, position, padding)
    index = torch.tensor([1, 1, 0])
    model.reorder_caches(caches, index)
    step, _ = model.decode_step(x2[index, 2:3], memory[index], caches, 2, padding[index])
    close(step, model(source[index], x2[index], src_padding_mask=padding[index])[0][:, 2])


def test_dropout_zero_is_deterministic_in_training_mode():
    model = random_model().train()
    x1, x2 = random_ids(2, 5, DE, 22), random_ids(2, 6, EN, 23)
    first, _ = model(x1, x2)
    second, _ = model(x1, x2)
    assert torch.equal(first, second)
    assert torch.equal(model(x1, x2, need_weights=False)[0], model(x1, x2, need_weights=False)[0])


def test_dropout_is_random_in_training_and_off_in_evaluation():
    model = random_model(dropout=0.3)
    reference = random_model()
    x1, x2 = random_ids(2, 5, DE, 24), random_ids(2, 6, EN, 25)
    close(model(x1, x2)[0], reference(x1, x2)[0], atol=1e-6)
    model.train()
    assert not torch.allclose(model(x1, x2)[0], model(x1, x2)[0])
    assert not torch.allclose(model(x1, x2, need_weights=False)[0], model(x1, x2, need_weights=False)[0])


def test_wrong_shapes_and_too_long_inputs_raise_clear_errors():
    model = random_model()
    ids1, ids2 = random_ids(2, 5, DE, 26), random_ids(2, 6, EN, 27)
    with pytest.raises(ValueError, match="x1"):
        model(one_hot(ids1, DE)[..., :-1], ids2)  # wrong vocabulary size
    with pytest.raises(ValueError, match="x2"):
        model(ids1, one_hot(ids2, EN + 1))
    with pytest.raises(ValueError, match="x1"):
        model(ids1.float(), ids2)  # 2-d floats are neither ids nor one-hot
    with pytest.raises(ValueError, match="max_len"):
        model(random_ids(2, MAX_LEN + 1, DE, 28), ids2)
    with pytest.raises(ValueError, match="max_len"):
        model(ids1, random_ids(2, MAX_LEN + 2, EN, 29))
    memory = model.encode(ids1)
    with pytest.raises(ValueError, match="max_len"):
        model.decode_step(ids2[:, :1], memory, model.new_caches(), MAX_LEN + 1)


def test_nothing_is_created_in_forward():
    model = random_model()
    names = [name for name, _ in model.named_parameters()]
    torch.manual_seed(3)
    model(random_ids(2, 5, DE, 30), random_ids(2, 6, EN, 31))
    after = torch.rand(2)
    torch.manual_seed(3)
    assert torch.equal(torch.rand(2), after)  # forward drew no random numbers (dropout 0)
    assert [name for name, _ in model.named_parameters()] == names


# ---- the exercise's seeded values, both attention paths ----------------------------------------------------------


def test_multi_head_attention_weights_and_fused_paths_give_the_seeded_values():
    """Seed 0, MultiHeadAttention(2, 4), inputs rand * 100: values of the exercise's implementation (per-head
    softmax(q k^T / sqrt(d_head)) v, W_output, residual, LayerNorm) before its weights path used attention_function."""
    torch.manual_seed(0)
    attention = MultiHeadAttention(2, 4)
    x, memory = torch.rand(1, 3, 4) * 100, torch.rand(1, 2, 4) * 100
    cross, cross_weights = attention(x, memory, memory)
    causal, causal_weights = attention(x, x, x, mask=True)
    close(cross[0, 0], torch.tensor([1.4962226, -1.1913753, -0.5367910, 0.2319433]))
    close(cross_weights[:, 0, 0], torch.tensor([[0.4821768, 0.5178232], [0.8267933, 0.1732067]]))
    close(causal[0, 2], torch.tensor([-1.7238474, 0.4193234, 0.6237806, 0.6807449]))
    close(causal_weights[1, 0, 2], torch.tensor([0.6624879, 0.0799126, 0.2575996]))
    close(attention(x, memory, memory, need_weights=False)[0], cross)
    close(attention(x, x, x, mask=True, need_weights=False)[0], causal)


def test_seeded_model_gives_the_exercises_values():
    """Seed 0, TransformerModel(5, 6, max_len=4, embed_dim=8, enc_layers=1, dec_layers=2, num_heads=2) on one-hot
    inputs: values of the exercise's layout, recorded before the recipe options existed; the same with an old
    config dict (without the options' keys) and with every option at its default."""
    x1 = one_hot(torch.tensor([[3, 4, 5, 0]]), 6)
    x2 = one_hot(torch.tensor([[1, 3, 4, 2, 0]]), 5)
    old_config = dict(en_vocab_size=5, de_vocab_size=6, max_len=4, embed_dim=8, enc_layers=1, dec_layers=2,
                      num_heads=2, dropout=0.0)
    defaults = dict(old_config, pre_norm=False, tie_embeddings=False, ffn_dim=None, attention_dropout=None,
                    activation_dropout=0.0, decoder_layerdrop=0.0, scale_embeddings=False, share_all_embeddings=False)
    for config in (old_config, defaults):
        torch.manual_seed(0)
        model = TransformerModel(**config)
        assert model.config() == defaults
        for need_weights in (True, False):
            logits, attention = model(x1, x2, need_weights=need_weights)
            close(logits[0, 1], torch.tensor([1.0686462, -0.7532291, -0.0076105, -0.0701106, 0.1169148]))
        close(model(x1, x2)[1][:, 0, 2], torch.tensor([[0.2500896, 0.2499606, 0.2498628, 0.2500870],
                                                      [0.2499596, 0.2498847, 0.2501436, 0.2500121]]))


def test_the_weights_path_uses_lib_attention(monkeypatch):
    import lib.transformer
    calls = []
    original = lib.transformer.attention_function

    def spy(*args, **kwargs):
        calls.append(kwargs.get("activation"))
        return original(*args, **kwargs)

    monkeypatch.setattr(lib.transformer, "attention_function", spy)
    attention = random_attention()
    x = torch.randn(2, 3, EMBED)
    attention(x, x, x, need_weights=False)
    assert calls == []
    attention(x, x, x)
    assert calls == ["softmax"]


# ---- the recipe options -----------------------------------------------------------------------------------------


def layer_norm_by_hand(x, norm):
    mean = x.mean(-1, keepdim=True)
    variance = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(variance + norm.eps) * norm.weight + norm.bias


def attention_by_hand(attention, query, key, value, causal=False):
    """Concatenated heads softmax(q_h k_h^T / sqrt(d_head)) v_h times W_output, written out with exp and sums."""
    d_head = attention.embed_dim // attention.num_heads
    q, k, v = query @ attention.W_query, key @ attention.W_key, value @ attention.W_value
    heads = []
    for h in range(attention.num_heads):
        columns = slice(h * d_head, (h + 1) * d_head)
        scores = q[..., columns] @ k[..., columns].transpose(-2, -1) / d_head ** 0.5
        if causal:
            scores = scores - torch.ones_like(scores).triu(1) * 1e9
        exp = torch.exp(scores - scores.max(-1, keepdim=True).values)
        heads.append(exp / exp.sum(-1, keepdim=True) @ v[..., columns])
    return torch.cat(heads, dim=-1) @ attention.W_output


def known_model(**options):
    """A model with one encoder and one decoder layer and every parameter set to a fixed pattern (no random draws
    in the values), LayerNorm gains and biases included, so that the normalisations matter."""
    model = TransformerModel(EN, DE, max_len=MAX_LEN, embed_dim=8, enc_layers=1, dec_layers=1, num_heads=2,
                             **options)
    with torch.no_grad():
        for number, parameter in enumerate(model.parameters()):
            count = parameter.numel()
            values = torch.sin(torch.arange(count, dtype=torch.float32) * (0.7 + 0.1 * number) + number)
            parameter.copy_(values.view(parameter.shape) * (0.5 if parameter.dim() > 1 else 0.3))
    return model.eval()


def test_pre_norm_attention_equals_the_textbook_formula():
    attention = random_attention()
    attention.pre_norm = True
    with torch.no_grad():
        attention.layer_norm.weight.normal_(1.0, 0.3)
        attention.layer_norm.bias.normal_(0.0, 0.3)
    generator = torch.Generator().manual_seed(40)
    x, memory = torch.randn(2, 5, EMBED, generator=generator), torch.randn(2, 3, EMBED, generator=generator)
    normed = layer_norm_by_hand(x, attention.layer_norm)
    for need_weights in (True, False):
        self_output, _ = attention(x, x, x, mask=True, need_weights=need_weights)
        close(self_output, x + attention_by_hand(attention, normed, normed, normed, causal=True))
        cross_output, _ = attention(x, memory, memory, need_weights=need_weights)  # the memory is not normalised
        close(cross_output, x + attention_by_hand(attention, normed, memory, memory))


def test_pre_norm_model_equals_the_textbook_formula():
    model = known_model(pre_norm=True)
    source, target = random_ids(2, 5, DE, 41), random_ids(2, 4, EN, 42)
    ln = layer_norm_by_hand

    def feed_forward(x, increase, decrease):
        return torch.relu(x @ increase.weight.T + increase.bias) @ decrease.weight.T + decrease.bias

    e = one_hot(source, DE) @ model.enc_input_dense.weight.T + model.enc_input_dense.bias + model.enc_pos_enc[:, :5]
    a = e + attention_by_hand(model.enc_att[0], ln(e, model.enc_att[0].layer_norm),
                              ln(e, model.enc_att[0].layer_norm), ln(e, model.enc_att[0].layer_norm))
    e = a + feed_forward(ln(a, model.enc_layer_norm[0]), model.enc_increase_hidden[0], model.enc_decrease_hidden[0])
    memory = ln(e, model.enc_final_norm)
    d = one_hot(target, EN) @ model.dec_input_dense.weight.T + model.dec_input_dense.bias + model.dec_pos_enc[:, :4]
    normed = ln(d, model.dec_att[0].layer_norm)
    s = d + attention_by_hand(model.dec_att[0], normed, normed, normed, causal=True)
    c = s + attention_by_hand(model.enc_dec_att[0], ln(s, model.enc_dec_att[0].layer_norm), memory, memory)
    d = c + feed_forward(ln(c, model.dec_layer_norm[0]), model.dec_increase_hidden[0], model.dec_decrease_hidden[0])
    expected = ln(d, model.dec_final_norm) @ model.decoder_final_dense.weight.T + model.decoder_final_dense.bias
    close(model(source, target)[0], expected, atol=1e-4)
    close(model(source, target, need_weights=False)[0], expected, atol=1e-4)
    post_norm = known_model()
    assert not torch.allclose(post_norm(source, target)[0], expected, atol=1e-2)  # pre-norm is another model


@pytest.mark.parametrize("options, extra", [
    (dict(pre_norm=True), ["enc_final_norm.weight", "enc_final_norm.bias", "dec_final_norm.weight",
                           "dec_final_norm.bias"]),
    (dict(tie_embeddings=True), ["decoder_output_bias"]),
    (dict(dropout=0.3, attention_dropout=0.1, activation_dropout=0.2, decoder_layerdrop=0.5, ffn_dim=2 * EMBED), []),
    (dict(scale_embeddings=True, pre_norm=True), ["enc_final_norm.weight", "enc_final_norm.bias",
                                                  "dec_final_norm.weight", "dec_final_norm.bias"])])
def test_options_keep_the_seeded_parameters_and_add_theirs_last(options, extra):
    torch.manual_seed(0)
    plain = TransformerModel(EN, DE, MAX_LEN, EMBED, 2, 2, HEADS)
    plain_next = torch.rand(3)
    torch.manual_seed(0)
    model = TransformerModel(EN, DE, MAX_LEN, EMBED, 2, 2, HEADS, **options)
    if "tie_embeddings" not in options:  # no other random draws (tied, decoder_final_dense's are left out)
        assert torch.equal(torch.rand(3), plain_next)
    plain_state, state = plain.state_dict(), model.state_dict()
    dropped = ["decoder_final_dense.weight", "decoder_final_dense.bias"] if "tie_embeddings" in options else []
    shared = [name for name in plain_state if name not in dropped]
    assert set(state) == set(shared + extra) and [name for name in state if name in shared] == shared
    for name in shared:
        assert torch.equal(state[name], plain_state[name]), name
    rebuilt = TransformerModel(**model.config())
    rebuilt.load_state_dict(state)
    assert rebuilt.config() == model.config()


def test_tied_embeddings_are_one_tensor_with_gradients_from_both_uses():
    model = random_model(tie_embeddings=True)
    weight = model.dec_input_dense.weight
    assert not hasattr(model, "decoder_final_dense")
    assert sum(parameter is weight for parameter in model.parameters()) == 1
    assert sum(value.data_ptr() == weight.data_ptr() for value in model.state_dict().values()) == 1
    x1, x2 = random_ids(2, 5, DE, 43), random_ids(2, 6, EN, 44)
    logits, _ = model(x1, x2)
    memory = model.encode(x1)
    states = []
    model.output_projection = lambda h: states.append(h) or h
    model.decode(x2, memory)
    del model.output_projection
    close(logits, states[0] @ weight + model.decoder_output_bias)  # logits = h @ dec_input_dense.weight + bias
    # the tied gradient is the sum of the gradients through the embedding and through the output projection
    model.zero_grad()
    model(x1, x2)[0].square().mean().backward()
    tied_gradient = weight.grad.clone()
    output_copy = nn.Parameter(weight.detach().clone())
    model.output_projection = lambda h: h @ output_copy + model.decoder_output_bias
    model.zero_grad()
    model(x1, x2)[0].square().mean().backward()
    del model.output_projection
    embedding_gradient = weight.grad.clone()
    assert embedding_gradient.abs().sum() > 0 and output_copy.grad.abs().sum() > 0
    close(tied_gradient, embedding_gradient + output_copy.grad)


def test_ffn_dim_sets_the_feed_forward_width():
    model = random_model(ffn_dim=24)
    assert model.enc_increase_hidden[0].weight.shape == (24, EMBED)
    assert model.dec_decrease_hidden[1].weight.shape == (EMBED, 24)
    x1, x2 = random_ids(2, 5, DE, 45), random_ids(2, 6, EN, 46)
    assert model(x1, x2)[0].shape == (2, 6, EN)
    assert random_model(ffn_dim=2 * EMBED).state_dict().keys() == random_model().state_dict().keys()
    close(random_model(ffn_dim=2 * EMBED)(x1, x2)[0], random_model()(x1, x2)[0], atol=0)


def test_dropout_options_do_not_change_evaluation():
    options = dict(dropout=0.3, attention_dropout=0.2, activation_dropout=0.4, decoder_layerdrop=0.5)
    model, plain = random_model(**options), random_model()
    x1, x2 = random_ids(2, 5, DE, 47), random_ids(2, 6, EN, 48)
    close(model(x1, x2)[0], plain(x1, x2)[0], atol=0)
    close(model(x1, x2, need_weights=False)[0], plain(x1, x2)[0])
    model.train()
    for single in ({"attention_dropout": 0.3}, {"activation_dropout": 0.3}, {"decoder_layerdrop": 0.5}):
        one = random_model(**single).train()
        outputs = [one(x1, x2)[0] for _ in range(4)]
        assert any(not torch.equal(outputs[0], other) for other in outputs[1:]), single


def test_attention_dropout_is_dropout_on_the_weights():
    attention = MultiHeadAttention(HEADS, EMBED, dropout=0.0, attention_dropout=0.5)
    assert MultiHeadAttention(HEADS, EMBED, dropout=0.3).attention_dropout == 0.3  # None: same as dropout
    with torch.no_grad():
        for parameter in attention.parameters():
            parameter.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(49))
    attention.train()
    x = torch.randn(2, 4, EMBED, generator=torch.Generator().manual_seed(50))
    torch.manual_seed(51)
    output, weights = attention(x, x, x)
    d_head = EMBED // HEADS
    q, k, v = (attention.split_heads(x @ w) for w in (attention.W_query, attention.W_key, attention.W_value))
    expected_weights = torch.softmax(q @ k.transpose(-2, -1) / d_head ** 0.5, dim=-1)
    torch.manual_seed(51)
    dropped = F.dropout(expected_weights, 0.5, training=True)
    heads = (dropped @ v).transpose(1, 2).reshape(2, 4, EMBED)
    close(weights, expected_weights.transpose(0, 1))  # the returned weights are before dropout
    close(output, attention.layer_norm(heads @ attention.W_output + x))


def test_activation_dropout_is_dropout_after_the_relu():
    model = random_model(activation_dropout=0.5).train()
    x = torch.randn(2, 3, EMBED, generator=torch.Generator().manual_seed(52))
    increase, decrease, norm = model.enc_increase_hidden[0], model.enc_decrease_hidden[0], model.enc_layer_norm[0]
    torch.manual_seed(53)
    output = model._feed_forward(x, increase, decrease, norm)
    torch.manual_seed(53)
    close(output, norm(x + decrease(F.dropout(torch.relu(increase(x)), 0.5, training=True))))


def test_decoder_layerdrop_skips_the_drawn_layers_in_training_only():
    x1, x2 = random_ids(2, 5, DE, 54), random_ids(2, 6, EN, 55)
    everything = random_model(dec_layers=3, decoder_layerdrop=1.0).train()
    logits, attention = everything(x1, x2)
    embedded = everything.dec_input_dense(one_hot(x2, EN)) + everything.dec_pos_enc[:, :6]
    close(logits, everything.decoder_final_dense(embedded))  # every layer dropped: the embedding path only
    assert attention is None
    close(random_model(dec_layers=3, decoder_layerdrop=0.0).train()(x1, x2)[0],
          random_model(dec_layers=3).train()(x1, x2)[0], atol=0)
    half = random_model(dec_layers=4, decoder_layerdrop=0.5).train()
    skipped_sets = set()
    for seed in range(6):
        torch.manual_seed(seed)
        skip = (torch.rand(4) < 0.5).tolist()
        skipped_sets.add(tuple(skip))
        kept = [i for i in range(4) if not skip[i]]
        reference = random_model(dec_layers=4)
        for name in ("dec_increase_hidden", "dec_decrease_hidden", "dec_layer_norm", "dec_att", "enc_dec_att"):
            setattr(reference, name, nn.ModuleList([getattr(reference, name)[i] for i in kept]))
        reference.dec_layers = len(kept)
        torch.manual_seed(seed)
        close(half(x1, x2)[0], reference(x1, x2)[0])
    assert len(skipped_sets) > 2  # the draws vary, so the comparison covers several layer subsets
    half.eval()
    close(half(x1, x2)[0], random_model(dec_layers=4)(x1, x2)[0], atol=0)


@pytest.mark.parametrize("options", [dict(pre_norm=True), dict(tie_embeddings=True),
                                     dict(pre_norm=True, tie_embeddings=True, ffn_dim=40)])
def test_cached_decoding_equals_the_full_forward_with_options(options):
    model = random_model(enc_layers=2, dec_layers=3, **options)
    source, padding = padded_batch()
    x2 = random_ids(2, MAX_LEN + 1, EN, 56)
    logits, _ = model(source, x2, src_padding_mask=padding)
    memory = model.encode(source, padding)
    caches = model.new_caches()
    for position in range(MAX_LEN + 1):
        step_logits, _ = model.decode_step(x2[:, position:position + 1], memory, caches, position, padding)
        close(step_logits, logits[:, position])


def test_old_checkpoints_load_into_a_model_built_from_their_config():
    old_config = dict(en_vocab_size=EN, de_vocab_size=DE, max_len=MAX_LEN, embed_dim=EMBED, enc_layers=1,
                      dec_layers=2, num_heads=HEADS, dropout=0.1)
    old = random_model(enc_layers=1, dec_layers=2, dropout=0.1)
    state = old.state_dict()
    model = TransformerModel(**old_config)
    model.load_state_dict(state)  # strict: the same names and shapes
    x1, x2 = random_ids(2, 5, DE, 57), random_ids(2, 6, EN, 58)
    close(model.eval()(x1, x2)[0], old(x1, x2)[0], atol=0)
    with pytest.raises(RuntimeError, match="decoder_final_dense"):
        TransformerModel(**old_config, tie_embeddings=True).load_state_dict(state)


@pytest.mark.parametrize("options, message", [(dict(dropout=1.0), "dropout"), (dict(dropout=-0.1), "dropout"),
                                              (dict(attention_dropout=2.0), "attention_dropout"),
                                              (dict(activation_dropout=float("nan")), "activation_dropout"),
                                              (dict(decoder_layerdrop=1.5), "decoder_layerdrop"),
                                              (dict(ffn_dim=0), "ffn_dim"), (dict(embed_dim=0), "embed_dim"),
                                              (dict(dec_layers=-1), "dec_layers")])
def test_bad_options_raise_clear_errors(options, message):
    arguments = dict(en_vocab_size=EN, de_vocab_size=DE, max_len=MAX_LEN, embed_dim=EMBED, num_heads=HEADS)
    with pytest.raises(ValueError, match=message):
        TransformerModel(**{**arguments, **options})


# ---- bad input ----------------------------------------------------------------------------------------------------


def test_out_of_range_ids_raise_a_clear_error():
    model = random_model()
    x1, x2 = random_ids(2, 5, DE, 59), random_ids(2, 6, EN, 60)
    for bad_x1, bad_x2, name, bad in ((x1.clone().fill_(DE), x2, "x1", DE), (x1, x2.clone().fill_(EN), "x2", EN),
                                      (x1.clone().fill_(-1), x2, "x1", -1), (x1, x2.clone().fill_(-3), "x2", -3)):
        with pytest.raises(ValueError, match=rf"{name} has token id {bad}; ids must be in \[0, "):
            model(bad_x1, bad_x2)
    model(x1.clone().fill_(DE - 1), x2.clone().fill_(EN - 1))  # the largest valid ids are fine


def test_empty_source_raises_a_clear_error_and_empty_batches_work():
    model = random_model()
    with pytest.raises(ValueError, match="empty"):
        model(torch.zeros(2, 0, dtype=torch.long), random_ids(2, 3, EN, 61))
    with pytest.raises(ValueError, match="empty"):
        model.encode(torch.zeros(1, 0, DE))
    logits, attention = model(random_ids(2, 3, DE, 62), torch.zeros(2, 0, dtype=torch.long))
    assert logits.shape == (2, 0, EN) and attention.shape == (HEADS, 2, 0, 3)
    logits, _ = model(torch.zeros(0, 3, dtype=torch.long), torch.zeros(0, 2, dtype=torch.long))
    assert logits.shape == (0, 2, EN)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))


def test_scaled_embeddings_are_sqrt_embed_dim_times_the_plain_ones():
    """With scale_embeddings the encoder and decoder see sqrt(embed_dim) * (W x + b) plus the positions: the same
    model with its input layers' weights and biases multiplied by sqrt(embed_dim) by hand gives the same logits."""
    torch.manual_seed(0)
    scaled = TransformerModel(EN, DE, MAX_LEN, EMBED, 2, 2, HEADS, pre_norm=True, scale_embeddings=True).eval()
    with torch.no_grad():
        scaled.enc_pos_enc.normal_()
        scaled.dec_pos_enc.normal_()
    by_hand = TransformerModel(**dict(scaled.config(), scale_embeddings=False)).eval()
    by_hand.load_state_dict(scaled.state_dict())
    with torch.no_grad():
        for dense in (by_hand.enc_input_dense, by_hand.dec_input_dense):
            dense.weight.mul_(EMBED ** 0.5)
            dense.bias.mul_(EMBED ** 0.5)
    source = torch.tensor([[4, 5, 6, 7], [5, 4, 3, 0]])
    target = torch.tensor([[1, 4, 5], [1, 6, 4]])
    expected = by_hand(source, target)[0]
    close(scaled(source, target)[0], expected, atol=1e-5)
    unscaled = TransformerModel(**by_hand.config()).eval()
    unscaled.load_state_dict(scaled.state_dict())
    assert not torch.allclose(unscaled(source, target)[0], expected, atol=1e-2)  # the scale matters
