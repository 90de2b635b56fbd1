"""Membership inference on a transition diffusion model: the loss attack PrivTranR reports, and the same loss
calibrated by a reference model that never saw the private data.

A transition the model was trained on tends to be denoised better: its EDM loss, averaged over many noise draws
to tame the variance, is lower. Two scores (`AttackConfig.score`):

- `loss`: minus the target's loss (the attack of PrivTranR and of Carlini et al. 2023's loss threshold). Its
  weakness: an easy transition has a low loss whether or not it was trained on, so the score ranks how typical
  a row is as much as whether it is a member.
- `calibrated` (the default, chosen by measurement: docs/benchmarks.md, "The membership attack's reference"):
  minus (target loss - reference loss), the reference being the public pre-trained model the target was
  fine-tuned from. The reference knows how hard each row is for a model of this kind without having seen it,
  so the difference isolates what fine-tuning on the row changed: the per-example calibration of Watson et al.
  2022 and of offline LiRA (Carlini et al. 2022), with one reference model instead of many shadow models.
  Both models see the same noise draws on a row (one generator, one draw per row, level and repeat), so the
  noise's own variance cancels in the difference instead of adding to it.

Either score is the loss averaged over several noise levels `sigmas` and `repeats` draws per level: which
level separates members best depends on the model (small levels probe near-copies, larger ones the shape the
model learned), and the EDM weighting puts every level's loss on one scale, so a plain mean is fair. The attack
is judged by its ROC over members (fine-tuning data) and non-members (the held-out private rows): the TPR at
10%, 1% and 0.1% FPR and the AUC, from scikit-learn's ROC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from trajlab.core.errors import TrajlabError
from trajlab.core.seeding import torch_generator
from trajlab.data.dataset import TransitionDataset
from trajlab.privacy.diffusion import per_sample_loss, transition_matrix
from trajlab.privacy.training import TransitionModel

FPR_LEVELS = (0.1, 0.01, 0.001)
SCORES = ("calibrated", "loss")


@dataclass(frozen=True)
class AttackConfig:
    """The membership attack's settings."""

    score: str = "calibrated"
    """calibrated: minus (target loss - reference loss), the reference being the public pre-trained model (needs
    one); loss: minus the target's loss alone (PrivTranR's attack)."""
    sigmas: tuple[float, ...] = (0.02, 0.05)
    """The fixed noise levels at which each candidate's loss is measured (the score averages them). Small
    levels: on an overfit model the members stand out at sigma 0.02-0.05 and hardly at all from 0.5 up."""
    repeats: int = 16
    """Noise draws per candidate and level."""
    use_ema: bool = False
    """Attack the EMA weights (what `sample` uses) rather than the raw fine-tuned weights. Off by default:
    the raw weights are what DP-SGD's guarantee is stated for, and the EMA, an average over the last steps,
    hides part of what they memorised (docs/benchmarks.md)."""


def check_attack_config(config: AttackConfig) -> None:
    """Reject an attack that cannot run, before anything is loaded or written."""
    if config.score not in SCORES:
        raise TrajlabError(f"unknown attack score {config.score!r}; known: {', '.join(SCORES)}")
    if not config.sigmas or any(not sigma > 0 for sigma in config.sigmas) or config.repeats < 1:
        raise TrajlabError("attack sigmas must be one or more positive noise levels and repeats at least 1")


def _weights(bundle: TransitionModel, config: AttackConfig) -> nn.Module:
    return (bundle.ema if config.use_ema else bundle.model).eval()


def check_reference(target: TransitionModel, reference: TransitionModel) -> None:
    """The reference must measure loss in the target's space: same dimensions and standardisation (true of the
    pre-trained model a run was fine-tuned from)."""
    same = target.dim == reference.dim and np.array_equal(target.standardiser.mean, reference.standardiser.mean) \
        and np.array_equal(target.standardiser.std, reference.standardiser.std)
    if not same or target.config.sigma_data != reference.config.sigma_data:
        raise TrajlabError("the reference model does not share the target's standardisation (use the public "
                           "pre-trained model the target was fine-tuned from)")


@torch.no_grad()
def mean_losses(models: Sequence[nn.Module], rows: torch.Tensor, sigmas: Sequence[float], repeats: int,
                sigma_data: float, seed: int, chunk: int = 4096) -> np.ndarray:
    """Each model's EDM loss per row ([models, rows]), averaged over `repeats` draws at every level of `sigmas`;
    every model sees the same noise on a row, and the draws depend on the seed and the row's position only."""
    generator = torch_generator(seed)
    total = torch.zeros(len(models), len(rows), dtype=torch.float64)
    for level in sigmas:
        for _ in range(repeats):
            for start in range(0, len(rows), chunk):
                x = rows[start:start + chunk]
                noise, sigma = torch.randn(x.shape, generator=generator), torch.full((len(x),), float(level))
                for index, model in enumerate(models):
                    total[index, start:start + len(x)] += per_sample_loss(model, x, sigma, noise, sigma_data).double()
    return (total / (len(sigmas) * repeats)).numpy()


def score_table(bundle: TransitionModel, dataset: TransitionDataset, config: AttackConfig, seed: int,
                reference: TransitionModel | None = None, chunk: int = 4096) -> dict[str, np.ndarray]:
    """Every score one pass over the rows gives: `loss`, and `calibrated` when a reference is given (the
    target's loss is the same in both, so a comparison of the two costs one pass, not two)."""
    check_attack_config(config)
    models = [_weights(bundle, config)]
    if reference is not None:
        check_reference(bundle, reference)
        models.append(_weights(reference, config))
    rows = torch.from_numpy(bundle.standardiser.forward(transition_matrix(dataset)))
    losses = mean_losses(models, rows, config.sigmas, config.repeats, bundle.config.sigma_data, seed, chunk)
    table = {"loss": -losses[0]}
    if reference is not None:
        table["calibrated"] = -(losses[0] - losses[1])
    return table


def loss_scores(bundle: TransitionModel, dataset: TransitionDataset, config: AttackConfig, seed: int,
                reference: TransitionModel | None = None, chunk: int = 4096) -> np.ndarray:
    """Membership score of each row (higher: more likely a member), as `config.score` defines it."""
    check_attack_config(config)
    if config.score == "calibrated" and reference is None:
        raise TrajlabError("the calibrated attack needs a reference model (the public pre-trained model)")
    return score_table(bundle, dataset, config, seed, reference if config.score == "calibrated" else None,
                       chunk)[config.score]


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
                      config: AttackConfig, seed: int = 0,
                      reference: TransitionModel | None = None) -> dict[str, Any]:
    """Run the attack on both groups; returns `attack_metrics` plus the attack's settings. Both groups' noise
    comes from the same seed, so neither is scored on luckier draws than the other."""
    check_attack_config(config)
    if len(members) == 0 or len(non_members) == 0:
        raise TrajlabError("membership inference needs at least one member and one non-member")
    member_scores = loss_scores(bundle, members, config, seed, reference)
    non_member_scores = loss_scores(bundle, non_members, config, seed, reference)
    return {**attack_metrics(member_scores, non_member_scores), "score": config.score,
            "sigmas": list(config.sigmas), "repeats": config.repeats, "use_ema": config.use_ema}


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
