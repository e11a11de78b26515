"""Tests of attention_function: the formula, softmax, masks, batches, gradients, a query shared by the batch, errors.

The exercise's seeded values through CountingModel are checked in test_counting.py."""
import math
import re

import pytest
import torch
import torch.nn.functional as F

from lib.attention import attention_function


def _random_qkv(batch=3, n_queries=4, n_keys=6, d=5, d_v=7, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, n_queries, d, generator=generator, dtype=dtype),
            torch.randn(batch, n_keys, d, generator=generator, dtype=dtype),
            torch.randn(batch, n_keys, d_v, generator=generator, dtype=dtype))


def test_formula_on_a_hand_computed_case():
    q = torch.tensor([[[1.0, 0.0]]])
    k = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])
    v = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    # scores q.k / sqrt(4) = [1, 0]
    sigmoid_1 = 1 / (1 + math.exp(-1))
    attention, weights = attention_function(q, k, v, 4)
    torch.testing.assert_close(weights, torch.tensor([[[sigmoid_1, 0.5]]]))
    torch.testing.assert_close(attention, torch.tensor([[[sigmoid_1 + 1.5, 2 * sigmoid_1 + 2.0]]]))
    softmax_1 = math.e / (math.e + 1)
    attention, weights = attention_function(q, k, v, 4, activation="softmax")
    torch.testing.assert_close(weights, torch.tensor([[[softmax_1, 1 - softmax_1]]]))
    torch.testing.assert_close(attention, torch.tensor([[[3 - 2 * softmax_1, 4 - 2 * softmax_1]]]))


def test_default_is_sigmoid_and_shapes():
    q, k, v = _random_qkv()
    attention, weights = attention_function(q, k, v, 5)
    assert attention.shape == (3, 4, 7) and weights.shape == (3, 4, 6)
    torch.testing.assert_close(weights, torch.sigmoid(q @ k.transpose(1, 2) / math.sqrt(5)))
    torch.testing.assert_close(attention, weights @ v)


def test_softmax_matches_scaled_dot_product_attention():
    q, k, v = _random_qkv(d=5, d_v=5)
    attention, weights = attention_function(q, k, v, 5, activation="softmax")
    torch.testing.assert_close(attention, F.scaled_dot_product_attention(q, k, v), rtol=0, atol=1e-6)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, 4))


def test_softmax_with_mask_matches_scaled_dot_product_attention():
    q, k, v = _random_qkv(d=5, d_v=5)
    mask = torch.rand(3, 4, 6, generator=torch.Generator().manual_seed(1)) > 0.4
    mask[..., 0] = True  # no row fully masked here
    attention, weights = attention_function(q, k, v, 5, activation="softmax", mask=mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(attention, expected, rtol=0, atol=1e-6)
    assert torch.all(weights[~mask] == 0)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_masked_keys_get_zero_weight_and_the_rest_behaves_as_without_them(activation):
    q, k, v = _random_qkv()
    mask = torch.ones(3, 4, 6, dtype=torch.bool)
    mask[..., 4:] = False  # the last two keys may not be attended
    attention, weights = attention_function(q, k, v, 5, activation=activation, mask=mask)
    assert torch.all(weights[..., 4:] == 0)
    kept_attention, kept_weights = attention_function(q, k[:, :4], v[:, :4], 5, activation=activation)
    torch.testing.assert_close(weights[..., :4], kept_weights)
    torch.testing.assert_close(attention, kept_attention)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_fully_masked_rows_give_zeros_and_finite_gradients(activation):
    q, k, v = (t.requires_grad_() for t in _random_qkv())
    mask = torch.ones(4, 6, dtype=torch.bool)  # broadcast over the batch
    mask[2] = False  # query 2 may attend nothing
    attention, weights = attention_function(q, k, v, 5, activation=activation, mask=mask)
    assert torch.all(weights[:, 2] == 0) and torch.all(attention[:, 2] == 0)
    assert torch.all(weights[:, [0, 1, 3]] > 0)
    attention.sum().backward()
    for tensor in (q, k, v):
        assert torch.isfinite(tensor.grad).all()
    assert torch.all(q.grad[:, 2] == 0)


def test_sigmoid_weights_do_not_depend_on_other_keys_softmax_weights_do():
    """The property counting relies on: a sigmoid weight sees only its own key."""
    q, k, v = _random_qkv()
    _, sigmoid_weights = attention_function(q, k, v, 5)
    _, sigmoid_fewer = attention_function(q, k[:, :3], v[:, :3], 5)
    torch.testing.assert_close(sigmoid_weights[..., :3], sigmoid_fewer)
    _, softmax_weights = attention_function(q, k, v, 5, activation="softmax")
    _, softmax_fewer = attention_function(q, k[:, :3], v[:, :3], 5, activation="softmax")
    assert not torch.allclose(softmax_weights[..., :3], softmax_fewer)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_batch_items_are_independent(activation):
    q, k, v = _random_qkv()
    attention, weights = attention_function(q, k, v, 5, activation=activation)
    for item in range(3):
        one_attention, one_weights = attention_function(q[item:item + 1], k[item:item + 1], v[item:item + 1], 5,
                                                        activation=activation)
        torch.testing.assert_close(attention[item:item + 1], one_attention)
        torch.testing.assert_close(weights[item:item + 1], one_weights)
    changed_k = k.clone()
    changed_k[1] *= 2.0  # (adding a constant to every key would leave the softmax unchanged)
    changed_attention, _ = attention_function(q, changed_k, v, 5, activation=activation)
    torch.testing.assert_close(changed_attention[[0, 2]], attention[[0, 2]])
    assert not torch.allclose(changed_attention[1], attention[1])


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_gradcheck_in_double(activation):
    inputs = _random_qkv(batch=2, n_queries=3, n_keys=4, d=3, d_v=2, dtype=torch.float64)
    q, k, v = (t.requires_grad_() for t in inputs)
    mask = torch.tensor([[True, True, False, True], [True, False, True, True], [True, True, True, True]])
    assert torch.autograd.gradcheck(lambda a, b, c: attention_function(a, b, c, 3, activation=activation),
                                    (q, k, v))
    assert torch.autograd.gradcheck(lambda a, b, c: attention_function(a, b, c, 3, activation=activation,
                                                                       mask=mask), (q, k, v))


@pytest.mark.parametrize("shapes", [((2, 3, 4), (2, 5, 3), (2, 5, 4)),   # q and k features differ
                                    ((2, 3, 4), (2, 5, 4), (2, 6, 4)),   # k and v lengths differ
                                    ((2, 3, 4), (1, 5, 4), (1, 5, 4)),   # batch sizes differ
                                    ((3, 4), (5, 4), (5, 4))])           # not 3-d
def test_shape_mismatch_raises_value_error_naming_the_shapes(shapes):
    q, k, v = (torch.zeros(shape) for shape in shapes)
    with pytest.raises(ValueError) as error:
        attention_function(q, k, v, 4)
    for shape in shapes:
        assert str(shape) in str(error.value)


@pytest.mark.parametrize("dk", [0, -1, -0.5, float("nan"), float("inf"), "8", None, True])
def test_dk_that_is_not_a_positive_number_raises_value_error(dk):
    q, k, v = _random_qkv()
    with pytest.raises(ValueError, match=r"dk must be a positive number .*got " + re.escape(repr(dk))):
        attention_function(q, k, v, dk)


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_a_query_shared_by_the_batch_gives_what_a_copied_query_gives(activation):
    """An expanded query (stride 0 over the batch, as CountingModel's) takes a one-matrix-product path."""
    q, k, v = _random_qkv(batch=5, dtype=torch.float64)
    shared = q[:1].clone().requires_grad_()
    mask = torch.rand(5, 4, 6, generator=torch.Generator().manual_seed(2)) > 0.3
    for tensor in (k, v):
        tensor.requires_grad_()
    results = []
    for query in (shared.expand(5, -1, -1), shared.expand(5, -1, -1).contiguous()):
        assert (query.stride(0) == 0) == (len(results) == 0)
        attention, weights = attention_function(query, k, v, 5, activation=activation, mask=mask)
        gradients = torch.autograd.grad((attention * torch.arange(7.0, dtype=torch.float64)).sum(), (shared, k, v))
        results.append((attention, weights) + gradients)
    for got, expected in zip(*results):
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_unknown_activation_raises():
    q, k, v = _random_qkv()
    with pytest.raises(ValueError, match="^activation must be one of sigmoid, softmax, got 'relu'$"):
        attention_function(q, k, v, 5, activation="relu")


if __name__ == "__main__":
    pytest.main([__file__])
