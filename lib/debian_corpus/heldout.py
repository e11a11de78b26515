"""Ding's held-out sentences (valid and test splits), kept out of the new text so that they stay held out.

Sides are compared with case, punctuation and spacing ignored: "Wie bitte?" equals "wie bitte".
"""
import re
import unicodedata

_NOT_WORD = re.compile(r"[\W_]+")


def comparable(text):
    """``text`` lower-cased, NFC, with punctuation and spacing removed: the key two sides are compared by."""
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFC", text).casefold()).strip()


def heldout_keys(pairs):
    """(German keys, English keys) of the pairs (e.g. Ding's valid and test splits), as sets of comparable()."""
    return {comparable(pair.german) for pair in pairs}, {comparable(pair.english) for pair in pairs}


def ding_heldout_keys(path=None):
    """The keys of Ding's valid and test sentences (the dictionary at ``path``, None: the installed one)."""
    from lib.corpus import read_corpus, split_corpus
    splits = split_corpus(read_corpus(path, "ding", sentences_only=True))
    return heldout_keys(splits["valid"] + splits["test"])


def is_heldout(german, english, keys):
    """Whether the German or the English side equals a held-out sentence (``keys`` from heldout_keys)."""
    german_keys, english_keys = keys
    return comparable(german) in german_keys or comparable(english) in english_keys
