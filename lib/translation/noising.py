"""Noising of token ids for training: word dropout (Sennrich & Zhang 2019, "Revisiting Low-Resource Neural Machine
Translation"), which replaces random tokens of the source or target by the unknown token."""
import torch


def word_dropout(ids, p, unk_id, protected_ids=(), generator=None):
    """A copy of ``ids`` (integer tensor of any shape) in which each token not in ``protected_ids`` (e.g. padding,
    start and end) is replaced by ``unk_id`` with probability ``p``, independently.

    p: in [0, 1]; 0 returns an equal copy and draws no random numbers. generator: an optional torch.Generator on
    ids' device, for reproducible draws (default: torch's global one). Returns a new tensor like ``ids``.
    """
    if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ValueError(f"ids must be an integer tensor of token ids, got {getattr(ids, 'dtype', type(ids))}")
    if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"word dropout probability p must be in [0, 1], got {p!r}")
    if p == 0 or ids.numel() == 0:
        return ids.clone()
    dropped = torch.rand(ids.shape, generator=generator, device=ids.device) < p
    protected = list(protected_ids)
    if protected:
        dropped &= ~torch.isin(ids, torch.tensor(protected, dtype=ids.dtype, device=ids.device))
    return ids.masked_fill(dropped, unk_id)
