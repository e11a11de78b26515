"""A trained translator: a TransformerModel with its German and English vocabularies, saved as one checkpoint.

The checkpoint is a dict of tensors and plain values (loadable with ``weights_only=True``): the model's
configuration and weights, each vocabulary as a uint8 tensor, and a dict of facts about its training.
"""
import warnings

import sacrebleu
import torch

from lib.checkpoint import load_checkpoint, save_atomic
from lib.decoding import beam_search, greedy_decode
from lib.tokenizer import PAD, Vocabulary
from lib.transformer import TransformerModel

CHECKPOINT_FORMAT = "attention-translator-1"
SHIPPED_CHECKPOINT = "data/translator.pth"


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

    def to_checkpoint(self, half=False):
        """The dict that ``save`` writes; ``half`` stores the weights as float16 (half the size)."""
        state = {name: (value.half() if half and value.is_floating_point() else value).detach().cpu()
                 for name, value in self.model.state_dict().items()}
        return {"format": CHECKPOINT_FORMAT, "config": self.model.config(), "model": state,
                "de_vocab": self.de_vocab.to_tensor(), "en_vocab": self.en_vocab.to_tensor(), "info": self.info}

    def save(self, path, half=False):
        save_atomic(self.to_checkpoint(half), path)

    @classmethod
    def from_checkpoint(cls, checkpoint, device="cpu", source="checkpoint"):
        if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise RuntimeError(f"{source} is not a translator checkpoint of this library (format "
                               f"{CHECKPOINT_FORMAT}); train one with 'python run_translation.py --train'.")
        model = TransformerModel(**checkpoint["config"])
        model.load_state_dict({name: value.float() if value.is_floating_point() else value
                               for name, value in checkpoint["model"].items()})
        model.to(device).eval()
        return cls(model, Vocabulary.from_tensor(checkpoint["de_vocab"]),
                   Vocabulary.from_tensor(checkpoint["en_vocab"]), checkpoint.get("info"))

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
        """Load a translator checkpoint (clear errors for a missing or corrupt file)."""
        hint = ("The pretrained translator ships in data/translator.pth: check out the repository again, or train "
                "one with 'python run_translation.py --train'.")
        return cls.from_checkpoint(load_checkpoint(path, hint), device, path)

    def source_ids(self, texts, warn=True, numbers=None):
        """Encode German texts to a padded id tensor (batch, src_len); lines longer than max_len are cut, with a
        warning naming them by ``numbers`` (default 1, 2, ...)."""
        encoded = self.de_vocab.encode(texts)
        limit = self.model.max_len
        for number, ids in enumerate(encoded):
            if len(ids) > limit:
                if warn:
                    name = numbers[number] if numbers is not None else number + 1
                    warnings.warn(f"input line {name} has {len(ids)} tokens; cut to the model's max_len {limit}",
                                  stacklevel=3)
                encoded[number] = ids[:limit]
        length = max(1, max(len(ids) for ids in encoded))
        source = torch.full((len(encoded), length), PAD, dtype=torch.long)
        for row, ids in enumerate(encoded):
            source[row, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        return source.to(self.device)

    def translate(self, texts, beam=1, batch_size=64, warn=True, no_repeat_ngram=0):
        """Translate a list of German strings; an empty string gives an empty string. Order is kept.

        beam: beam width (1: greedy). no_repeat_ngram: n > 0 never repeats n subword tokens in one output.
        """
        texts = list(texts)
        results = [""] * len(texts)
        order = sorted((i for i, text in enumerate(texts) if text.strip()), key=lambda i: len(texts[i]))
        self.model.eval()
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            source = self.source_ids([texts[i] for i in chunk], warn=warn, numbers=[i + 1 for i in chunk])
            ids = beam_search(self.model, source, beam, no_repeat_ngram=no_repeat_ngram)
            for i, text in zip(chunk, self.en_vocab.decode(ids)):
                results[i] = text
        return results

    def attention(self, text, layer=-1, no_repeat_ngram=0):
        """Greedy translation of one sentence with its cross-attention in decoder ``layer``.

        Returns (source pieces, output pieces (END included when produced), translation,
        weights (num_heads, len(output pieces), len(source pieces))).
        """
        source = self.source_ids([text])
        self.model.eval()
        (ids,), (weights,) = greedy_decode(self.model, source, return_attention=True, layer=layer,
                                           no_repeat_ngram=no_repeat_ngram)
        output_pieces = self.en_vocab.pieces(ids) + (["<END>"] if weights.shape[1] > len(ids) else [])
        source_pieces = self.de_vocab.pieces(source[0].tolist())
        return source_pieces, output_pieces, self.en_vocab.decode([ids])[0], weights.cpu()

    def evaluate(self, pairs, beam=1, batch_size=64, no_repeat_ngram=0):
        """BLEU and chrF (sacrebleu, cased, on detokenised text) of the translations of ``pairs``' German sides
        against their English sides. Returns (bleu, chrf, hypotheses)."""
        hypotheses = self.translate([pair.german for pair in pairs], beam=beam, batch_size=batch_size, warn=False,
                                    no_repeat_ngram=no_repeat_ngram)
        references = [[pair.english for pair in pairs]]
        bleu = sacrebleu.corpus_bleu(hypotheses, references).score
        chrf = sacrebleu.corpus_chrf(hypotheses, references).score
        return bleu, chrf, hypotheses
