"""EDGE-style fidelity (Guo et al., NeurIPS 2021): keep only the top-scored frames of each episode and measure how
much the return predictor's output moves, against keeping as many random frames.

For a fraction k, each episode keeps its ceil(k * T) highest-scored frames (the others get weight 0, as the
detector's mask m_t = 0 would give them); the predictor's probability of the class it gives the full video is compared
before and after. A faithful explanation keeps the prediction: a small probability drop, a high agreement.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from trajlab.data.frames import FrameStore
from trajlab.explain.dsi import DSIModel, batch_videos

FRACTIONS = (0.05, 0.10, 0.15)


def keep_top(scores: np.ndarray, fraction: float) -> np.ndarray:
    """0/1 mask of the ceil(fraction * T) highest scores (at least one frame; ties go to the earlier frame)."""
    count = max(1, int(np.ceil(fraction * len(scores))))
    keep = np.zeros(len(scores), dtype=np.float32)
    keep[np.argsort(-np.asarray(scores), kind="stable")[:count]] = 1.0
    return keep


@torch.no_grad()
def fidelity(dsi: DSIModel, store: FrameStore, rows: Sequence[int], scores: Sequence[np.ndarray], *,
             seed: int, fractions: Sequence[float] = FRACTIONS, device: str = "cpu") -> dict[str, dict[str, float]]:
    """{"k=5%": {"prob_drop": ..., "agreement": ..., "random_prob_drop": ..., "random_agreement": ...}, ...}."""
    rng = np.random.default_rng(seed)
    dsi.predictor.eval()
    result = {}
    for fraction in fractions:
        drops, agree, random_drops, random_agree = [], [], [], []
        for row, score in zip(rows, scores):
            video, lengths, _ = batch_videos(store, [row], device)
            full = torch.softmax(dsi.predictor(video, lengths), dim=1)[0]
            predicted = int(full.argmax())
            for keep, drop_list, agree_list in ((keep_top(score, fraction), drops, agree),
                                                (keep_top(rng.random(len(score)), fraction), random_drops,
                                                 random_agree)):
                mask = torch.from_numpy(keep).to(device)[None, :]
                kept = torch.softmax(dsi.predictor(video, lengths, mask), dim=1)[0]
                drop_list.append(float(full[predicted] - kept[predicted]))
                agree_list.append(float(int(kept.argmax()) == predicted))
        result[f"k={round(fraction * 100)}%"] = {"prob_drop": float(np.mean(drops)), "agreement": float(np.mean(agree)),
                                                  "random_prob_drop": float(np.mean(random_drops)),
                                                  "random_agreement": float(np.mean(random_agree))}
    return result
