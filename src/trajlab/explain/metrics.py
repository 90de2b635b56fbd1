"""F1 at a tolerance, for per-frame critical-state scores against ground-truth critical frames.

At a threshold tau an episode's predicted critical frames are {t : score_t >= tau}. Only episodes with
ground-truth critical frames (the successes) are evaluated; counts are summed over them (micro-average), and
F1 = 2PR / (P + R) (0 when both are 0). Two protocols:

  * honest: each ground-truth frame is an event. A predicted frame is a true positive if some ground-truth
    frame lies within +-T of it, else a false positive; a ground-truth frame is missed if no predicted frame
    lies within +-T of it. Precision = TP / (TP + FP), recall = (ground-truth frames hit) / (ground-truth
    frames). tau is the best of the sweep 0, 0.1, ..., 1.0 on validation episodes, then applied to the test.
  * paper: the counting of Liu et al.'s evaluation code, tau the best of the sweep on the test episodes
    themselves. Every frame is one count: a predicted frame is TP if a ground-truth frame lies within +-T, else
    FP; a frame below tau is FN only if it is itself a ground-truth frame. Recall is TP / (TP + FN), so a run of
    predicted frames around one ground-truth frame counts as many true positives, and the other ground-truth
    frames left unpredicted cost one FN each: recall credits density near any critical frame, not coverage.
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


def frame_counts(scores: np.ndarray, truth: np.ndarray, threshold: float, tolerance: int) -> tuple[int, int, int]:
    """(TP, FP, FN) of one episode under the paper's per-frame counting (module docstring)."""
    scores = np.asarray(scores)
    truth = np.asarray(truth, dtype=np.int64)
    predicted = scores >= threshold
    steps = np.arange(len(scores))
    near = np.zeros(len(scores), dtype=bool)
    if truth.size:
        near = (np.abs(steps[:, None] - truth[None, :]) <= tolerance).any(axis=1)
    is_truth = np.isin(steps, truth)
    return int((predicted & near).sum()), int((predicted & ~near).sum()), int((~predicted & is_truth).sum())


def f1_score(scores: Sequence[np.ndarray], truths: Sequence[np.ndarray], threshold: float, tolerance: int,
             counting: str = "events") -> float:
    """Micro-averaged F1 (in %) over episodes at one threshold and tolerance; `counting` "events" (honest) or
    "frames" (the paper's)."""
    if counting not in ("events", "frames"):
        raise ValueError(f"counting must be 'events' or 'frames', got {counting!r}")
    if counting == "frames":
        true_pos, false_pos, false_neg = np.sum([frame_counts(s, t, threshold, tolerance)
                                                 for s, t in zip(scores, truths)], axis=0).tolist()
        return _f1(true_pos, true_pos + false_pos, true_pos, true_pos + false_neg)
    total = np.zeros(4, dtype=np.int64)
    for score, truth in zip(scores, truths):
        total += counts(score, truth, threshold, tolerance)
    true_pos, false_pos, hit, relevant = (int(v) for v in total)
    return _f1(true_pos, true_pos + false_pos, hit, relevant)


def _f1(true_pos: int, predicted: int, hit: int, relevant: int) -> float:
    precision = true_pos / predicted if predicted else 0.0
    recall = hit / relevant if relevant else 0.0
    return 100.0 * 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def sweep(scores: Sequence[np.ndarray], truths: Sequence[np.ndarray], tolerance: int,
          counting: str = "events") -> dict[float, float]:
    """F1 (%) at every threshold of the sweep."""
    return {tau: f1_score(scores, truths, tau, tolerance, counting) for tau in THRESHOLDS}


def best_threshold(curve: dict[float, float]) -> float:
    """The threshold of the highest F1 (the lowest such threshold on ties)."""
    return max(curve, key=lambda tau: (curve[tau], -tau))


def evaluate_scores(test: tuple[Sequence[np.ndarray], Sequence[np.ndarray]],
                    val: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None) -> dict[str, dict]:
    """Both protocols at every tolerance: {"paper": {"T=1": {f1, threshold}, ...}, "honest": {...} or absent}."""
    result: dict[str, dict] = {"paper": {}, "honest": {}}
    for tolerance in TOLERANCES:
        paper_curve = sweep(*test, tolerance, counting="frames")
        tau = best_threshold(paper_curve)
        result["paper"][f"T={tolerance}"] = {"f1": paper_curve[tau], "threshold": tau}
        if val is not None and any(len(t) for t in val[1]):
            curve = sweep(*test, tolerance)
            val_tau = best_threshold(sweep(*val, tolerance))
            result["honest"][f"T={tolerance}"] = {"f1": curve[val_tau], "threshold": val_tau}
    if not result["honest"]:
        del result["honest"]
    return result


def random_scores(lengths: Sequence[int], seed: int) -> list[np.ndarray]:
    """The random baseline: i.i.d. uniform scores per frame."""
    rng = np.random.default_rng(seed)
    return [rng.random(int(n)) for n in lengths]
