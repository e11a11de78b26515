"""Tests of lib/translation/significance.py: the paired bootstrap's resampled scores are sacrebleu's corpus scores of
the resampled test sets, and its intervals and p-values behave as they must at the extremes."""
import numpy as np
import pytest
import sacrebleu

from lib.translation.significance import bootstrap_indices, paired_bootstrap

REFERENCES = ["The cat sits on the mat.", "I like to drink coffee in the morning.", "Where is the railway station?",
              "We are going to Berlin by train tomorrow.", "The children are playing in the garden.",
              "He has lost his keys.", "The weather is nice today.", "Can you help me, please?"]
BASELINE = ["The cat is on the mat.", "I like coffee.", "Where is the station?", "We go tomorrow.",
            "The children plays in the garden.", "He lost his key.", "The weather is in the weather today.",
            "Can you help me?"]
CANDIDATE = ["The cat sits on the mat.", "I like to drink coffee in the morning.", "Where is the station?",
             "We are going to Berlin tomorrow.", "The children are playing in the garden.", "He lost his keys.",
             "The weather is nice today.", "Can you help me?"]


def resample(texts, rows):
    return [texts[row] for row in rows]


def test_resampled_differences_are_sacrebleus_scores_of_the_resampled_corpora():
    result = paired_bootstrap(REFERENCES, BASELINE, CANDIDATE, samples=20, seed=3)
    indices = bootstrap_indices(len(REFERENCES), 20, seed=3)
    for score, name in ((sacrebleu.corpus_bleu, "BLEU"), (sacrebleu.corpus_chrf, "chrF")):
        expected = [score(resample(CANDIDATE, rows), [resample(REFERENCES, rows)]).score
                    - score(resample(BASELINE, rows), [resample(REFERENCES, rows)]).score for rows in indices]
        np.testing.assert_allclose(result[name].resampled, expected, atol=1e-9)
        assert result[name].baseline == pytest.approx(score(BASELINE, [REFERENCES]).score)
        assert result[name].candidate == pytest.approx(score(CANDIDATE, [REFERENCES]).score)
        assert result[name].difference == pytest.approx(result[name].candidate - result[name].baseline)
        assert len(set(np.round(expected, 6))) > 5  # the resamples differ from one another


def test_resamples_draw_with_replacement_and_are_seeded():
    indices = bootstrap_indices(50, 400, seed=1)
    assert indices.shape == (400, 50) and indices.min() == 0 and indices.max() == 49
    assert np.mean([len(set(rows)) for rows in indices]) == pytest.approx(50 * (1 - (49 / 50) ** 50), rel=0.02)
    assert (indices == bootstrap_indices(50, 400, seed=1)).all() and (indices != bootstrap_indices(50, 400)).any()


def test_a_system_against_itself_differs_by_nothing():
    result = paired_bootstrap(REFERENCES, BASELINE, BASELINE, samples=50)
    for comparison in result.values():
        assert comparison.difference == comparison.low == comparison.high == 0
        assert comparison.p_value == 1  # never higher


def test_a_perfect_candidate_is_better_in_every_resample_and_the_interval_holds_the_quantiles():
    result = paired_bootstrap(REFERENCES, BASELINE, REFERENCES, samples=200, confidence=0.9)
    for comparison in result.values():
        assert comparison.candidate == pytest.approx(100)
        assert comparison.p_value == 0 and 0 < comparison.low <= comparison.difference <= comparison.high
        below = np.mean(comparison.resampled < comparison.low)
        above = np.mean(comparison.resampled > comparison.high)
        assert below <= 0.05 and above <= 0.05 and below + above >= 0.05  # 5% in each tail, up to ties
    assert result["BLEU"].describe().startswith(f"BLEU +{result['BLEU'].difference:.2f} (90% interval +")
    swapped = paired_bootstrap(REFERENCES, REFERENCES, BASELINE, samples=200, confidence=0.9)["BLEU"]
    np.testing.assert_allclose(swapped.resampled, -result["BLEU"].resampled)
    assert swapped.p_value == 1


@pytest.mark.parametrize("arguments, message", [
    ((REFERENCES, BASELINE[:-1], CANDIDATE), "8 references, 7 baseline and 8 candidate"),
    (([], [], []), "no sentences"),
])
def test_mismatched_or_empty_inputs_are_refused_with_what_is_wrong(arguments, message):
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(*arguments)


@pytest.mark.parametrize("options", [{"samples": 0}, {"confidence": 1.0}])
def test_impossible_settings_are_refused(options):
    with pytest.raises(ValueError, match="samples must be at least 1"):
        paired_bootstrap(REFERENCES, BASELINE, CANDIDATE, **options)
