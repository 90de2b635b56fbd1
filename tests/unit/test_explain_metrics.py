"""F1 at a tolerance: counts worked out by hand, the threshold sweep and both protocols."""

from __future__ import annotations

import numpy as np
import pytest

from trajlab.explain.metrics import (
    THRESHOLDS,
    best_threshold,
    counts,
    evaluate_scores,
    f1_score,
    frame_counts,
    random_scores,
)


def test_counts_by_hand():
    scores = np.array([0.9, 0.0, 0.0, 0.0, 0.8, 0.0, 0.0, 0.0, 0.0, 0.7])
    # predicted {0, 4, 9}; truth {2, 9}: with T=2, 0 and 4 are near 2 and 9 is on 9 -> 3 TP, 0 FP, both hit
    assert counts(scores, np.array([2, 9]), 0.5, 2) == (3, 0, 2, 2)
    # with T=1 only 9 is near a ground-truth frame -> 1 TP, 2 FP, one of two hit
    assert counts(scores, np.array([2, 9]), 0.5, 1) == (1, 2, 1, 2)
    # nothing predicted above 0.95: no TP, no FP, nothing hit
    assert counts(scores, np.array([2, 9]), 0.95, 1) == (0, 0, 0, 2)


def test_paper_counting_by_hand():
    scores = np.array([0.9, 0.8, 0.7, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    # predicted {0, 1, 2}, truth {1, 8}, T=1: all three lie within 1 of frame 1 -> 3 TP; frame 8 is below the
    # threshold and is a ground-truth frame -> 1 FN; the other unpredicted frames count nothing
    assert frame_counts(scores, np.array([1, 8]), 0.5, 1) == (3, 0, 1)
    # P = 1, R = 3 / 4: F1 = 6/7, where the event counting (one of two frames hit) gives 2/3
    assert f1_score([scores], [np.array([1, 8])], 0.5, 1, counting="frames") == pytest.approx(100 * 6 / 7)
    assert f1_score([scores], [np.array([1, 8])], 0.5, 1) == pytest.approx(100 * 2 / 3)
    with pytest.raises(ValueError, match="counting"):
        f1_score([scores], [np.array([1])], 0.5, 1, counting="pixels")


def test_f1_is_micro_averaged_over_episodes():
    scores = [np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0, 1.0])]
    truths = [np.array([0]), np.array([0])]
    # episode 1: TP 1; episode 2: FP 2, ground truth missed -> P = 1/3, R = 1/2, F1 = 0.4
    assert f1_score(scores, truths, 0.5, 1) == pytest.approx(40.0)
    assert f1_score(scores, truths, 0.5, 3) == pytest.approx(100.0)


def test_threshold_zero_predicts_every_frame():
    truth = [np.array([5])]
    # all 10 frames predicted; T=1 -> frames 4, 5, 6 are TP: P = 0.3, R = 1
    assert f1_score([np.zeros(10)], truth, 0.0, 1) == pytest.approx(100 * 2 * 0.3 / 1.3)


def test_paper_protocol_picks_on_test_honest_on_validation():
    test = ([np.array([0.0, 0.35, 0.0, 0.0, 0.0, 0.0, 0.0])], [np.array([1])])
    val = ([np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.75, 0.0])], [np.array([5])])
    result = evaluate_scores(test, val)
    paper, honest = result["paper"]["T=1"], result["honest"]["T=1"]
    assert paper["f1"] == pytest.approx(100.0) and paper["threshold"] == 0.1
    # every threshold 0.1..0.7 is perfect on validation; ties go to the lowest
    assert honest["threshold"] == 0.1 and honest["f1"] == pytest.approx(100.0)
    val_high = ([np.array([0.2, 0.2, 0.2, 0.2, 0.2, 0.75, 0.2])], [np.array([5])])
    honest = evaluate_scores(test, val_high)["honest"]["T=1"]
    assert honest["threshold"] == 0.3 and honest["f1"] == pytest.approx(100.0)
    val_too_high = ([np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.75, 0.5])], [np.array([5])])
    honest = evaluate_scores(test, val_too_high)["honest"]["T=1"]
    assert honest["threshold"] == 0.6 and honest["f1"] == 0.0  # chosen on validation, nothing kept on test


def test_best_threshold_breaks_ties_low_and_sweep_is_eleven_steps():
    assert len(THRESHOLDS) == 11 and THRESHOLDS[0] == 0.0 and THRESHOLDS[-1] == 1.0
    assert best_threshold({0.0: 10.0, 0.1: 50.0, 0.2: 50.0}) == 0.1


def test_random_scores_are_seeded_and_shaped():
    a, b = random_scores([3, 5], seed=1), random_scores([3, 5], seed=1)
    assert [len(s) for s in a] == [3, 5] and all(np.array_equal(x, y) for x, y in zip(a, b))
