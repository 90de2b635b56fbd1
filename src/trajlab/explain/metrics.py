"""F1 at a tolerance, for per-frame critical-state scores against ground-truth critical frames.

At a threshold tau an episode's predicted critical frames are {t : score_t >= tau}. With tolerance T:
  * a predicted frame is a true positive if some ground-truth critical frame lies within +-T of it, else a
    false positive;
  * a ground-truth frame is missed (a false negative) if no predicted frame lies within +-T of it.
Counts are summed over all evaluated episodes (micro-average): precision = TP / (TP + FP),
recall = (ground-truth frames hit) / (ground-truth frames), F1 = 2PR / (P + R) (0 when both are 0).
Only episodes with ground-truth critical frames (the successes) are evaluated.

Two ways to choose tau from the sweep 0, 0.1, ..., 1.0:
  * paper: the tau with the best F1 on the test episodes themselves (what the published numbers use);
  * honest: the tau with the best F1 on validation episodes, then applied to the test episodes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

THRESHOLDS = tuple(round(0.1 * i, 1) for i in range(11))
TOLERANCES = (1, 2, 3)


def counts(scores: np.ndarray, truth: np.ndarray, threshold: float, tolerance: int) -> tuple[int, int, int, int]:
    """(TP, FP, hit ground-truth frames, ground-truth frames) of one episode."""
    predicted = np.flatnonzero(np.asarray(scores) >= threshold)
    truth = np.asarray(truth, dtype=np.int64)
    if predicted.size == 0 or truth.size == 0:
        return 0, int(predicted.size), 0, int(truth.size)
    near = np.abs(predicted[:, None] - truth[None, :]) <= tolerance
    true_pos = int(near.any(axis=1).sum())
    return true_pos, int(predicted.size) - true_pos, int(near.any(axis=0).sum()), int(truth.size)


def f1_score(scores: Sequence[np.ndarray], truths: Sequence[np.ndarray], threshold: float, tolerance: int) -> float:
    """Micro-averaged F1 (in %) over episodes at one threshold and tolerance."""
    total = np.zeros(4, dtype=np.int64)
    for score, truth in zip(scores, truths):
        total += counts(score, truth, threshold, tolerance)
    true_pos, false_pos, hit, relevant = (int(v) for v in total)
    precision = true_pos / (true_pos + false_pos) if true_pos + false_pos else 0.0
    recall = hit / relevant if relevant else 0.0
    return 100.0 * 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def sweep(scores: Sequence[np.ndarray], truths: Sequence[np.ndarray], tolerance: int) -> dict[float, float]:
    """F1 (%) at every threshold of the sweep."""
    return {tau: f1_score(scores, truths, tau, tolerance) for tau in THRESHOLDS}


def best_threshold(curve: dict[float, float]) -> float:
    """The threshold of the highest F1 (the lowest such threshold on ties)."""
    return max(curve, key=lambda tau: (curve[tau], -tau))


def evaluate_scores(test: tuple[Sequence[np.ndarray], Sequence[np.ndarray]],
                    val: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None) -> dict[str, dict]:
    """Both protocols at every tolerance: {"paper": {"T=1": {f1, threshold}, ...}, "honest": {...} or absent}."""
    result: dict[str, dict] = {"paper": {}, "honest": {}}
    for tolerance in TOLERANCES:
        curve = sweep(*test, tolerance)
        tau = best_threshold(curve)
        result["paper"][f"T={tolerance}"] = {"f1": curve[tau], "threshold": tau}
        if val is not None and any(len(t) for t in val[1]):
            val_tau = best_threshold(sweep(*val, tolerance))
            result["honest"][f"T={tolerance}"] = {"f1": curve[val_tau], "threshold": val_tau}
    if not result["honest"]:
        del result["honest"]
    return result


def random_scores(lengths: Sequence[int], seed: int) -> list[np.ndarray]:
    """The random baseline: i.i.d. uniform scores per frame."""
    rng = np.random.default_rng(seed)
    return [rng.random(int(n)) for n in lengths]
