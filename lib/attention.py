"""Scaled dot-product attention with a sigmoid (the exercise's choice) or a softmax over the keys."""
import math

import torch

from lib.checks import range_problem

ACTIVATIONS = ("sigmoid", "softmax")


def attention_function(q, k, v, dk, activation="sigmoid", mask=None):
    """Attend from queries to keys and mix the values: weights = activation(q k^T / sqrt(dk)), attention = weights v.

    q: (batch, n_queries, d); k: (batch, n_keys, d); v: (batch, n_keys, d_v).
    dk: positive number, the scale is 1 / sqrt(dk) (usually d).
    activation: "sigmoid" (each weight in (0, 1) on its own, the exercise's) or "softmax" (sums to 1 over the keys).
    mask: optional bool, broadcastable to (batch, n_queries, n_keys); False keys get weight 0 (softmax renormalises
    over the rest; a row with no allowed key gives zeros).
    Returns (attention (batch, n_queries, d_v), weights (batch, n_queries, n_keys)).
    """
    _check_inputs(q, k, v, dk, activation)
    scores = _scores(q, k) / math.sqrt(dk)
    if activation == "sigmoid":
        weights = torch.sigmoid(scores)
        if mask is not None:
            weights = weights.masked_fill(~mask, 0.0)
    else:
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        if mask is not None:
            weights = weights.nan_to_num(0.0)  # rows where every key is masked
    return weights @ v, weights


def _check_inputs(q, k, v, dk, activation):
    """Raise a ValueError naming what is wrong with the arguments of ``attention_function``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
        raise ValueError("q, k, v must be 3-d (batch, length, features); got shapes "
                         f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1] or k.shape[1] != v.shape[1] or not (q.shape[0] == k.shape[0] == v.shape[0]):
        raise ValueError("q (batch, n_queries, d), k (batch, n_keys, d) and v (batch, n_keys, d_v) do not fit: got "
                         f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if range_problem(dk, 0, low_open=True):
        raise ValueError(f"dk must be a positive number (the scale is 1 / sqrt(dk), usually the feature size "
                         f"{q.shape[-1]}), got {dk!r}")


def _scores(q, k):
    """q k^T: (batch, n_queries, n_keys); a query shared by the batch takes one matrix product."""
    if q.shape[0] > 1 and q.stride(0) == 0:
        return _shared_query_scores(q[0], k)
    return q @ k.transpose(-2, -1)


def _shared_query_scores(query, k):
    """Scores of one query set (n_queries, d) against every batch item's keys (batch, n_keys, d), in one matrix
    product over all keys at once instead of a batched product: (batch, n_queries, n_keys)."""
    batch, n_keys, features = k.shape
    return (query @ k.reshape(-1, features).T).view(-1, batch, n_keys).transpose(0, 1)
