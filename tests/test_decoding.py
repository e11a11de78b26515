"""Tests of lib/decoding.py on small random models: cached greedy decoding against the exercise's full recomputation,
beam search against greedy and an exhaustive search, the returned attention against a full forward pass."""
import itertools
import sys

import pytest
import torch

from lib.decoding import (beam_search, block_repeated_ngrams_, exercise_greedy_decode, greedy_decode,
                          naive_greedy_decode)
from lib.tokenizer import END, PAD, START
from lib.transformer import TransformerModel


def random_model(en_vocab=12, de_vocab=10, max_len=6, std=0.3, seed=1, suppress_pad=True):
    """A small model whose weight matrices are drawn with a large standard deviation, so that outputs vary.

    A trained model never predicts PAD (it is never a target); ``suppress_pad`` gives its logit a large negative bias.
    """
    torch.manual_seed(seed)
    model = TransformerModel(en_vocab, de_vocab, max_len=max_len, embed_dim=16, enc_layers=2, dec_layers=2,
                             num_heads=2)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() >= 2:
                parameter.normal_(0.0, std)
        if suppress_pad:
            model.decoder_final_dense.bias[PAD] = -50.0
    return model.eval()


def padded_source(batch=8, de_vocab=10, max_len=6, seed=1):
    """Sentences of lengths 1..max_len (tokens >= 4), padded with PAD."""
    generator = torch.Generator().manual_seed(seed)
    source = torch.randint(4, de_vocab, (batch, max_len), generator=generator)
    lengths = torch.randint(1, max_len + 1, (batch,), generator=generator)
    lengths[0] = max_len
    source[torch.arange(max_len)[None, :] >= lengths[:, None]] = PAD
    return source


@torch.no_grad()
def log_probabilities(model, source, hypotheses, max_steps):
    """For each hypothesis, the sum of log-softmax of its tokens and END (unless it used all ``max_steps``), by one
    full forward pass of the unpadded source sentence (the decoder is causal, so padding at the end is harmless)."""
    sentence = source[source != PAD][None]
    targets = [hypothesis + ([END] if len(hypothesis) < max_steps else []) for hypothesis in hypotheses]
    length = max(map(len, targets))
    decoder_input = torch.full((len(targets), length), PAD)
    target = torch.full((len(targets), length), PAD)
    for row, ids in enumerate(targets):
        decoder_input[row, :len(ids)] = torch.tensor([START] + ids[:-1])
        target[row, :len(ids)] = torch.tensor(ids)
    logits, _ = model(sentence.expand(len(targets), -1), decoder_input)
    log_probs = torch.log_softmax(logits, dim=-1).gather(-1, target[..., None])[..., 0]
    lengths = torch.tensor(list(map(len, targets)))
    return log_probs.masked_fill(torch.arange(length)[None] >= lengths[:, None], 0.0).sum(-1).tolist()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cached_greedy_equals_naive_greedy_on_a_padded_batch(seed):
    model = random_model(seed=seed)
    source = padded_source(seed=seed + 10)
    greedy = greedy_decode(model, source)
    assert greedy == naive_greedy_decode(model, source)
    assert len(greedy) == len(source)
    assert len({tuple(ids) for ids in greedy}) > 2  # the outputs vary: the comparison means something
    assert all(PAD not in ids and END not in ids for ids in greedy)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_exercises_one_hot_padded_loop_gives_the_same_ids(seed):
    model = random_model(seed=seed)
    source = padded_source(seed=seed + 10)
    greedy = greedy_decode(model, source)
    assert exercise_greedy_decode(model, source) == greedy
    assert len({tuple(ids) for ids in greedy}) > 2
    assert exercise_greedy_decode(model, source, max_steps=2) == greedy_decode(model, source, max_steps=2)


def test_greedy_equals_naive_greedy_when_pad_is_predicted():
    model = random_model(seed=6, suppress_pad=False)
    source = padded_source(seed=16)
    first_logits, _ = model(source, torch.full((len(source), 1), START), src_padding_mask=source == PAD)
    assert (first_logits[:, 0].argmax(-1) == PAD).any()  # this model does predict PAD
    greedy = greedy_decode(model, source)
    assert greedy == naive_greedy_decode(model, source)
    assert all(PAD not in ids for ids in greedy)


def test_greedy_respects_max_steps_and_single_sentences():
    model = random_model()
    source = padded_source()
    for max_steps in (1, 3):
        results = greedy_decode(model, source, max_steps=max_steps)
        assert all(len(ids) <= max_steps for ids in results)
        assert results == naive_greedy_decode(model, source, max_steps=max_steps)
    batch = greedy_decode(model, source)
    for row, ids in zip(source, batch):
        assert greedy_decode(model, row[row != PAD][None]) == [ids]


def test_beam_one_equals_greedy():
    model = random_model()
    source = padded_source()
    assert beam_search(model, source, beam_size=1) == greedy_decode(model, source)


@pytest.mark.parametrize("seed", [2, 3])
def test_beam_search_scores_at_least_as_well_as_greedy(seed):
    model = random_model(seed=seed)
    source = padded_source(seed=seed + 10)
    max_steps = model.max_len + 1
    greedy = greedy_decode(model, source)
    for beam in (2, 4):
        hypotheses = beam_search(model, source, beam_size=beam, length_penalty=0.0)
        assert len(hypotheses) == len(source)
        for row, hypothesis, greedy_hypothesis in zip(source, hypotheses, greedy):
            beam_score, greedy_score = log_probabilities(model, row, [hypothesis, greedy_hypothesis], max_steps)
            assert beam_score >= greedy_score - 1e-4
    assert beam_search(model, source, beam_size=4, length_penalty=0.0) != greedy  # beam search finds better ones


def test_wide_beam_search_equals_exhaustive_search():
    en_vocab, max_steps = 6, 3
    model = random_model(en_vocab=en_vocab, seed=7)
    source = padded_source(batch=5, seed=17)
    tokens = [token for token in range(en_vocab) if token not in (PAD, END)]
    candidates = [list(prefix) for length in range(max_steps + 1)
                  for prefix in itertools.product(tokens, repeat=length)]
    # a beam as wide as the number of all token sequences never drops a candidate: the search is exact
    hypotheses = beam_search(model, source, beam_size=en_vocab ** max_steps, max_steps=max_steps, length_penalty=0.0)
    for row, hypothesis in zip(source, hypotheses):
        scores = log_probabilities(model, row, candidates + [hypothesis], max_steps)
        assert scores[-1] == pytest.approx(max(scores[:-1]), abs=1e-4)
    assert hypotheses != greedy_decode(model, source, max_steps=max_steps)  # greedy is not optimal here


def test_length_penalty_prefers_longer_hypotheses():
    model = random_model(seed=6)
    source = padded_source(seed=26)
    short = beam_search(model, source, beam_size=4, length_penalty=0.0)
    long = beam_search(model, source, beam_size=4, length_penalty=2.0)
    assert sum(map(len, long)) >= sum(map(len, short))


def test_returned_attention_matches_a_full_forward_pass():
    model = random_model(seed=7)
    source = padded_source(seed=27)
    results, attentions = greedy_decode(model, source, return_attention=True)
    assert results == greedy_decode(model, source)
    _, first_layer = greedy_decode(model, source, return_attention=True, layer=0)
    for row, ids, weights, weights0 in zip(source, results, attentions, first_layer):
        sentence = row[row != PAD][None]
        steps = min(len(ids) + 1, model.max_len + 1)
        assert weights.shape == (model.num_heads, steps, sentence.shape[1])
        torch.testing.assert_close(weights.sum(-1), torch.ones(model.num_heads, steps))
        decoder_input = torch.tensor([[START] + ids])[:, :steps]
        _, full = model(sentence, decoder_input)
        torch.testing.assert_close(weights, full[:, 0], rtol=1e-5, atol=1e-5)
        _, per_layer = model.decode(decoder_input, model.encode(sentence))
        torch.testing.assert_close(weights0, per_layer[0][:, 0], rtol=1e-5, atol=1e-5)


def repeats_an_ngram(ids, n):
    """Whether some n consecutive tokens occur twice in ``ids``."""
    ngrams = [tuple(ids[start:start + n]) for start in range(len(ids) - n + 1)]
    return len(ngrams) != len(set(ngrams))


def test_block_repeated_ngrams_on_a_hand_made_history():
    history = torch.tensor([[5, 6, 7, 5, 6], [4, 4, 4, 4, 4], [5, 6, 7, 8, 9]])
    for n, expected in [(1, [{5, 6, 7}, {4}, {5, 6, 7, 8, 9}]), (2, [{7}, {4}, set()]), (3, [{7}, {4}, set()]),
                        (4, [set(), {4}, set()]), (6, [set(), set(), set()]), (0, [set(), set(), set()])]:
        scores = block_repeated_ngrams_(torch.zeros(3, 10), history, n)
        assert [set(torch.isinf(row).nonzero().flatten().tolist()) for row in scores] == expected, n


@pytest.mark.parametrize("n", [1, 2, 3])
def test_greedy_ngram_blocking_equals_a_plain_scan_and_never_repeats(n):
    model = random_model(seed=4)
    source = padded_source(batch=16, seed=14)
    unblocked = greedy_decode(model, source)
    assert any(repeats_an_ngram(ids, n) for ids in unblocked)  # the model does repeat itself: blocking matters
    blocked = greedy_decode(model, source, no_repeat_ngram=n)
    assert blocked == naive_greedy_decode(model, source, no_repeat_ngram=n)
    assert not any(repeats_an_ngram(ids, n) for ids in blocked)
    assert blocked != unblocked
    results, _ = greedy_decode(model, source, return_attention=True, no_repeat_ngram=n)
    assert results == blocked


@pytest.mark.parametrize("n", [1, 2])
def test_beam_search_with_ngram_blocking_equals_exhaustive_search_over_unrepeating_candidates(n):
    en_vocab, max_steps = 6, 4
    model = random_model(en_vocab=en_vocab, seed=8)
    source = padded_source(batch=5, seed=18)
    tokens = [token for token in range(en_vocab) if token not in (PAD, END)]
    candidates = [list(prefix) for length in range(max_steps + 1)
                  for prefix in itertools.product(tokens, repeat=length) if not repeats_an_ngram(prefix, n)]
    hypotheses = beam_search(model, source, beam_size=en_vocab ** max_steps, max_steps=max_steps,
                             length_penalty=0.0, no_repeat_ngram=n)
    for row, hypothesis in zip(source, hypotheses):
        assert not repeats_an_ngram(hypothesis, n)
        scores = log_probabilities(model, row, candidates + [hypothesis], max_steps)
        assert scores[-1] == pytest.approx(max(scores[:-1]), abs=1e-4)
    unblocked = beam_search(model, source, beam_size=en_vocab ** max_steps, max_steps=max_steps, length_penalty=0.0)
    assert unblocked != hypotheses
    assert beam_search(model, source, beam_size=1, no_repeat_ngram=n) == greedy_decode(model, source, no_repeat_ngram=n)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
