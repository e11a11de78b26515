"""Decoding a TransformerModel: batched greedy and beam search with cached keys and values, and two
one-sentence-at-a-time greedy loops that recompute the whole prefix at every step (kept as references and speed
baselines): the exercise's, on one-hot inputs padded to the model's full lengths, and a leaner one on token ids.

All functions take German token ids ``source`` (batch, src_len) padded with PAD and return, per sentence, the list of
English token ids without START, END or padding. With ``no_repeat_ngram`` n > 0 they never produce the same n tokens
twice in one output (n-gram blocking, a common cure for the repetitions of small models; 0: off).
"""
import math

import torch
import torch.nn.functional as F

from lib.translation.tokenizer import END, PAD, START


def _strip(sequence):
    """Ids up to (not including) the first END, without padding."""
    result = []
    for token in sequence:
        if token == END:
            break
        if token != PAD:
            result.append(token)
    return result


def block_repeated_ngrams_(scores, history, n):
    """Set to -inf, in place, the scores (rows, vocab) of tokens that would complete an n-gram that already occurs
    in ``history`` (rows, steps), the tokens produced so far; n <= 0 blocks nothing. Returns ``scores``."""
    steps = history.shape[1]
    if n <= 0 or steps < n:
        return scores
    ngrams = history.unfold(1, n, 1)  # (rows, steps - n + 1, n)
    # an earlier n-gram whose first n - 1 tokens are the last n - 1 tokens produced: its last token is blocked
    matches = (ngrams[:, :, :-1] == history[:, None, steps - n + 1:]).all(dim=-1)
    rows, starts = matches.nonzero(as_tuple=True)
    scores[rows, ngrams[rows, starts, -1]] = float("-inf")
    return scores


@torch.no_grad()
def greedy_decode(model, source, max_steps=None, return_attention=False, layer=-1, no_repeat_ngram=0):
    """Batched greedy decoding with the cache: one decoder position per step.

    source: (batch, src_len) ids. max_steps: at most this many output tokens, END included (default max_len + 1).
    With return_attention, also returns the cross-attention of decoder ``layer`` for each sentence,
    (num_heads, out_len, src_len), out_len counting the END token when one was produced.
    """
    max_steps = max_steps or model.max_len + 1
    padding = source == PAD
    memory = model.encode(source, padding, need_weights=False)
    caches = model.new_caches()
    batch = source.shape[0]
    token = torch.full((batch, 1), START, dtype=torch.long, device=source.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=source.device)
    active = torch.arange(batch, device=source.device)  # rows still decoding (all of them with return_attention)
    output = torch.full((batch, max_steps), PAD, dtype=torch.long, device=source.device)
    attentions = []
    for position in range(max_steps):
        logits, step_attentions = model.decode_step(token, memory, caches, position, padding[active],  # memory: only
                                                    need_weights=return_attention)  # its cached projections are used
        if no_repeat_ngram > 0:
            block_repeated_ngrams_(logits, output[active, :position], no_repeat_ngram)
        next_token = logits.argmax(dim=-1).masked_fill(finished[active], PAD)
        output[active, position] = next_token
        if return_attention:
            attentions.append(step_attentions[layer][:, :, 0])  # (heads, batch, src_len)
        finished[active] |= next_token == END
        if finished.all():
            break
        if not return_attention and finished[active].any():  # drop finished sentences: later steps cost less
            keep = (~finished[active]).nonzero().squeeze(1)
            active, next_token = active[keep], next_token[keep]
            model.reorder_caches(caches, keep)
        token = next_token[:, None]
    output = output[:, :position + 1]
    results = [_strip(sequence) for sequence in output.tolist()]
    if not return_attention:
        return results
    stacked = torch.stack(attentions, dim=2)  # (heads, batch, steps, src_len)
    source_lengths = (~padding).sum(dim=1).tolist()
    per_sentence = [stacked[:, i, :min(len(results[i]) + 1, stacked.shape[2]), :source_lengths[i]]
                    for i in range(batch)]
    return results, per_sentence


# The beam widths the scripts accept (run_translation.py --beam, tools/sweep_decoding.py --beams, a stored decoding).
BEAM_RANGE = (1, 100)
# The length penalties (GNMT's alpha) the scripts accept: far beyond any useful value (0 to 2), far inside overflow.
LENGTH_PENALTY_RANGE = (-10.0, 10.0)
# The largest |log| of a penalty: e ** 80 is about 5e34, so scores divided by it stay finite in float32 and bfloat16.
MAX_LOG_PENALTY = 80.0


def gnmt_length_penalty(length, alpha):
    """The length penalty of Wu et al. 2016 (GNMT), ((5 + length) / 6) ** alpha: a finished hypothesis is ranked by
    its log-probability divided by this. alpha 0 ranks by log-probability alone; larger alpha favours longer ones,
    negative alpha shorter ones. Never overflows: beyond e ** +-MAX_LOG_PENALTY the penalty stays there."""
    base = (5.0 + length) / 6.0
    exponent = alpha * math.log(base)
    if abs(exponent) > MAX_LOG_PENALTY:
        return math.exp(math.copysign(MAX_LOG_PENALTY, exponent))
    return base ** alpha


@torch.no_grad()
def beam_search(model, source, beam_size=4, max_steps=None, length_penalty=1.0, no_repeat_ngram=0):
    """Batched beam search with the cache, returning for each sentence the best finished hypothesis by
    log-probability / gnmt_length_penalty(length, length_penalty).

    source: (batch, src_len) ids. A hypothesis's length counts its tokens and END; one that reaches ``max_steps``
    tokens (default max_len + 1) without END ends there, with length max_steps. At each step every unfinished
    hypothesis may end (its END extension is scored and kept aside if it is the best finished one so far), and the
    beam is refilled with the ``beam_size`` best unfinished extensions (PAD is never produced). A sentence's search
    stops when no unfinished hypothesis can beat its best finished one: log-probabilities only fall as tokens are
    added, so an unfinished one's final score is at most its score divided by the largest penalty still reachable.
    length_penalty 1.0 (the default) was chosen on the validation split with the shipped model: BLEU / chrF at beam 4
    were 7.05 / 22.5 with 0.0, 8.97 / 28.1 with 0.6, 9.11 / 30.0 with 1.0, 9.26 / 30.4 with 1.2, 8.66 / 30.8 with
    1.5 and 4.89 / 29.7 with 2.0 (outputs too short below 1, too long above 1.5).
    With beam_size 1 it returns what greedy_decode returns.
    """
    if beam_size == 1:
        return greedy_decode(model, source, max_steps, no_repeat_ngram=no_repeat_ngram)
    max_steps = max_steps or model.max_len + 1
    batch, device = source.shape[0], source.device
    padding = source == PAD
    memory = model.encode(source, padding, need_weights=False).repeat_interleave(beam_size, dim=0)
    padding = padding.repeat_interleave(beam_size, dim=0)
    caches = model.new_caches()
    scores = torch.zeros(batch, beam_size, device=device)  # log-probabilities of the unfinished hypotheses
    scores[:, 1:] = float("-inf")  # all beams start identical: keep one
    history = torch.full((batch * beam_size, 0), PAD, dtype=torch.long, device=device)
    best_score = torch.full((batch,), float("-inf"), device=device)  # the best finished hypothesis per sentence
    best_tokens = torch.full((batch, max_steps), PAD, dtype=torch.long, device=device)
    active = torch.arange(batch, device=device)  # sentences still searching
    offsets = torch.arange(beam_size, device=device)
    token = torch.full((batch * beam_size, 1), START, dtype=torch.long, device=device)
    for position in range(max_steps):
        sentences = len(active)
        logits, _ = model.decode_step(token, memory, caches, position, padding)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        vocab = log_probs.shape[-1]
        log_probs[:, PAD] = float("-inf")
        block_repeated_ngrams_(log_probs, history, no_repeat_ngram)
        candidates = (scores.view(-1, 1) + log_probs).view(sentences, beam_size * vocab)
        penalty = gnmt_length_penalty(position + 1, length_penalty)
        last = position == max_steps - 1
        if last:  # every candidate ends here, with or without END
            ending, flat_index = candidates.max(dim=-1)
            beam_index, ending_token = flat_index // vocab, flat_index % vocab
        else:  # the END extensions end here
            ending, beam_index = candidates.view(sentences, beam_size, vocab)[:, :, END].max(dim=-1)
            ending_token = torch.full_like(beam_index, END)
        ending = ending / penalty
        better = ending > best_score[active]
        if better.any():
            rows = better.nonzero().squeeze(1)
            chosen = active[rows]
            best_score[chosen] = ending[rows]
            best_tokens[chosen, :position] = history[rows * beam_size + beam_index[rows]]
            best_tokens[chosen, position] = ending_token[rows]
        if last:
            break
        candidates.view(sentences, beam_size, vocab)[:, :, END] = float("-inf")
        scores, flat_index = candidates.topk(beam_size, dim=-1)
        beam_index = torch.div(flat_index, vocab, rounding_mode="floor")
        next_token = flat_index % vocab
        rows = (beam_index + torch.arange(sentences, device=device)[:, None] * beam_size).view(-1)
        # the best reachable score of an unfinished hypothesis: its score over the largest penalty ahead
        lengths_ahead = max_steps if length_penalty >= 0 else position + 2
        done = best_score[active] >= scores[:, 0] / gnmt_length_penalty(lengths_ahead, length_penalty)
        if done.all():
            break
        if done.any():  # drop finished sentences: later steps cost less
            keep = (~done).nonzero().squeeze(1)
            active, scores, next_token = active[keep], scores[keep], next_token[keep]
            kept_rows = (keep[:, None] * beam_size + offsets).view(-1)
            rows, padding = rows[kept_rows], padding[kept_rows]
        model.reorder_caches(caches, rows)
        history = torch.cat([history[rows], next_token.view(-1, 1)], dim=1)
        token = next_token.view(-1, 1)
    return [_strip(sequence) for sequence in best_tokens.tolist()]


@torch.no_grad()
def naive_greedy_decode(model, source, max_steps=None, padded_one_hot=False, no_repeat_ngram=0):
    """One sentence at a time, a full forward pass over the whole prefix at every step.

    padded_one_hot: feed the exercise's inputs, one-hot and padded to the model's full lengths (German max_len,
    English max_len + 1), as the exercise's ``forward`` takes them; else (leaner) token ids of the sentence and the
    prefix only. Unlike the exercise, both stop at END and mask the German padding (this library's models are
    trained with the mask), so that they return what ``greedy_decode`` returns.
    """
    max_steps = min(max_steps or model.max_len + 1, model.max_len + 1)
    results = []
    for sentence in source:
        german, padding = sentence[sentence != PAD][None], None
        if padded_one_hot:
            german = F.pad(german, (0, model.max_len - german.shape[1]), value=PAD)
            padding = german == PAD
            german = F.one_hot(german, model.de_vocab_size).float()
        output = []
        for position in range(max_steps):
            prefix = torch.tensor([[START] + output], device=source.device)
            if padded_one_hot:
                prefix = F.pad(prefix, (0, model.max_len + 1 - prefix.shape[1]), value=PAD)
                prefix = F.one_hot(prefix, model.en_vocab_size).float()
            logits, _ = model(german, prefix, src_padding_mask=padding)
            scores = logits[0, position].clone()
            for banned in _repeating_tokens(output, no_repeat_ngram):
                scores[banned] = float("-inf")
            next_token = scores.argmax().item()
            if next_token == END:
                break
            output.append(next_token)
        results.append(_strip(output))
    return results


def _repeating_tokens(output, n):
    """The tokens that, appended to the list ``output``, would repeat one of its n-grams (a plain scan)."""
    if n <= 0:
        return set()
    last = output[len(output) - n + 1:] if n > 1 else []
    return {output[start + n - 1] for start in range(len(output) - n + 1) if output[start:start + n - 1] == last}


def exercise_greedy_decode(model, source, max_steps=None):
    """The exercise's loop: ``naive_greedy_decode`` on one-hot inputs padded to the model's full lengths."""
    return naive_greedy_decode(model, source, max_steps, padded_one_hot=True)
