"""Aligned paragraphs split into aligned sentences, where both sides split into the same number (pysbd).

A paragraph pair whose sides split differently stays one pair: its sentences cannot be matched by position.
"""
import re

from lib.debian_corpus.cleaning import PLAUSIBLE_RATIO, length_ratio_ok

PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
MAYBE_SEVERAL = re.compile(r"[.!?:;…]['\")\]]*\s+\S")  # a sentence end followed by more text
_segmenters = {}


def _segmenter(language):
    """A pysbd segmenter for 'de' or 'en', made once per process."""
    if language not in _segmenters:
        import pysbd
        _segmenters[language] = pysbd.Segmenter(language=language, clean=False)
    return _segmenters[language]


def split_sentences(text, language):
    """The sentences of ``text`` ('de' or 'en'), stripped; text without an inner sentence end is one sentence."""
    if not MAYBE_SEVERAL.search(text):
        return [text]
    return [sentence.strip() for sentence in _segmenter(language).segment(text) if sentence.strip()]


def aligned_paragraphs(german, english):
    """Pairs of paragraphs (split at blank lines) when both sides have as many, else the whole texts as one pair."""
    german_paragraphs, english_paragraphs = PARAGRAPH_BREAK.split(german), PARAGRAPH_BREAK.split(english)
    if len(german_paragraphs) == len(english_paragraphs):
        return list(zip(german_paragraphs, english_paragraphs))
    return [(german, english)]


def aligned_sentences(german, english):
    """Pairs of sentences of one cleaned paragraph pair when both sides split into as many and every pair's lengths
    are within PLAUSIBLE_RATIO (else the splits differ in meaning), else the pair itself."""
    german_sentences, english_sentences = split_sentences(german, "de"), split_sentences(english, "en")
    pairs = list(zip(german_sentences, english_sentences))
    if len(german_sentences) == len(english_sentences) and all(
            length_ratio_ok(*pair, limit=PLAUSIBLE_RATIO) for pair in pairs):
        return pairs
    return [(german, english)]
