"""Tests of lib/translation/noising.py: word dropout replaces a binomially bounded fraction of the unprotected tokens,
never a protected one, and is reproducible with a seeded generator."""
import math
import sys

import pytest
import torch

from lib.translation.noising import word_dropout
from lib.translation.tokenizer import END, PAD, START, UNK

PROTECTED = (PAD, START, END)


def token_batch(rows=200, length=50, vocab=40, seed=0):
    """Ids with START first, END somewhere, PAD after it, ordinary tokens (4..vocab-1) in between."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (rows, length), generator=generator)
    ends = torch.randint(2, length, (rows,), generator=generator)
    positions = torch.arange(length)[None, :]
    ids[positions > ends[:, None]] = PAD
    ids[positions == ends[:, None]] = END
    ids[:, 0] = START
    return ids


@pytest.mark.parametrize("p", [0.1, 0.3, 0.9])
def test_replaced_fraction_is_within_a_binomial_bound(p):
    ids = token_batch()
    noised = word_dropout(ids, p, UNK, PROTECTED, generator=torch.Generator().manual_seed(1))
    eligible = ~torch.isin(ids, torch.tensor(PROTECTED))
    n = int(eligible.sum())
    replaced = int((noised != ids).sum())
    # the count is Binomial(n, p): within 5 standard deviations except with probability below 1e-6
    assert abs(replaced - n * p) <= 5 * math.sqrt(n * p * (1 - p))
    assert torch.all(noised[noised != ids] == UNK)


def test_protected_ids_never_change():
    ids = token_batch()
    noised = word_dropout(ids, 1.0, UNK, PROTECTED)
    protected = torch.isin(ids, torch.tensor(PROTECTED))
    assert torch.equal(noised[protected], ids[protected])
    assert torch.all(noised[~protected] == UNK)  # p = 1: every other token is replaced
    unprotected = word_dropout(ids, 1.0, UNK)
    assert torch.all(unprotected == UNK)


def test_p_zero_returns_an_equal_copy_and_draws_nothing():
    ids = token_batch(rows=3, length=7)
    torch.manual_seed(5)
    noised = word_dropout(ids, 0.0, UNK, PROTECTED)
    after = torch.rand(2)
    torch.manual_seed(5)
    assert torch.equal(torch.rand(2), after)
    assert torch.equal(noised, ids) and noised is not ids
    noised[0, 0] = 99
    assert ids[0, 0] == START  # a copy, not a view


def test_same_generator_seed_gives_the_same_result_and_any_shape_works():
    ids = token_batch(rows=4, length=30).view(2, 2, 30)
    first = word_dropout(ids, 0.5, UNK, PROTECTED, generator=torch.Generator().manual_seed(7))
    second = word_dropout(ids, 0.5, UNK, PROTECTED, generator=torch.Generator().manual_seed(7))
    other = word_dropout(ids, 0.5, UNK, PROTECTED, generator=torch.Generator().manual_seed(8))
    assert first.shape == ids.shape and first.dtype == ids.dtype
    assert torch.equal(first, second) and not torch.equal(first, other)
    torch.manual_seed(3)
    global_first = word_dropout(ids, 0.5, UNK, PROTECTED)
    torch.manual_seed(3)
    assert torch.equal(word_dropout(ids, 0.5, UNK, PROTECTED), global_first)


@pytest.mark.parametrize("ids, p", [(torch.zeros(3), 0.1), (torch.zeros(3, dtype=torch.long), -0.1),
                                    (torch.zeros(3, dtype=torch.long), 1.5),
                                    (torch.zeros(3, dtype=torch.long), float("nan"))])
def test_bad_arguments_raise_clear_errors(ids, p):
    with pytest.raises(ValueError, match="ids must be|probability"):
        word_dropout(ids, p, UNK, PROTECTED)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
