"""Tests of lib/transformer.py against independent references: the seeded parameter order of INTERFACE.md,
torch's scaled_dot_product_attention per head, causality, cached decoding, key padding, ids versus one-hot."""
import math
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.transformer import MultiHeadAttention, TransformerModel

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


def expected_attention_state(prefix, embed_dim):
    state = {f"{prefix}.{name}": torch.randn(embed_dim, embed_dim) * 1e-2
             for name in ("W_query", "W_key", "W_value", "W_output")}
    norm = nn.LayerNorm(embed_dim)
    state.update({f"{prefix}.layer_norm.{name}": value for name, value in norm.state_dict().items()})
    return state


def expected_module_list(prefix, count, make):
    state = {}
    for i in range(count):
        state.update({f"{prefix}.{i}.{name}": value for name, value in make().state_dict().items()})
    return state


def expected_side(side, vocab, length, layers, embed_dim):
    """The parameters of one side, created by hand in the order of INTERFACE.md (items 1-6 or 7-12)."""
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


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
