"""Loss-based membership inference on a transition diffusion model (the attack PrivTranR reports).

A transition the model was trained on tends to be denoised better: its EDM loss at a fixed noise level,
averaged over many noise draws to tame the variance, is lower. The attack scores each candidate by minus that
loss and is judged by its ROC over members (fine-tuning data) and non-members (the held-out private rows):
the TPR at 10%, 1% and 0.1% FPR and the AUC, from scikit-learn's ROC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from trajlab.core.errors import TrajlabError
from trajlab.core.seeding import torch_generator
from trajlab.data.dataset import TransitionDataset
from trajlab.privacy.diffusion import per_sample_loss, transition_matrix
from trajlab.privacy.training import TransitionModel

FPR_LEVELS = (0.1, 0.01, 0.001)


@dataclass(frozen=True)
class AttackConfig:
    """The loss-based attack's settings."""

    sigma: float = 0.5
    """The fixed noise level at which each candidate's loss is measured."""
    repeats: int = 64
    """Noise draws averaged per candidate."""
    use_ema: bool = True
    """Attack the EMA weights (what `sample` releases) rather than the raw fine-tuned weights."""


@torch.no_grad()
def loss_scores(bundle: TransitionModel, dataset: TransitionDataset, config: AttackConfig, seed: int,
                chunk: int = 4096) -> np.ndarray:
    """Membership score of each row: minus its EDM loss at sigma, averaged over `repeats` noise draws."""
    if config.sigma <= 0 or config.repeats < 1:
        raise TrajlabError("attack sigma must be positive and repeats at least 1")
    model = (bundle.ema if config.use_ema else bundle.model).eval()
    rows = torch.from_numpy(bundle.standardiser.forward(transition_matrix(dataset)))
    generator, total = torch_generator(seed), torch.zeros(len(rows), dtype=torch.float64)
    for _ in range(config.repeats):
        for start in range(0, len(rows), chunk):
            x = rows[start:start + chunk]
            noise = torch.randn(x.shape, generator=generator)
            sigma = torch.full((len(x),), config.sigma)
            total[start:start + len(x)] += per_sample_loss(model, x, sigma, noise, bundle.config.sigma_data).double()
    return -(total / config.repeats).numpy()


def attack_metrics(member_scores: np.ndarray, non_member_scores: np.ndarray) -> dict[str, Any]:
    """AUC and the TPR at each FPR level (the highest TPR whose FPR does not exceed it)."""
    from sklearn.metrics import roc_auc_score, roc_curve

    if len(member_scores) == 0 or len(non_member_scores) == 0:
        raise TrajlabError("membership inference needs at least one member and one non-member")
    labels = np.concatenate([np.ones(len(member_scores)), np.zeros(len(non_member_scores))])
    scores = np.concatenate([member_scores, non_member_scores])
    fpr, tpr, _ = roc_curve(labels, scores)
    result: dict[str, Any] = {"auc": float(roc_auc_score(labels, scores))}
    for level in FPR_LEVELS:
        result[f"tpr_at_{level:g}_fpr"] = float(tpr[fpr <= level].max(initial=0.0))
    result["members"], result["non_members"] = len(member_scores), len(non_member_scores)
    # below 1/non-members an FPR level cannot be resolved: a reader must know when a TPR there is not informative
    result["smallest_resolvable_fpr"] = 1.0 / len(non_member_scores)
    return result


def membership_attack(bundle: TransitionModel, members: TransitionDataset, non_members: TransitionDataset,
                      config: AttackConfig, seed: int = 0) -> dict[str, Any]:
    """Run the attack on both groups; returns `attack_metrics` plus the attack's settings."""
    member_scores = loss_scores(bundle, members, config, seed)
    non_member_scores = loss_scores(bundle, non_members, config, seed + 1)
    return {**attack_metrics(member_scores, non_member_scores), "sigma": config.sigma,
            "repeats": config.repeats, "use_ema": config.use_ema}


def distance_to_closest_record(bundle: TransitionModel, synthetic: TransitionDataset, members: TransitionDataset,
                               non_members: TransitionDataset, *, max_rows: int = 10_000,
                               seed: int = 0) -> dict[str, Any]:
    """How close released rows come to training rows, against held-out rows of the same size.

    Distances are Euclidean in the model's (public) standardisation. Members and non-members are subsampled to
    one size, because a larger reference set lies closer by chance alone; a `closer_to_member_share` near 0.5
    says the samples are no nearer to the training data than to unseen data, near 1 that they copy it.
    """
    from sklearn.neighbors import NearestNeighbors

    size = min(len(members), len(non_members), max_rows)
    if size < 1 or len(synthetic) < 1:
        raise TrajlabError("the distance check needs synthetic rows, members and non-members")
    rng = np.random.default_rng(seed)
    released = _standard_rows(bundle, synthetic, min(len(synthetic), max_rows), rng)
    distances = []
    for reference in (members, non_members):
        rows = _standard_rows(bundle, reference, size, rng)
        distances.append(NearestNeighbors(n_neighbors=1).fit(rows).kneighbors(released)[0][:, 0])
    to_members, to_non_members = distances
    # a tie is no evidence either way, so it counts half
    closer = (to_members < to_non_members) + 0.5 * (to_members == to_non_members)
    return {"dcr_members_median": float(np.median(to_members)),
            "dcr_non_members_median": float(np.median(to_non_members)),
            "closer_to_member_share": float(closer.mean()), "reference_rows": size, "synthetic_rows": len(released)}


def _standard_rows(bundle: TransitionModel, dataset: TransitionDataset, count: int,
                   rng: np.random.Generator) -> np.ndarray:
    rows = bundle.standardiser.forward(transition_matrix(dataset))
    return rows[np.sort(rng.choice(len(rows), count, replace=False))] if count < len(rows) else rows
