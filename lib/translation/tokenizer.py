"""Subword vocabularies (SentencePiece unigram), one per language or one joint for both, with the exercise's
special tokens.

Ids 0-3 are <PAD>, <START>, <END>, <UNK>. Text keeps its case and punctuation. A vocabulary is a serialized
SentencePiece model, so it can travel inside a checkpoint as a uint8 tensor.
"""
import io
import re
from itertools import zip_longest

import sentencepiece
import torch

from lib.checks import shown

PAD, START, END, UNK = 0, 1, 2, 3
SPECIAL_PIECES = ["<PAD>", "<START>", "<END>", "<UNK>"]  # the pieces of those ids (Vocabulary.train names them)
# SentencePiece's complaint about a vocabulary smaller than the text's characters: "... 5 vs 24. ..." (24 the least).
_WORD = re.compile(r"\S+")
_TOO_SMALL = re.compile(r"Vocabulary size is smaller than required_chars\. \d+ vs (\d+)")


class Vocabulary:
    """Encode text to ids and back with a trained SentencePiece model given as bytes."""

    def __init__(self, model_bytes):
        self.model_bytes = bytes(model_bytes)
        self.processor = sentencepiece.SentencePieceProcessor(model_proto=self.model_bytes)

    def __len__(self):
        return self.processor.get_piece_size()

    def longest_text(self, tokens):
        """The most characters (not counting runs of whitespace, which the tokenizer collapses) that ``tokens``
        pieces can cover, with a margin of two: twice the longest piece each."""
        if not hasattr(self, "_longest_piece"):
            self._longest_piece = max(len(piece) for piece in self.pieces(range(len(self))))
        return 2 * self._longest_piece * tokens

    def clip(self, text, tokens):
        """``text`` cut after what its first ``tokens`` ids can cover (:meth:`longest_text`): encoding the result
        gives the same first ``tokens`` ids, and a huge text costs no more than a long sentence to encode."""
        limit = self.longest_text(tokens)
        if len(text) <= limit:
            return text
        covered = 0
        for word in _WORD.finditer(text):  # runs of whitespace count as one character, as the tokenizer sees them
            if covered + word.end() - word.start() >= limit:
                return text[:word.start() + limit - covered]
            covered += word.end() - word.start() + 1
        return text

    def encode(self, texts):
        """List of strings -> list of id lists (no start or end tokens)."""
        return self.processor.encode(list(texts))

    def decode(self, ids):
        """List of id lists -> list of strings; special tokens are dropped."""
        return self.processor.decode([[i for i in seq if i > UNK] for seq in ids])

    def pieces(self, ids):
        """Id list -> the subword pieces, for plot labels."""
        return [self.processor.id_to_piece(i) for i in ids]

    def to_tensor(self):
        """The model as a uint8 tensor (for a weights_only checkpoint)."""
        return torch.frombuffer(bytearray(self.model_bytes), dtype=torch.uint8).clone()

    @classmethod
    def from_tensor(cls, tensor):
        """The vocabulary that ``to_tensor`` stored. Anything else (random or empty bytes, another model, not a
        uint8 tensor) raises a ValueError 'not a SentencePiece model (why)' instead of SentencePiece's own messages."""
        if not isinstance(tensor, torch.Tensor) or tensor.dtype != torch.uint8 or tensor.dim() != 1 or tensor.is_meta:
            kind = f"a {tensor.dtype} tensor of shape {tuple(tensor.shape)}" if isinstance(tensor, torch.Tensor) \
                else type(tensor).__name__
            raise ValueError(f"not a SentencePiece model ({kind}, not bytes)")
        if not tensor.numel():
            raise ValueError("not a SentencePiece model (no bytes)")
        try:
            vocabulary = cls(tensor.numpy().tobytes())
        except RuntimeError:
            raise ValueError(f"not a SentencePiece model ({tensor.numel()} bytes that SentencePiece cannot read)") \
                from None
        special = vocabulary.pieces(range(min(len(vocabulary), UNK + 1)))
        if special != SPECIAL_PIECES:
            raise ValueError(f"not a SentencePiece model of this library (its first pieces are {shown(special)}, "
                             f"not {', '.join(SPECIAL_PIECES)})")
        return vocabulary

    @classmethod
    def train(cls, texts, vocab_size, max_sentences=2_000_000):
        """Train a unigram SentencePiece model on ``texts`` (an iterable of strings) in memory, from the first
        ``max_sentences`` of them."""
        buffer = io.BytesIO()
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(texts), model_writer=buffer, vocab_size=vocab_size, model_type="unigram",
                character_coverage=1.0, pad_id=PAD, bos_id=START, eos_id=END, unk_id=UNK, pad_piece="<PAD>",
                bos_piece="<START>", eos_piece="<END>", unk_piece="<UNK>", num_threads=2,
                input_sentence_size=max_sentences, shuffle_input_sentence=False, minloglevel=2,
                hard_vocab_limit=False)
        except RuntimeError as error:
            smallest = _TOO_SMALL.search(str(error))
            if smallest is None:
                raise
            raise ValueError(f"a vocabulary of {vocab_size} pieces is too small for this corpus: its characters and "
                             f"the 4 special tokens need at least {smallest.group(1)}; give a size of "
                             f"{smallest.group(1)} or more") from None
        return cls(buffer.getvalue())

    @classmethod
    def train_joint(cls, german, english, vocab_size, max_sentences=2_000_000):
        """One vocabulary for both languages: a unigram model trained on the German and the English texts together
        (iterables of strings), taken in turns (German, English, German, ...) so that ``max_sentences`` never
        leaves one language out."""
        turns = (text for pair in zip_longest(german, english) for text in pair if text is not None)
        return cls.train(turns, vocab_size, max_sentences)
