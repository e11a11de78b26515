"""Tests of lib/translation/decoding.py on small random models: cached greedy decoding against the exercise's full
recomputation; beam search against exhaustive search under the same length-normalised scoring, against a plain
one-sentence reference (on Transformers and on a table model whose outputs end at varied lengths), and on constructed
cases where the length penalty and the stopping rule decide the answer; the returned attention against a full forward
pass."""
import itertools
import math
import sys

import pytest
import torch

from lib.translation.decoding import (_repeating_tokens, beam_search, block_repeated_ngrams_, exercise_greedy_decode,
                                      gnmt_length_penalty, greedy_decode, naive_greedy_decode)
from lib.translation.tokenizer import END, PAD, START
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


def normalised_scores(model, source, hypotheses, max_steps, alpha):
    """GNMT-normalised scores, log P / ((5 + length) / 6) ** alpha, with length = tokens + END, or max_steps for a
    hypothesis that used all steps (and has no END)."""
    lengths = [min(len(hypothesis) + 1, max_steps) for hypothesis in hypotheses]
    return [score / ((5 + length) / 6) ** alpha
            for score, length in zip(log_probabilities(model, source, hypotheses, max_steps), lengths)]


def all_hypotheses(en_vocab, max_steps, n=0):
    """Every output of at most max_steps tokens (no PAD or END inside), without repeated n-grams when n > 0."""
    tokens = [token for token in range(en_vocab) if token not in (PAD, END)]
    return [list(prefix) for length in range(max_steps + 1) for prefix in itertools.product(tokens, repeat=length)
            if n <= 0 or not repeats_an_ngram(prefix, n)]


def exhaustive_search(model, source, max_steps, alpha, n=0):
    """The best hypothesis of each sentence by normalised score, over all of them."""
    candidates = all_hypotheses(model.en_vocab_size, max_steps, n)
    results = []
    for row in source:
        scores = normalised_scores(model, row, candidates, max_steps, alpha)
        results.append(candidates[max(range(len(candidates)), key=scores.__getitem__)])
    return results


class TableModel:
    """A stand-in with TransformerModel's decoding interface (encode, new_caches, decode_step, reorder_caches) whose
    next-token logits are a random table indexed by (the source's first token, the last token, the position), END's
    rising with the position: hypotheses end at varied lengths, which random Transformers rarely do."""

    def __init__(self, en_vocab=8, de_vocab=10, max_len=6, seed=0, end_ramp=1.0):
        generator = torch.Generator().manual_seed(seed)
        self.max_len, self.en_vocab_size = max_len, en_vocab
        self.table = torch.randn(de_vocab, en_vocab, max_len + 1, en_vocab, generator=generator) * 2.0
        self.table[..., END] += end_ramp * (torch.arange(max_len + 1) - max_len / 2.0)

    def encode(self, source, padding, need_weights=False):
        return source[:, :1, None].float()  # (batch, 1, 1): the first source token

    def new_caches(self):
        return [{}]

    def decode_step(self, token, memory, caches, position, src_padding_mask=None, need_weights=False):
        cache = caches[0]
        if "first" not in cache:
            cache["first"] = memory[:, 0, 0].long()
        return self.table[cache["first"], token[:, 0], position], None

    def reorder_caches(self, caches, index):
        caches[0]["first"] = caches[0]["first"].index_select(0, index)

    def next_log_probs(self, row, prefix):
        """log-softmax over the next token after ``prefix`` (a list) for the source sentence ``row``."""
        return torch.log_softmax(self.table[int(row[0]), prefix[-1] if prefix else START, len(prefix)], dim=-1)


def transformer_next_log_probs(model):
    """For a TransformerModel: one full forward pass of the unpadded sentence and START + prefix."""
    @torch.no_grad()
    def next_log_probs(row, prefix):
        logits, _ = model(row[row != PAD][None], torch.tensor([[START] + prefix]))
        return torch.log_softmax(logits[0, -1], dim=-1)
    return next_log_probs


def reference_beam_search(next_log_probs, row, beam_size, max_steps, alpha, n=0):
    """Beam search as lib/translation/decoding.py describes it, for one sentence, in plain Python: END extensions (and,
    at the last step, all of them) go aside as finished, the best unfinished ones fill the beam, and the search stops
    when no unfinished one can beat the best finished one."""
    live, best = [([], 0.0)], (float("-inf"), [])
    for step in range(max_steps):
        extensions = []
        for tokens, score in live:
            banned = _repeating_tokens(tokens, n)
            for token, log_prob in enumerate(next_log_probs(row, tokens).tolist()):
                if token == PAD or token in banned:
                    continue
                if token == END or step == max_steps - 1:
                    normalised = (score + log_prob) / ((5 + step + 1) / 6) ** alpha
                    if normalised > best[0]:
                        best = (normalised, tokens + [token])
                else:
                    extensions.append((tokens + [token], score + log_prob))
        live = sorted(extensions, key=lambda extension: -extension[1])[:beam_size]
        if not live or best[0] >= live[0][1] / ((5 + (max_steps if alpha >= 0 else step + 2)) / 6) ** alpha:
            break
    return [token for token in best[1] if token != END]


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


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0, -0.5])
def test_wide_beam_search_equals_exhaustive_search(alpha):
    en_vocab, max_steps = 6, 3
    model = random_model(en_vocab=en_vocab, seed=7)
    source = padded_source(batch=5, seed=17)
    # a beam as wide as the number of all token sequences never drops a candidate: the search is exact
    hypotheses = beam_search(model, source, beam_size=en_vocab ** max_steps, max_steps=max_steps,
                             length_penalty=alpha)
    candidates = all_hypotheses(en_vocab, max_steps)
    for row, hypothesis, best in zip(source, hypotheses, exhaustive_search(model, source, max_steps, alpha)):
        scores = normalised_scores(model, row, candidates + [hypothesis, best], max_steps, alpha)
        assert scores[-2] == pytest.approx(max(scores[:-2]), abs=1e-4)
        assert hypothesis == best
    assert hypotheses != greedy_decode(model, source, max_steps=max_steps)  # greedy is not optimal here


def test_length_penalty_changes_the_answer_as_exhaustive_search_says():
    en_vocab, max_steps = 6, 4
    model = random_model(en_vocab=en_vocab, seed=9)
    source = padded_source(batch=6, seed=19)
    results = {}
    for alpha in (0.0, 2.0):
        results[alpha] = beam_search(model, source, beam_size=en_vocab ** max_steps, max_steps=max_steps,
                                     length_penalty=alpha)
        assert results[alpha] == exhaustive_search(model, source, max_steps, alpha)
    assert results[0.0] != results[2.0]  # the penalty does change the answer here
    # a larger alpha never makes the best hypothesis shorter, and here makes some longer
    lengths = {alpha: [len(ids) for ids in hypotheses] for alpha, hypotheses in results.items()}
    assert all(long >= short for short, long in zip(lengths[0.0], lengths[2.0]))
    assert sum(lengths[2.0]) > sum(lengths[0.0])
    # with an ordinary beam too
    assert beam_search(model, source, beam_size=4, length_penalty=0.0) != beam_search(model, source, beam_size=4,
                                                                                      length_penalty=2.0)


@pytest.mark.parametrize("beam_size, alpha, n", [(2, 0.6, 0), (3, 0.0, 0), (4, 1.0, 2), (3, -0.3, 1), (5, 2.0, 0)])
def test_batched_beam_search_equals_a_plain_one_sentence_reference(beam_size, alpha, n):
    model = TableModel(seed=beam_size)
    source = padded_source(batch=12, seed=20 + beam_size)
    hypotheses = beam_search(model, source, beam_size=beam_size, length_penalty=alpha, no_repeat_ngram=n)
    expected = [reference_beam_search(model.next_log_probs, row, beam_size, model.max_len + 1, alpha, n)
                for row in source]
    assert hypotheses == expected
    assert len({len(ids) for ids in hypotheses}) > 2  # varied lengths: sentences leave the batch at varied steps
    assert [beam_search(model, row[None], beam_size=beam_size, length_penalty=alpha, no_repeat_ngram=n)[0]
            for row in source] == hypotheses
    assert hypotheses != greedy_decode(model, source, no_repeat_ngram=n)


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0, -0.5])
def test_wide_beam_search_equals_exhaustive_search_on_a_table_model(alpha):
    max_steps = 4
    model = TableModel(en_vocab=6, seed=11)
    source = padded_source(batch=10, seed=21)
    hypotheses = beam_search(model, source, beam_size=6 ** max_steps, max_steps=max_steps, length_penalty=alpha)
    candidates = all_hypotheses(6, max_steps)
    for row, hypothesis in zip(source, hypotheses):
        scores = []
        for candidate in candidates:
            tokens = candidate + ([END] if len(candidate) < max_steps else [])
            log_prob = sum(float(model.next_log_probs(row, tokens[:i])[token]) for i, token in enumerate(tokens))
            scores.append(log_prob / ((5 + len(tokens)) / 6) ** alpha)
        assert hypothesis == candidates[max(range(len(candidates)), key=scores.__getitem__)]
    assert len({len(ids) for ids in hypotheses}) > 1


@pytest.mark.parametrize("seed", [3, 8])
def test_beam_search_on_a_transformer_equals_the_plain_reference(seed):
    model = random_model(seed=seed)
    with torch.no_grad():
        model.decoder_final_dense.bias[END] = -2.0  # fewer empty outputs
    source = padded_source(batch=12, seed=seed + 30)
    for beam_size, alpha, n in ((2, 0.6, 0), (3, 1.0, 2)):
        hypotheses = beam_search(model, source, beam_size=beam_size, length_penalty=alpha, no_repeat_ngram=n)
        reference = transformer_next_log_probs(model)
        assert hypotheses == [reference_beam_search(reference, row, beam_size, model.max_len + 1, alpha, n)
                              for row in source]
        assert len({len(ids) for ids in hypotheses}) > 1


def test_search_goes_on_while_a_longer_hypothesis_can_still_win():
    """Constructed: at the first step END has probability about 0.6 and token 4 about 0.4; after token 4, token 5
    is nearly certain until END at the last position. By log-probability the empty output wins (log 0.6 > log 0.4);
    with alpha 2 the long one does (log 0.4 / ((5 + 7) / 6) ** 2 > log 0.6), though when the empty one is found,
    the long one's partial score log 0.4 / ((5 + 2) / 6) ** 2 is still below it: stopping then would be wrong."""
    model = TableModel(en_vocab=6, seed=0)
    model.table.fill_(-30.0)
    model.table[:, START, 0, END] = math.log(0.6)
    model.table[:, START, 0, 4] = math.log(0.4)
    model.table[:, 4:6, 1:model.max_len, 5] = 0.0
    model.table[:, 5, model.max_len, END] = 0.0
    source = padded_source(batch=3, seed=1)
    assert beam_search(model, source, beam_size=2, length_penalty=0.0) == [[], [], []]
    long = [4] + [5] * (model.max_len - 1)
    assert beam_search(model, source, beam_size=2, length_penalty=2.0) == [long] * 3
    assert reference_beam_search(model.next_log_probs, source[0], 2, model.max_len + 1, 2.0) == long


def test_search_goes_on_while_a_shorter_hypothesis_can_still_win_with_a_negative_alpha():
    """Constructed, alpha -0.5 (favours short outputs): END first has probability 0.3 (score log 0.3 = -1.20);
    token 4 has 0.37 and is then followed by END for sure (score log 0.37 / (7 / 6) ** -0.5 = -1.07, the best).
    An unfinished hypothesis's bound is its score over the smallest penalty ahead, the next length's, not the
    longest's (log 0.37 / 2 ** -0.5 = -1.41 would stop the search after the first step)."""
    model = TableModel(en_vocab=6, seed=0)
    model.table.fill_(-30.0)
    model.table[:, START, 0, :] = torch.tensor([0.0, 0.11, 0.3, 0.11, 0.37, 0.11]).log()
    model.table[:, 4, 1, END] = 0.0
    source = padded_source(batch=2, seed=2)
    log_probs = model.next_log_probs(source[0], [])
    assert float(log_probs[END]) == pytest.approx(-1.20, abs=0.01)
    assert float(log_probs[4]) == pytest.approx(-1.0, abs=0.01)
    assert beam_search(model, source, beam_size=2, length_penalty=-0.5) == [[4], [4]]
    assert beam_search(model, source, beam_size=2, length_penalty=0.0) == [[4], [4]]


def test_gnmt_length_penalty():
    assert gnmt_length_penalty(1, 0.6) == pytest.approx(1.0)
    assert gnmt_length_penalty(7, 0.6) == pytest.approx(2.0 ** 0.6)
    assert gnmt_length_penalty(13, 2.0) == pytest.approx(9.0)
    assert gnmt_length_penalty(20, 0.0) == 1.0


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
    candidates = all_hypotheses(en_vocab, max_steps, n)
    hypotheses = beam_search(model, source, beam_size=en_vocab ** max_steps, max_steps=max_steps,
                             length_penalty=0.6, no_repeat_ngram=n)
    for row, hypothesis in zip(source, hypotheses):
        assert not repeats_an_ngram(hypothesis, n)
        scores = normalised_scores(model, row, candidates + [hypothesis], max_steps, 0.6)
        assert scores[-1] == pytest.approx(max(scores[:-1]), abs=1e-4)
    assert hypotheses == exhaustive_search(model, source, max_steps, 0.6, n)
    unblocked = beam_search(model, source, beam_size=en_vocab ** max_steps, max_steps=max_steps, length_penalty=0.0)
    assert unblocked != hypotheses
    assert beam_search(model, source, beam_size=1, no_repeat_ngram=n) == greedy_decode(model, source, no_repeat_ngram=n)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))


@pytest.mark.parametrize("alpha", [-10.0, -1.0, 0.0, 0.6, 1.2, 10.0])
@pytest.mark.parametrize("length", [1, 7, 49, 10 ** 4, 10 ** 12])
def test_the_length_penalty_is_finite_and_positive_for_every_accepted_alpha(alpha, length):
    """A huge alpha (1000) must not overflow. Inside the accepted range the penalty is GNMT's ((5 + length) / 6) **
    alpha wherever that stays within e ** +-80, and e ** +-80 beyond; never inf, 0 or an OverflowError."""
    from lib.translation.decoding import LENGTH_PENALTY_RANGE, MAX_LOG_PENALTY, gnmt_length_penalty
    assert LENGTH_PENALTY_RANGE[0] <= alpha <= LENGTH_PENALTY_RANGE[1]
    penalty = gnmt_length_penalty(length, alpha)
    exact_log = alpha * math.log((5 + length) / 6)
    assert math.isfinite(penalty) and penalty > 0
    if abs(exact_log) <= MAX_LOG_PENALTY:
        assert penalty == pytest.approx(((5 + length) / 6) ** alpha, rel=1e-12)
    else:
        assert math.log(penalty) == pytest.approx(math.copysign(MAX_LOG_PENALTY, exact_log))
