"""A trained translator: a TransformerModel with its German and English vocabularies, saved as one checkpoint.

The checkpoint is a dict of tensors and plain values (loadable with ``weights_only=True``): the model's
configuration and weights, each vocabulary as a uint8 tensor, and a dict of facts about its training (and the
decoding chosen for it, when one was stored).
"""
import os
import warnings
from dataclasses import fields

import sacrebleu
import torch

from lib.checkpoint import fit_problem, load_checkpoint, save_atomic
from lib.checks import Allowed, shown, stored_problems
from lib.files import SHIPPED_DATA
from lib.training.config import TrainConfig
from lib.translation.decoding import BEAM_RANGE, LENGTH_PENALTY_RANGE, beam_search
from lib.translation.streaming import live_map, numbered_chunks, ordered_map
from lib.translation.tokenizer import PAD, START, Vocabulary
from lib.transformer import TransformerModel

CHECKPOINT_FORMAT = "attention-translator-1"
# What a checkpoint may store, checked before anything is built from it: the model's config takes the ranges of the
# training flags of the same names (TrainConfig), the stored decoding those of --beam and --length-penalty.
STORED_CONFIG = {setting.name: Allowed.from_metadata(setting.metadata) for setting in fields(TrainConfig)
                 if setting.name in TransformerModel.CONFIG_NAMES}
STORED_DECODING = {"beam": Allowed(int, *BEAM_RANGE), "length_penalty": Allowed(float, *LENGTH_PENALTY_RANGE)}
CHECKPOINT_KEYS = ("config", "model", "de_vocab", "en_vocab")
SHIPPED_CHECKPOINT = os.path.join(SHIPPED_DATA, "translator.pth")
TRANSLATOR_HINT = ("give a translator checkpoint (e.g. results/translation/best.pth, or the shipped "
                   "data/translator.pth), or train one with 'python run_translation.py --train'")
# The most hypotheses one batch decodes at once (sentences x beam width; 64 x 8 as the shipped decoding does): wider
# beams take fewer sentences per batch, so memory stays that of the default whatever --beam is.
MAX_BEAM_ROWS = 512


class Translator:
    """German-to-English translation with a TransformerModel and SentencePiece vocabularies."""

    def __init__(self, model, de_vocab, en_vocab, info=None):
        self.model = model
        self.de_vocab = de_vocab
        self.en_vocab = en_vocab
        self.info = dict(info or {})

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def decoding(self):
        """The decoding stored with this translator (chosen on the valid split, e.g. ``run_translation.py --export
        PATH --beam 4 --length-penalty 1.2``): {"beam": width, "length_penalty": alpha}; greedy if none is stored."""
        stored = self.info.get("decoding") or {}
        return {"beam": stored.get("beam", 1), "length_penalty": stored.get("length_penalty", 1.0)}

    def to_checkpoint(self, half=False):
        """The dict that ``save`` writes; ``half`` stores the weights as float16 (half the size).

        A tensor the model uses under several names (tied or shared embeddings) stays one tensor, stored once."""
        converted = {}  # id of a parameter or buffer -> its stored tensor

        def stored(value):
            if id(value) not in converted:
                converted[id(value)] = (value.half() if half and value.is_floating_point() else value).detach().cpu()
            return converted[id(value)]
        state = {name: stored(value) for name, value in self.model.state_dict(keep_vars=True).items()}
        return {"format": CHECKPOINT_FORMAT, "config": self.model.config(), "model": state,
                "de_vocab": self.de_vocab.to_tensor(), "en_vocab": self.en_vocab.to_tensor(), "info": self.info}

    def save(self, path, half=False):
        save_atomic(self.to_checkpoint(half), path)

    @classmethod
    def from_checkpoint(cls, checkpoint, device="cpu", source="checkpoint"):
        """The Translator that ``checkpoint`` (the dict ``to_checkpoint`` makes) holds, on ``device``. Everything it
        stores is checked before the model is built: its config and decoding against the flags' ranges, its
        vocabularies, and its weights' shapes against a model built on the meta device (no memory); anything wrong is
        a one-line RuntimeError naming ``source``."""
        if isinstance(checkpoint, dict) and "optimizer" in checkpoint and "step" in checkpoint:
            raise RuntimeError(f"{source} is a training state (a run's last.pth, for --train --resume), not a "
                               "translator: use the run's best.pth or one of its snapshots/step*.pth")
        if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise RuntimeError(f"{source} is not a translator checkpoint of this library (format "
                               f"{CHECKPOINT_FORMAT}); train one with 'python run_translation.py --train'.")
        damaged = f"{source} is a damaged translator checkpoint"
        missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
        if missing:
            raise RuntimeError(f"{damaged}: it has no {', '.join(missing)}; give another translator checkpoint or "
                               "train one with 'python run_translation.py --train'.")
        check_stored_translator(checkpoint, damaged)
        vocabularies = [stored_vocabulary(checkpoint, key, source) for key in ("de_vocab", "en_vocab")]
        config = checkpoint["config"]
        sizes = [len(vocabulary) for vocabulary in vocabularies]
        if sizes != [config.get("de_vocab_size"), config.get("en_vocab_size")]:
            raise RuntimeError(f"{damaged}: its vocabularies have {sizes[0]} and {sizes[1]} pieces, its config "
                               f"de_vocab_size={shown(config.get('de_vocab_size'))} and "
                               f"en_vocab_size={shown(config.get('en_vocab_size'))}; give another translator "
                               "checkpoint or train one with 'python run_translation.py --train'.")
        try:
            with torch.device("meta"):  # the model's shapes: no memory, no random draws
                problem = fit_problem(TransformerModel(**config), checkpoint["model"])
            if problem is None:
                model = TransformerModel(**config)
                model.load_state_dict({name: value.float() if value.is_floating_point() else value
                                       for name, value in checkpoint["model"].items()})
        except (TypeError, ValueError, RuntimeError) as error:
            problem = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if problem is not None:
            raise RuntimeError(f"{damaged}: its weights do not fit its configuration ({problem}).")
        model.to(device).eval()
        return cls(model, *vocabularies, checkpoint.get("info"))

    @classmethod
    def average(cls, paths, device="cpu"):
        """The translator whose weights are the mean of those of the checkpoints at ``paths`` (checkpoint averaging,
        usually the last few of one run): they must share configuration and vocabularies."""
        if not paths:
            raise ValueError("checkpoint averaging needs at least one checkpoint")
        translators = [cls.load(path) for path in paths]
        first = translators[0]
        for path, other in zip(paths[1:], translators[1:]):
            if (other.model.config() != first.model.config()
                    or not torch.equal(other.de_vocab.to_tensor(), first.de_vocab.to_tensor())
                    or not torch.equal(other.en_vocab.to_tensor(), first.en_vocab.to_tensor())):
                raise ValueError(f"{path} has another configuration or vocabulary than {paths[0]}: only checkpoints "
                                 "of one model (e.g. the snapshots of one run) can be averaged")
        states = [translator.model.state_dict() for translator in translators]
        first.model.load_state_dict({name: torch.stack([state[name] for state in states]).mean(0)
                                     if value.is_floating_point() else value for name, value in states[0].items()})
        first.info = {"averaged": list(paths), "steps": [translator.info.get("step") for translator in translators]}
        first.model.to(device)
        return first

    @classmethod
    def load(cls, path=SHIPPED_CHECKPOINT, device="cpu"):
        """Load a translator checkpoint (clear errors for a missing or corrupt file). The default is the shipped
        translator, data/translator.pth of the repository (found from the package, not the working folder)."""
        if os.path.abspath(path) == SHIPPED_CHECKPOINT:
            hint = ("The pretrained translator ships in the repository as data/translator.pth: check out the "
                    "repository again, or train one with 'python run_translation.py --train'.")
        else:
            hint = TRANSLATOR_HINT[0].upper() + TRANSLATOR_HINT[1:] + "."
        return cls.from_checkpoint(load_checkpoint(path, hint, what="translator checkpoint"), device, path)

    def source_ids(self, texts, warn=True, numbers=None):
        """Encode German texts to a padded id tensor (batch, src_len); lines longer than max_len are cut, with a
        warning naming them by ``numbers`` (default 1, 2, ...). A text is cut before it is encoded after what max_len
        tokens can cover (Vocabulary.clip), so a huge line costs no more than a long sentence."""
        limit = self.model.max_len
        clipped = [self.de_vocab.clip(text, limit) for text in texts]
        encoded = self.de_vocab.encode(clipped)
        for number, ids in enumerate(encoded):
            if len(ids) > limit:
                if warn:
                    name = numbers[number] if numbers is not None else number + 1
                    count = f"more than {len(ids)}" if clipped[number] is not texts[number] else len(ids)
                    warnings.warn(f"input line {name} has {count} tokens; cut to the model's max_len {limit}",
                                  stacklevel=3)
                encoded[number] = ids[:limit]
        length = max(1, max(len(ids) for ids in encoded))
        source = torch.full((len(encoded), length), PAD, dtype=torch.long)
        for row, ids in enumerate(encoded):
            source[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        return source.to(self.device)

    def translate(self, texts, beam=1, batch_size=64, warn=True, no_repeat_ngram=0, first_line=1, workers=1,
                  length_penalty=1.0):
        """Translate a list of German strings; an empty string gives an empty string. Order is kept.

        beam: beam width (1: greedy). no_repeat_ngram: n > 0 never repeats n subword tokens in one output.
        length_penalty: beam search ranks finished hypotheses by log-probability / ((5 + length) / 6) ** this.
        Sentences are decoded in batches of ``batch_size`` (fewer where ``batch_size * beam`` would pass
        MAX_BEAM_ROWS), sorted by length; ``workers`` > 1 decodes that many
        batches at once on threads (meant for ``torch.set_num_threads(1)``: unlike torch's threads within one
        operation, they never wait for each other). first_line: the number of texts[0] in warnings about
        over-long lines.
        """
        if batch_size < 1 or beam < 1 or workers < 1:
            raise ValueError(f"batch_size, beam and workers must be at least 1, got {batch_size}, {beam} and "
                             f"{workers}")
        texts = list(texts)
        results = [""] * len(texts)
        batch_size = min(batch_size, max(1, MAX_BEAM_ROWS // beam))
        order = sorted((i for i, text in enumerate(texts) if text.strip()), key=lambda i: len(texts[i]))
        batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]

        def decode(batch):
            source = self.source_ids([texts[i] for i in batch], warn=warn, numbers=[i + first_line for i in batch])
            return self.en_vocab.decode(beam_search(self.model, source, beam, length_penalty=length_penalty,
                                                    no_repeat_ngram=no_repeat_ngram))
        self.model.eval()
        for batch, translations in zip(batches, ordered_map(decode, batches, workers)):
            for i, text in zip(batch, translations):
                results[i] = text
        return results

    def translate_stream(self, lines, beam=1, batch_size=64, warn=True, no_repeat_ngram=0, workers=1,
                         length_penalty=1.0, live=False):
        """Translate an iterable of German lines (e.g. an open file) as it is read: yields, for each consecutive
        group of up to ``batch_size`` lines, the list of their translations, in input order, as soon as that group
        is decoded (up to ``workers`` groups are decoded at once, see ``translate``). Trailing newlines are dropped;
        an empty line gives an empty translation. When reading fails (e.g. a line that is not UTF-8), the lines read
        before it are translated and yielded first. ``live``: the lines arrive over time (a pipe, a terminal), so a
        group is whatever has arrived and no translation waits for a later line; ``lines`` may then be a function
        that opens them (see lib.translation.streaming.live_map)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")

        def decode(numbered_chunk):
            first_line, chunk = numbered_chunk
            return self.translate(chunk, beam, batch_size, warn, no_repeat_ngram, first_line,
                                  length_penalty=length_penalty)
        if live:
            yield from live_map(decode, lines, batch_size, workers)
        else:
            yield from ordered_map(decode, numbered_chunks(lines, batch_size), workers)

    @torch.no_grad()
    def attention(self, text, layer=-1, no_repeat_ngram=0, beam=1, output_ids=None, length_penalty=1.0):
        """Translation of one sentence with the cross-attention of decoder ``layer`` (0-based; negative counts from
        the end) over it.

        The translation is beam search's (greedy with ``beam`` 1), or ``output_ids`` when given; the decoder is then
        run over that translation (teacher forcing), so the weights are those behind the translation returned.
        Returns (source pieces, output pieces (END included when produced), translation,
        weights (num_heads, len(output pieces), len(source pieces))).
        """
        if not text.strip():
            raise ValueError("nothing to translate: the sentence is empty")
        layers = self.model.dec_layers
        if not -layers <= layer < layers:
            raise ValueError(f"decoder layer {layer} does not exist: this model has {layers} decoder "
                             f"layer{'s' if layers != 1 else ''} (0 to {layers - 1}, or negative from the end)")
        self.model.eval()
        source = self.source_ids([text])
        if output_ids is None:
            output_ids = beam_search(self.model, source, beam, length_penalty=length_penalty,
                                     no_repeat_ngram=no_repeat_ngram)[0]
        limit = self.model.max_len + 1  # decoder positions
        ids = list(output_ids)[:limit]
        padding = source == PAD
        memory = self.model.encode(source, padding)
        decoder_input = torch.tensor([([START] + ids)[:limit]], dtype=torch.long, device=self.device)
        _, attentions = self.model.decode(decoder_input, memory, padding)
        weights = attentions[layer][:, 0]  # (heads, output positions, source length)
        output_pieces = self.en_vocab.pieces(ids) + (["<END>"] if len(ids) < limit else [])
        source_pieces = self.de_vocab.pieces(source[0].tolist())
        return source_pieces, output_pieces, self.en_vocab.decode([ids])[0], weights.cpu()

    def evaluate(self, pairs, beam=1, batch_size=64, no_repeat_ngram=0, workers=1, length_penalty=1.0):
        """BLEU and chrF (sacrebleu, cased, on detokenised text) of the translations of ``pairs``' German sides
        against their English sides. Returns (bleu, chrf, hypotheses)."""
        if not pairs:
            raise ValueError("nothing to evaluate: no sentence pairs were given")
        hypotheses = self.translate([pair.german for pair in pairs], beam=beam, batch_size=batch_size, warn=False,
                                    no_repeat_ngram=no_repeat_ngram, workers=workers, length_penalty=length_penalty)
        references = [[pair.english for pair in pairs]]
        bleu = sacrebleu.corpus_bleu(hypotheses, references).score
        chrf = sacrebleu.corpus_chrf(hypotheses, references).score
        return bleu, chrf, hypotheses


def check_stored_translator(checkpoint, damaged):
    """Raise a one-line RuntimeError starting with ``damaged`` ('<path> is a damaged translator checkpoint') unless
    the config and the decoding that ``checkpoint`` stores are within the ranges of the flags of the same names
    (STORED_CONFIG, STORED_DECODING): checked before the model is built, so that no stored value asks for more memory
    or time than a flag could."""
    info = checkpoint.get("info")
    decoding = info.get("decoding") if isinstance(info, dict) else None
    config_problems = stored_problems(checkpoint["config"], STORED_CONFIG, others=False)
    problems = [f"its stored config {'; '.join(config_problems)}"] if config_problems else []
    if info is not None and not isinstance(info, dict):
        problems.append(f"its stored info is {shown(info)}, not a table")
    if problems:
        raise RuntimeError(f"{damaged}: {'; '.join(problems)}; it cannot be used: give another translator "
                           "checkpoint or train one with 'python run_translation.py --train'.")
    problems = stored_problems(decoding or {}, STORED_DECODING)
    if problems:
        raise RuntimeError(f"{damaged}: its stored decoding {'; '.join(problems)}; export it again with --beam and "
                           "--length-penalty from the checkpoint it was exported from (e.g. its run's best.pth).")


def stored_vocabulary(checkpoint, key, source):
    """The Vocabulary stored under ``key`` ("de_vocab" or "en_vocab"), or a one-line RuntimeError saying that the
    checkpoint at ``source`` is not a translator checkpoint."""
    try:
        return Vocabulary.from_tensor(checkpoint[key])
    except ValueError as error:
        raise RuntimeError(f"{source} is not a translator checkpoint: its vocabulary ({key}) is {error}; give a "
                           "translator checkpoint written by 'python run_translation.py' (--train or --export).") \
            from None
