"""The attention explorer: every attention weight of a translation (or of the counting model) in one self-contained,
offline HTML page, with a head view (tokens in two columns joined by lines) and a model view (every layer and head
as a small heatmap).

The page is the template in ``lib/explorer/`` (HTML, CSS and JavaScript written for this project; nothing is
fetched at run time) with the attention embedded as JSON in ``<script type="application/json" id="attention-data">``:

    {"title": str, "facts": [[label, text], ...], "scale": SCALE, "views": [view, ...]}
    view:  {"id", "name", "about", "query_side", "key_side", "entry_label", "normalised": bool, "causal": bool,
            "first_shown": entry index, "entries": [entry, ...]}   (the layers, or the counting model's sequences)
    entry: {"label", "caption", "queries": [token], "keys": [token], "query_notes", "key_notes" ([str] or null),
            "query_words", "key_words" ([word number per token] or null: the tokens cannot be merged),
            "weights": [head][query][key] whole numbers, the weight times SCALE, rounded}

Translation: the target side of decoder self-attention and cross-attention is labelled by the token each decoder
position *produces* (so "dog -> Hund" reads "while producing 'dog' it looked at 'Hund'"); the keys of decoder
self-attention are the decoder's inputs (<START> and the tokens produced before). The weights are those of one
teacher-forced pass over the translation returned by the decoding (greedy or beam search), which are the weights that
the cached step-by-step decoding computed for that hypothesis (tests/explorer/test_page.py checks both).

In a Jupyter notebook, ``explore(translator, german)`` returns an ``ExplorerView``, which the notebook shows inline: the
same page in a sandboxed frame.
"""
import html
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from lib.translation.decoding import beam_search
from lib.translation.tokenizer import END, START

SCALE = 100_000  # weights are stored as round(weight * SCALE): 5 decimals, at most 5e-6 off
PAGE_FOLDER = os.path.dirname(os.path.abspath(__file__))
WORD_START = "\u2581"  # SentencePiece's mark of a piece that starts a word


@contextmanager
def recorded_attention(model):
    """Record the weights of every attention module of a TransformerModel while the block runs.

    Yields a dict "encoder", "decoder", "cross" -> list with one entry per layer, filled as the modules run: the
    weights (num_heads, batch, query_len, key_len) of that layer's last call (run with need_weights=True)."""
    records = {"encoder": [None] * model.enc_layers, "decoder": [None] * model.dec_layers,
               "cross": [None] * model.dec_layers}
    hooks = []
    for kind, modules in (("encoder", model.enc_att), ("decoder", model.dec_att), ("cross", model.enc_dec_att)):
        for layer, module in enumerate(modules):
            def record(module, inputs, output, kind=kind, layer=layer):
                records[kind][layer] = output[1]
            hooks.append(module.register_forward_hook(record))
    try:
        yield records
    finally:
        for hook in hooks:
            hook.remove()


@torch.no_grad()
def transformer_attention(model, source, decoder_input):
    """Every attention weight of one pass of ``model`` over one sentence (teacher forcing).

    source: German ids (1, src_len), no padding; decoder_input: (1, tgt_len), START and the tokens after it.
    Returns (logits (tgt_len, en_vocab), {"encoder": (enc_layers, heads, src_len, src_len),
    "decoder": (dec_layers, heads, tgt_len, tgt_len), "cross": (dec_layers, heads, tgt_len, src_len)}), on the CPU.
    """
    model.eval()
    with recorded_attention(model) as records:
        memory = model.encode(source, None, need_weights=True)
        logits, _ = model.decode(decoder_input, memory, None, need_weights=True)
    shapes = {"encoder": (source.shape[1], source.shape[1]), "decoder": (decoder_input.shape[1],) * 2,
              "cross": (decoder_input.shape[1], source.shape[1])}
    weights = {}
    for kind, layers in records.items():
        if layers:
            weights[kind] = torch.stack([layer[:, 0] for layer in layers]).float().cpu()
        else:
            weights[kind] = torch.zeros((0, model.num_heads) + shapes[kind])
    return logits[0].float().cpu(), weights


@dataclass
class TranslationAttention:
    """One sentence's translation with all its attention (see ``translation_attention``)."""
    source_pieces: list        # the German tokens as the model sees them
    input_pieces: list         # the decoder's inputs: <START> and the tokens produced before each position
    output_pieces: list        # the token each decoder position produces (<END> included when produced)
    translation: str
    weights: dict              # "encoder", "decoder", "cross" -> (layers, heads, queries, keys)
    log_probability: float     # of the output pieces under the model
    source_cut: int = 0        # German tokens beyond the model's max_len, left out


@torch.no_grad()
def translation_attention(translator, text, beam=1, length_penalty=1.0, no_repeat_ngram=0, output_ids=None):
    """Translate ``text`` (beam search with ``beam``; greedy with 1), or take ``output_ids`` as its translation, and
    return a TranslationAttention with the weights of every layer and head behind that translation."""
    if not text.strip():
        raise ValueError("nothing to translate: the sentence is empty")
    model = translator.model
    model.eval()
    source = translator.source_ids([text], warn=False)  # one sentence: no padding
    if output_ids is None:
        output_ids = beam_search(model, source, beam, length_penalty=length_penalty,
                                 no_repeat_ngram=no_repeat_ngram)[0]
    limit = model.max_len + 1  # decoder positions
    ids = list(output_ids)[:limit]
    inputs = ([START] + ids)[:limit]
    targets = (ids + [END])[:limit]
    logits, weights = transformer_attention(model, source, torch.tensor([inputs], device=translator.device))
    log_probs = torch.log_softmax(logits, dim=-1)
    log_probability = float(log_probs[torch.arange(len(targets)), torch.tensor(targets)].sum())
    return TranslationAttention(
        source_pieces=translator.de_vocab.pieces(source[0].tolist()),
        input_pieces=["<START>"] + translator.en_vocab.pieces(inputs[1:]),
        output_pieces=translator.en_vocab.pieces(ids) + (["<END>"] if len(ids) < limit else []),
        translation=translator.en_vocab.decode([ids])[0], weights=weights, log_probability=log_probability,
        source_cut=max(0, len(translator.de_vocab.encode([text])[0]) - model.max_len))


def check_source_length(translator, text, flag="--text"):
    """Raise a clear ValueError for an empty ``text`` or one longer than the model takes (its max_len tokens)."""
    if not text.strip():
        raise ValueError(f"{flag} is empty: give a German sentence, e.g. {flag} \"Ich habe heute keine Zeit.\"")
    count, limit = len(translator.de_vocab.encode([text])[0]), translator.model.max_len
    if count > limit:
        raise ValueError(f"{flag} has {count} tokens; this model takes at most {limit} (its max_len): shorten it or "
                         "split it into sentences")


# ---- page data -------------------------------------------------------------------------------------------------


def word_numbers(pieces):
    """The word each SentencePiece token belongs to (0, 1, ...): a new word starts at a piece beginning with '\u2581'
    and at special tokens such as <START> (each its own word)."""
    numbers, word, previous_special = [], -1, True
    for piece in pieces:
        special = piece.startswith("<") and piece.endswith(">") and len(piece) > 2
        if word < 0 or special or previous_special or piece.startswith(WORD_START):
            word += 1
        numbers.append(word)
        previous_special = special
    return numbers


def stored_weights(weights):
    """(heads, queries, keys) tensor -> nested lists of whole numbers, round(weight * SCALE)."""
    return torch.round(weights.double() * SCALE).long().tolist()


def _entry(label, caption, queries, keys, weights, query_notes=None, key_notes=None, merge=False):
    return {"label": label, "caption": caption, "queries": list(queries), "keys": list(keys),
            "query_notes": query_notes, "key_notes": key_notes,
            "query_words": word_numbers(queries) if merge else None, "key_words": word_numbers(keys) if merge else None,
            "weights": stored_weights(weights)}


def _view(view_id, name, about, query_side, key_side, entries, entry_label="Layer", normalised=True, causal=False,
          first_shown=None):
    """A view's JSON; first_shown: the entry shown first (default the last, e.g. the last layer)."""
    return {"id": view_id, "name": name, "about": about, "query_side": query_side, "key_side": key_side,
            "entry_label": entry_label, "normalised": normalised, "causal": causal,
            "first_shown": len(entries) - 1 if first_shown is None else first_shown, "entries": entries}


def model_facts(translator, checkpoint):
    """What the page says about the translator: its name, shape, and the scores or steps stored with it."""
    config, info = translator.model.config(), translator.info
    facts = [["Model", f"{os.path.basename(checkpoint)}: Transformer, {config['enc_layers']} encoder and "
                       f"{config['dec_layers']} decoder layers, {config['num_heads']} heads, width "
                       f"{config['embed_dim']}, at most {config['max_len']} tokens"]]
    if info.get("valid_bleu") is not None:
        facts.append(["Model's scores", f"validation BLEU {info['valid_bleu']}, chrF {info.get('valid_chrf')} "
                                        f"(step {info.get('step')})"])
    elif info.get("averaged"):
        steps = [step for step in info.get("steps") or [] if isinstance(step, int)]
        facts.append(["Model's training", f"average of {len(info['averaged'])} checkpoints" +
                      (f", steps {min(steps)} to {max(steps)}" if steps else "")])
    return facts


def translation_page_data(result, translator, checkpoint, decoding, reference=None, title=None):
    """The page's JSON object (see the module's docstring) for a TranslationAttention ``result``.

    decoding: the decoding's description, e.g. "beam 4, length penalty 1.2"; reference: the corpus's English, if any."""
    import sacrebleu
    facts = [["Sentence", "".join(result.source_pieces).replace(WORD_START, " ").strip()]]
    if result.source_cut:
        facts[0][1] += f" (the last {result.source_cut} tokens cut: the model takes at most " \
                       f"{translator.model.max_len})"
    if reference is not None:
        facts.append(["Reference", reference])
    facts.append(["Translation", result.translation])
    length = len(result.output_pieces)
    facts.append(["Decoding", f"{decoding}; the weights are those behind this translation (the chosen hypothesis, "
                              "run again with teacher forcing)"])
    score = (f"log-probability {result.log_probability:.2f} over {length} tokens "
             f"({result.log_probability / max(1, length):.2f} per token)")
    if reference is not None:
        bleu = sacrebleu.sentence_bleu(result.translation, [reference]).score
        chrf = sacrebleu.sentence_chrf(result.translation, [reference]).score
        score += f"; sentence BLEU {bleu:.1f}, chrF {chrf:.1f} against the reference"
    facts.append(["Scores", score])
    facts.extend(model_facts(translator, checkpoint))
    views = []
    kinds = (("encoder", "Encoder self-attention", "Each German token (left) gathers information from the German "
              "tokens (right).", "German (query)", "German (key)", result.source_pieces, result.source_pieces, False),
             ("decoder", "Decoder self-attention", "While producing each English token (left) the decoder looks at "
              "its own earlier inputs (right); later ones are masked (causal mask).", "English (producing)",
              "English (decoder input)", result.output_pieces, result.input_pieces, True),
             ("cross", "Cross-attention", "While producing each English token (left) the decoder looks at the "
              "German tokens (right).", "English (producing)", "German (key)", result.output_pieces,
              result.source_pieces, False))
    for view_id, name, about, query_side, key_side, queries, keys, causal in kinds:
        layers = result.weights[view_id]
        entries = [_entry(f"{layer + 1}", f"{name}, layer {layer + 1} of {len(layers)}", queries, keys,
                          layers[layer], merge=True) for layer in range(len(layers))]
        if entries:
            views.append(_view(view_id, name, about, query_side, key_side, entries, causal=causal))
    return {"title": title or f"Attention: {facts[0][1]}", "facts": facts, "scale": SCALE, "views": views}


def counting_page_data(weights, digits, predicted, counts, activation, checkpoint):
    """The page's JSON object for the counting model: one entry per sequence, one query per digit.

    weights: (sequences, vocab_size, sequence_length); digits: (sequences, sequence_length); predicted, counts:
    (sequences, vocab_size)."""
    correct = int((predicted == counts).sum())
    normalised = activation == "softmax"
    facts = [["Model", f"{os.path.basename(checkpoint)}: one learned query per digit, {activation} attention over "
                       f"the {digits.shape[1]} positions"],
             ["Counts right", f"{correct} of {counts.numel()} (digits x sequences)"],
             ["Weights", "softmax: each query's weights sum to 1" if normalised else
              "sigmoid: each weight is in [0, 1] on its own; a query's weights do not sum to 1"]]
    entries = []
    for number in range(weights.shape[0]):
        sequence = " ".join(str(digit) for digit in digits[number].tolist())
        queries = [f"digit {digit}" for digit in range(weights.shape[1])]
        notes = [f"count {int(count)}, model {int(guess)}" + ("" if count == guess else " (wrong)")
                 for count, guess in zip(counts[number], predicted[number])]
        keys = [str(digit) for digit in digits[number].tolist()]
        entries.append(_entry(f"{number + 1}", f"Sequence {number + 1}: {sequence}", queries, keys,
                              weights[number][None], query_notes=notes,
                              key_notes=[f"#{position + 1}" for position in range(len(keys))]))
    view = _view("counting", f"Counting attention ({activation})", "Each digit's query (left) attends over the "
                 "positions of the sequence (right); the attended values tell the classifier how many there are.",
                 "Digit counted (query)", "Position (key)", entries, entry_label="Sequence", normalised=normalised,
                 first_shown=0)
    return {"title": f"Counting attention ({activation})", "facts": facts, "scale": SCALE, "views": [view]}


# ---- the page ----------------------------------------------------------------------------------------------------


def _read_template(name):
    with open(os.path.join(PAGE_FOLDER, name), encoding="utf-8") as file:
        return file.read()


def render_page(data):
    """The HTML page (a string) for a page-data object: the template with its CSS, JavaScript and the data inlined."""
    page = _read_template("page.html")
    embedded = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
    parts = {"/*STYLE*/": _read_template("style.css"), "/*SCRIPT*/": _read_template("explorer.js"),
             "__TITLE__": html.escape(data["title"]), "__DATA__": embedded}
    # One pass over the template: text put in (a sentence, a title) is never searched for another marker.
    return re.sub("|".join(re.escape(marker) for marker in parts), lambda match: parts[match.group(0)], page)


def page_data(page):
    """The JSON object embedded in a page written by ``write_page`` (for tests and tools)."""
    start = page.index('id="attention-data">') + len('id="attention-data">')
    return json.loads(page[start:page.index("</script>", start)])


def write_page(data, path):
    """Write the page for ``data`` to ``path`` (folders created) through a temporary file, or in place where ``path``
    is not a regular file (/dev/stdout). Returns its size in bytes."""
    from lib.files import atomic_output
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    text = render_page(data).encode("utf-8")
    with atomic_output(path, "wb") as file:
        file.write(text)
    return len(text)


# ---- notebooks -------------------------------------------------------------------------------------------------


class ExplorerView:
    """The explorer page of a page-data object ``data`` shown inline by Jupyter (``_repr_html_``): the whole page in an
    isolated frame, ``<iframe sandbox="allow-scripts" srcdoc="...">``, so that its scripts and styles run apart from the
    notebook's. ``height``: the frame's height in CSS pixels."""

    def __init__(self, data, height=760):
        self.data = data
        self.height = height

    def page(self):
        """The page's HTML (a string), as ``write_page`` writes it."""
        return render_page(self.data)

    def _repr_html_(self):
        return (f'<iframe sandbox="allow-scripts" title="{html.escape(self.data["title"])}" '
                f'style="width: 100%; height: {int(self.height)}px; border: 1px solid #ccc" '
                f'srcdoc="{html.escape(self.page(), quote=True)}"></iframe>')

    def save(self, path):
        """Write the page to ``path``, to open in a browser. Returns its size in bytes."""
        return write_page(self.data, path)


def _decoding_description(beam, length_penalty, no_repeat_ngram):
    """'greedy' or 'beam 4, length penalty 1.2', with the n-gram blocking if any."""
    text = "greedy" if beam == 1 else f"beam {beam}, length penalty {length_penalty:g}"
    return text + (f", no repeated {no_repeat_ngram}-grams" if no_repeat_ngram else "")


def explore(translator, german, beam=None, length_penalty=None, no_repeat_ngram=0, reference=None,
            name="translator", height=760):
    """The explorer of ``translator``'s translation of the sentence ``german`` for a notebook: an ExplorerView.

    beam, length_penalty: the decoding (None: the translator's stored one); reference: an English reference to score
    the translation against; name: what the page calls the model (e.g. its checkpoint's file)."""
    if not german.strip():
        raise ValueError('the sentence is empty: give a German sentence, e.g. "Ich habe heute keine Zeit."')
    check_source_length(translator, german, "the sentence")
    decoding = dict(translator.decoding, **{key: value for key, value in
                                            (("beam", beam), ("length_penalty", length_penalty)) if value is not None})
    result = translation_attention(translator, german, beam=decoding["beam"],
                                   length_penalty=decoding["length_penalty"], no_repeat_ngram=no_repeat_ngram)
    description = _decoding_description(decoding["beam"], decoding["length_penalty"], no_repeat_ngram)
    return ExplorerView(translation_page_data(result, translator, name, description, reference), height)
