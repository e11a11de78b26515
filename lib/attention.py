"""Scaled dot-product attention with a sigmoid (the exercise's choice) or a softmax over the keys."""
import math
import numbers

import torch

ACTIVATIONS = ("sigmoid", "softmax")


def attention_function(q, k, v, dk, activation="sigmoid", mask=None):
    """Attend from queries to keys and mix the values.

    q: (batch, n_queries, d), k: (batch, n_keys, d), v: (batch, n_keys, d_v); dk: a positive number, the scale is
    1 / sqrt(dk) (usually d).
    activation: "sigmoid" (each weight in (0, 1) on its own) or "softmax" (weights sum to 1 over the keys).
    mask: optional bool tensor broadcastable to (batch, n_queries, n_keys); False marks keys that may not be
    attended, which get weight 0 (with softmax, the rest are renormalised; a row with no allowed key gives zeros).
    Returns (attention (batch, n_queries, d_v), weights (batch, n_queries, n_keys)).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if q.dim() != 3 or k.dim() != 3 or v.dim() != 3:
        raise ValueError("q, k, v must be 3-d (batch, length, features); got shapes "
                         f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1] or k.shape[1] != v.shape[1] or not (q.shape[0] == k.shape[0] == v.shape[0]):
        raise ValueError("q (batch, n_queries, d), k (batch, n_keys, d) and v (batch, n_keys, d_v) do not fit: got "
                         f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}")
    if isinstance(dk, bool) or not isinstance(dk, numbers.Real) or not math.isfinite(dk) or dk <= 0:
        raise ValueError(f"dk must be a positive number (the scale is 1 / sqrt(dk), usually the feature size "
                         f"{q.shape[-1]}), got {dk!r}")
    if q.shape[0] > 1 and q.stride(0) == 0:  # one set of queries shared by the batch (expanded): one matrix product
        batch, n_keys, features = k.shape
        scores = (q[0] @ k.reshape(-1, features).T).view(-1, batch, n_keys).transpose(0, 1) / math.sqrt(dk)
    else:
        scores = q @ k.transpose(-2, -1) / math.sqrt(dk)
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
