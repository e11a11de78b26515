"""Decoding a TransformerModel: batched greedy and beam search with cached keys and values, and two
one-sentence-at-a-time greedy loops that recompute the whole prefix at every step (kept as references and speed
baselines): the exercise's, on one-hot inputs padded to the model's full lengths, and a leaner one on token ids.

All functions take German token ids ``source`` (batch, src_len) padded with PAD and return, per sentence, the list of
English token ids without START, END or padding. With ``no_repeat_ngram`` n > 0 they never produce the same n tokens
twice in one output (n-gram blocking, a common cure for the repetitions of small models; 0: off).
"""
import torch
import torch.nn.functional as F

from lib.tokenizer import END, PAD, START


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


@torch.no_grad()
def beam_search(model, source, beam_size=4, max_steps=None, length_penalty=0.6, no_repeat_ngram=0):
    """Batched beam search with the cache; hypotheses are ranked by log-probability / length ** length_penalty.

    With beam_size 1 it returns what greedy_decode returns.
    """
    if beam_size == 1:
        return greedy_decode(model, source, max_steps, no_repeat_ngram=no_repeat_ngram)
    max_steps = max_steps or model.max_len + 1
    batch, device = source.shape[0], source.device
    padding = (source == PAD).repeat_interleave(beam_size, dim=0)
    memory = model.encode(source.repeat_interleave(beam_size, dim=0), padding, need_weights=False)
    caches = model.new_caches()
    scores = torch.zeros(batch, beam_size, device=device)
    scores[:, 1:] = float("-inf")  # all beams start identical: keep one
    history = torch.full((batch * beam_size, 0), PAD, dtype=torch.long, device=device)
    lengths = torch.zeros(batch * beam_size, device=device)
    finished = torch.zeros(batch * beam_size, dtype=torch.bool, device=device)
    token = torch.full((batch * beam_size, 1), START, dtype=torch.long, device=device)
    for position in range(max_steps):
        logits, _ = model.decode_step(token, memory, caches, position, padding)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        vocab = log_probs.shape[-1]
        block_repeated_ngrams_(log_probs, history, no_repeat_ngram)
        # a finished hypothesis can only be extended by PAD, at no cost
        log_probs[finished] = float("-inf")
        log_probs[finished, PAD] = 0.0
        candidates = (scores.view(-1, 1) + log_probs).view(batch, beam_size * vocab)
        scores, flat_index = candidates.topk(beam_size, dim=-1)
        beam_index = torch.div(flat_index, vocab, rounding_mode="floor")
        next_token = (flat_index % vocab).view(-1)
        rows = (beam_index + torch.arange(batch, device=device)[:, None] * beam_size).view(-1)
        model.reorder_caches(caches, rows)
        history = torch.cat([history[rows], next_token[:, None]], dim=1)
        was_finished = finished[rows]
        lengths = lengths[rows] + (~was_finished).float()
        finished = was_finished | (next_token == END)
        if finished.all():
            break
        token = next_token[:, None]
    normalised = scores / lengths.view(batch, beam_size).clamp(min=1) ** length_penalty
    best = normalised.argmax(dim=-1) + torch.arange(batch, device=device) * beam_size
    return [_strip(sequence) for sequence in history[best].tolist()]


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
