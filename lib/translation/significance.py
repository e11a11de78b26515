"""Is one translator better than another? Paired bootstrap resampling (Koehn 2004, "Statistical Significance Tests
for Machine Translation Evaluation").

Both systems translate the same test sentences. A resample draws as many sentences as the test set holds, with
replacement, and scores both systems on it; this is repeated ``samples`` times. The spread of the differences is how
much the measured difference owes to which sentences happened to be in the test set. Corpus BLEU and chrF are not
means of sentence scores, so each resample sums sacrebleu's per-sentence statistics (n-gram matches and counts,
lengths) and computes the corpus score from the sums, exactly as sacrebleu scores the resampled corpus.
"""
from dataclasses import dataclass

import numpy as np
from sacrebleu.metrics import BLEU, CHRF


def _metrics():
    """The metrics compared, named as printed: sacrebleu's defaults, as ``Translator.evaluate`` uses them."""
    return {"BLEU": BLEU(), "chrF": CHRF()}


@dataclass
class PairedComparison:
    """One metric's paired bootstrap. ``baseline`` and ``candidate`` are the scores on the whole test set,
    ``difference`` = candidate - baseline; ``low`` / ``high`` bound the central ``confidence`` interval of the
    resampled differences; ``p_value`` is the fraction of resamples in which the candidate does not score higher;
    ``resampled`` holds the (samples,) resampled differences."""
    metric: str
    baseline: float
    candidate: float
    difference: float
    low: float
    high: float
    p_value: float
    confidence: float
    resampled: np.ndarray

    def describe(self):
        """e.g. 'BLEU +0.60 (95% interval -0.13 to +1.37, p = 0.063)'."""
        return (f"{self.metric} {self.difference:+.2f} ({self.confidence:.0%} interval {self.low:+.2f} to "
                f"{self.high:+.2f}, p = {self.p_value:.3f})")


def bootstrap_indices(size, samples, seed=0):
    """(samples, size) sentence numbers drawn with replacement, seeded: the resamples of a test set of ``size``."""
    return np.random.default_rng(seed).integers(0, size, size=(samples, size))


def _sentence_statistics(metric, hypotheses, references):
    """(sentences, statistics) array of ``metric``'s sufficient statistics per sentence; their column sums give the
    corpus score (sacrebleu's own route for its significance tests)."""
    return np.array(metric._extract_corpus_statistics(hypotheses, [references]), dtype=np.int64)


def _score(metric, statistics):
    return metric._compute_score_from_stats(statistics.tolist()).score


def paired_bootstrap(references, baseline, candidate, samples=1000, seed=0, confidence=0.95):
    """Paired bootstrap of corpus BLEU and chrF. ``references``, ``baseline`` and ``candidate`` are lists of one
    string per test sentence (one reference each). Returns {metric name: PairedComparison}."""
    if not len(references) == len(baseline) == len(candidate):
        raise ValueError(f"paired bootstrap: {len(references)} references, {len(baseline)} baseline and "
                         f"{len(candidate)} candidate translations; each system needs one translation per reference")
    if not references:
        raise ValueError("paired bootstrap: no sentences to compare")
    if samples < 1 or not 0 < confidence < 1:
        raise ValueError(f"paired bootstrap: samples must be at least 1 (got {samples}) and confidence between 0 and "
                         f"1 (got {confidence})")
    indices = bootstrap_indices(len(references), samples, seed)
    tail = (1 - confidence) / 2
    comparisons = {}
    for name, metric in _metrics().items():
        statistics = [_sentence_statistics(metric, hypotheses, references) for hypotheses in (baseline, candidate)]
        whole = [_score(metric, system.sum(axis=0)) for system in statistics]
        resampled_sums = [system[indices].sum(axis=1) for system in statistics]  # (samples, statistics) each
        differences = np.array([_score(metric, candidate_sums) - _score(metric, baseline_sums)
                                for baseline_sums, candidate_sums in zip(*resampled_sums)])
        low, high = np.quantile(differences, [tail, 1 - tail])
        comparisons[name] = PairedComparison(name, whole[0], whole[1], whole[1] - whole[0], float(low), float(high),
                                             float(np.mean(differences <= 0)), confidence, differences)
    return comparisons
