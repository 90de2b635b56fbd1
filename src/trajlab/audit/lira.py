"""A likelihood-ratio membership test per trajectory, in the spirit of LiRA (Carlini et al., "Membership Inference
Attacks From First Principles", IEEE S&P 2022), beside the paper's TrajAuditor.

TrajAuditor's shadows are fine-tuned copies of the original agent, so its Grubbs test mostly measures how far an
agent's training history is from theirs. Here the shadows are trained FROM SCRATCH, with the reference agent's
algorithm, config and update count (`prepare_training` + `train_steps`, as `trajlab train` trains), each on a
random half of the trajectories and with its own seed; each trajectory is IN for half of them and OUT for the
rest. For every trajectory:

1. a statistic s(agent, trajectory) is measured (higher = the agent fits it better; `STATISTICS`);
2. Gaussians are fitted to the shadows' statistics where the trajectory was IN and where it was OUT (per
   trajectory, or with one pooled variance when shadows are few: `variance`);
3. the audited agent's score is the log-likelihood ratio log N(s; IN) - log N(s; OUT) (online), or, with OUT
   shadows only (`offline`), -log P(S >= s) under the OUT Gaussian (a one-sided test).

Error rates come from a calibration with known truth that needs no extra training: each shadow in turn plays
the audited agent, scored against Gaussians fitted on the other shadows; its IN trajectories are members, its
OUT ones non-members. That gives the ROC curve, TPR at 1% and 0.1% FPR, AUC and the score threshold at the
decision FPR. An audited agent is then placed on that scale: a one-sided Mann-Whitney test asks whether its
scores on the audited trajectories are larger than the calibration's non-member scores ("still a member");
the same test on a control group (trajectories it still carries) says whether the test can see members of
this agent at all.

Which statistic is the default was measured, not assumed: see `DEFAULT_STATISTIC`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import mannwhitneyu, norm

from trajlab.audit.trajauditor import DEFAULT_GAMMA, discounted_backward
from trajlab.core.config import to_dict
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import (
    Agent,
    Counted,
    Preparable,
    Rebuildable,
    ValueEstimator,
    device_of,
    loss_term_names,
    require,
    updates_of,
)
from trajlab.core.seeding import derive_seed
from trajlab.data.dataset import TransitionDataset

STATISTICS = ("critic_loss", "action_error", "value_gap")
"""critic_loss: -log of the trajectory's mean per-sample loss term (`compute_losses`, the agent's own loss);
action_error: -log of the mean squared distance between the policy's action and the dataset's (the Gaussian
log-likelihood of the actions under the deterministic policy, up to its fixed variance; for discrete actions
the logit of the share of actions the policy repeats); value_gap: -log of the mean squared gap between Q(s, a)
and the trajectory's discounted Monte-Carlo return-to-go."""

DEFAULT_STATISTIC = "critic_loss"
"""Measured on `trajlab.testing.clustered_dataset` (12 episodes of 25 steps, TD3+BC 32x32, gamma 0.5, 8 shadows,
the same shadows for every statistic, online test, global variance), calibration AUC / TPR@1%FPR:

  shadows of 400 updates:   critic_loss 0.999 / 0.98   value_gap 0.882 / 0.06   action_error 0.692 / 0.02
  shadows of 1,000 updates: critic_loss 0.996 / 0.90   value_gap 0.889 / 0.06   action_error 0.664 / 0.15
  overlapping episodes (spread 1), 16 shadows of 200 updates:
                            critic_loss 0.993 / 0.74   value_gap 0.965 / 0.62   action_error 0.720 / 0.00

The critic's TD error on a trajectory is what an offline agent memorises of it: a critic fits its own training
transitions' targets closely and extrapolates on others. The policy's action error separates little (TD3+BC's
behaviour-cloning term pulls the actor towards every nearby action alike), and the value-vs-return gap mixes
the memorised part with the bootstrapping bias every agent shares."""

VARIANCES = ("auto", "per-trajectory", "global")
GLOBAL_BELOW = 64
"""With `variance: auto`, fewer shadows than this use one pooled variance (Carlini et al. do so below 64)."""
EPS = 1e-8


@dataclass(frozen=True)
class LiraConfig:
    """The likelihood-ratio membership test's settings."""

    num_shadows: int = 16
    """Shadow agents trained from scratch, each on a random half of the trajectories (at least 4)."""
    shadow_steps: int | None = None
    """Updates per shadow (None: as many as the reference agent made, its num_updates)."""
    statistic: str = DEFAULT_STATISTIC
    """Per-trajectory statistic: critic_loss, action_error or value_gap (see trajlab.audit.lira)."""
    loss_term: str | None = None
    """Loss term of compute_losses that critic_loss averages (None: critic if the agent has one, else its first)."""
    variance: str = "auto"
    """Gaussian variances: per-trajectory, global (one pooled variance for IN and one for OUT), or auto (global
    with fewer than 64 shadows)."""
    offline: bool = False
    """OUT shadows only: the audited trajectories are left out of every shadow and scored by a one-sided test
    against their OUT Gaussian (half the shadows give as many OUT samples; no IN shadow is trained for them)."""
    centre: bool = False
    """Centre each model's statistic on its own median over the population before the Gaussian fits, so that a
    shadow (or the audited agent) that fits every trajectory better or worse than the others does not move every
    trajectory's mean (docs/benchmarks.md: one such shadow of 8 took the calibration AUC from 0.64 to 0.47)."""
    decision_fpr: float = 0.01
    """False-positive rate of the per-trajectory member/non-member threshold, from the calibration."""
    alpha: float = 0.05
    """Significance of the Mann-Whitney tests (audited set, and control group, against non-member scores)."""
    control_episodes: int | None = None
    """Trajectories the audited agent still carries, audited alongside (None: as many as audited; 0: none)."""
    gamma: float | None = None
    """Discount of value_gap's return-to-go (None: the agent's own gamma, else 0.99)."""
    executor: str = "in-process"
    """How shadows train: in-process (one after another here) or local|ray|serial (trajlab.execution)."""
    seed: int = 0
    """Seed of the shadows' halves, their training and the statistic's noise."""


def check_lira_config(config: LiraConfig) -> None:
    """Raise TrajlabError for settings the test cannot run with."""
    from trajlab.execution import EXECUTORS

    if config.num_shadows < 4:
        raise TrajlabError(f"lira needs at least 4 shadows (calibration holds one out and still needs IN and OUT "
                           f"ones per trajectory), got {config.num_shadows}")
    if config.shadow_steps is not None and config.shadow_steps < 1:
        raise TrajlabError(f"lira shadow_steps must be at least 1, got {config.shadow_steps}")
    if config.statistic not in STATISTICS:
        raise TrajlabError(f"unknown lira statistic {config.statistic!r}; known: {', '.join(STATISTICS)}")
    if config.variance not in VARIANCES:
        raise TrajlabError(f"unknown lira variance {config.variance!r}; known: {', '.join(VARIANCES)}")
    if not (0.0 < config.decision_fpr < 1.0 and 0.0 < config.alpha < 1.0):
        raise TrajlabError("lira decision_fpr and alpha must be in (0, 1)")
    if config.control_episodes is not None and config.control_episodes < 0:
        raise TrajlabError(f"control_episodes must be non-negative (or None), got {config.control_episodes}")
    if config.executor not in ("in-process", *EXECUTORS):
        raise TrajlabError(f"unknown executor {config.executor!r}; known: in-process, {', '.join(EXECUTORS)}")


# --- per-trajectory statistics ------------------------------------------------------------------------------
def trajectory_statistics(agent: Any, dataset: TransitionDataset, episode_ids: Sequence[int], config: LiraConfig,
                          ) -> np.ndarray:
    """s(agent, trajectory) [N] for these episodes (higher: the agent fits the trajectory better)."""
    measure = {"critic_loss": _critic_loss, "action_error": _action_error, "value_gap": _value_gap}[config.statistic]
    # the same noise for every agent (target-policy smoothing, sampled actions): differences are the agents'
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(derive_seed(config.seed, "lira-statistic"))
        return np.array([measure(agent, dataset, int(i), config) for i in episode_ids], dtype=np.float64)


def _rows(dataset: TransitionDataset, episode_id: int) -> np.ndarray:
    return np.flatnonzero(dataset.episode_ids == episode_id)


def loss_term_of(agent: Any, config: LiraConfig) -> str:
    """The compute_losses term critic_loss averages: `config.loss_term`, else critic, else the first."""
    terms = loss_term_names(agent)
    chosen = config.loss_term or ("critic" if "critic" in terms or not terms else terms[0])
    if terms and chosen not in terms:
        raise TrajlabError(f"lira loss_term {chosen!r}: the agent's loss terms are {', '.join(terms)}")
    return chosen


def _critic_loss(agent: Any, dataset: TransitionDataset, episode_id: int, config: LiraConfig) -> float:
    batch = dataset.batch_at(_rows(dataset, episode_id)).to(device_of(agent))
    losses = agent.compute_losses(batch).terms()
    term = loss_term_of(agent, config)
    if term not in losses:
        raise TrajlabError(f"lira statistic critic_loss: compute_losses returned no term {term!r}")
    return -float(np.log(float(losses[term].double().mean()) + EPS))


def _action_error(agent: Any, dataset: TransitionDataset, episode_id: int, config: LiraConfig) -> float:
    rows = _rows(dataset, episode_id)
    chosen = np.asarray(agent.act(dataset.observations[rows], deterministic=True))
    if dataset.discrete:
        # a Laplace-smoothed share of repeated actions, as a logit so that it is unbounded like the others
        share = (float((chosen.reshape(-1) == dataset.actions[rows].reshape(-1)).sum()) + 0.5) / (len(rows) + 1)
        return float(np.log(share / (1.0 - share)))
    error = np.square(chosen.reshape(len(rows), -1) - dataset.actions[rows].reshape(len(rows), -1)).sum(1).mean()
    return -float(np.log(error + EPS))


def _value_gap(agent: Any, dataset: TransitionDataset, episode_id: int, config: LiraConfig) -> float:
    require(agent, ValueEstimator, needed_by="lira statistic value_gap")
    rows = _rows(dataset, episode_id)
    gamma = config.gamma if config.gamma is not None else float(
        getattr(getattr(agent, "config", None), "gamma", DEFAULT_GAMMA))
    returns = discounted_backward(dataset.rewards[rows].astype(np.float64), gamma)
    device = device_of(agent)
    values = agent.q_value(torch.as_tensor(dataset.observations[rows], device=device),
                           torch.as_tensor(dataset.actions[rows], device=device))
    gap = np.square(values.detach().cpu().double().numpy().reshape(-1) - returns).mean()
    return -float(np.log(gap + EPS))


# --- shadows ------------------------------------------------------------------------------------------------
def membership_masks(num_shadows: int, num_trajectories: int, seed: int,
                     always_out: np.ndarray | None = None) -> np.ndarray:
    """IN[k, n]: whether shadow k trains on trajectory n. Ranking uniform draws per trajectory makes every
    trajectory IN for exactly num_shadows // 2 shadows (a balanced design: equal IN and OUT counts)."""
    draws = np.random.default_rng(derive_seed(seed, "lira-halves")).uniform(size=(num_shadows, num_trajectories))
    masks = draws.argsort(0).argsort(0) < num_shadows // 2
    if always_out is not None:
        masks[:, always_out] = False
    return masks


def shadow_statistics(reference: Any, dataset: TransitionDataset, member_ids: Sequence[int], *, steps: int,
                      index: int, config: LiraConfig) -> list[float]:
    """Shadow `index`: a new agent of the reference's algorithm and config, trained from scratch on the
    trajectories `member_ids` of `dataset`; returns its statistics on every trajectory of `dataset`."""
    from trajlab.training.offline import prepare_training
    from trajlab.training.steps import batch_size_of, train_steps

    with torch.random.fork_rng(devices=[]):  # the caller's random stream is left as it was
        agent, sampler = prepare_training(type(reference), reference.config, dataset.subset(member_ids),
                                          seed=derive_seed(config.seed, "lira-shadow", index),
                                          device=str(device_of(reference)), spec=reference.spec)
        train_steps(agent, sampler, steps, batch_size_of(agent, None))
    return trajectory_statistics(agent, dataset, dataset.episode_id_list.tolist(), config).tolist()


def train_lira_shadows(reference: Any, dataset: TransitionDataset, masks: np.ndarray, steps: int,
                       config: LiraConfig) -> np.ndarray:
    """Statistics [K, N] of the K shadows on the N trajectories of `dataset` (in episode_id_list order).

    Jobs return statistics, not weights: that is all the test keeps of a shadow."""
    ids = dataset.episode_id_list
    if config.executor == "in-process":
        return np.array([shadow_statistics(reference, dataset, ids[mask].tolist(), steps=steps, index=k,
                                           config=config) for k, mask in enumerate(masks)])
    from trajlab.algos.base import AgentBase, save_agent
    from trajlab.execution import Job, run_jobs

    if not isinstance(reference, AgentBase):
        raise TrajlabError("lira shadows of a user agent train in-process only (executor 'in-process')")
    with tempfile.TemporaryDirectory(prefix="trajlab-lira-") as folder:
        checkpoint = save_agent(Path(folder) / "reference.safetensors", reference)
        data = dataset.save(Path(folder) / "population.h5")
        jobs = [Job(lira_shadow_job, dict(checkpoint=str(checkpoint), dataset=str(data), member_ids=ids[mask].tolist(),
                                          steps=steps, index=k, config=to_dict(config),
                                          device=str(device_of(reference))), label=f"lira shadow {k}")
                for k, mask in enumerate(masks)]
        return np.array(run_jobs(jobs, executor=config.executor, description="lira shadows", progress=False))


def lira_shadow_job(checkpoint: str, dataset: str, member_ids: list[int], steps: int, index: int,
                    config: dict[str, Any], device: str) -> list[float]:
    """One shadow in a worker: the reference's algorithm and config from its checkpoint, the data from file."""
    from trajlab.algos.base import load_agent
    from trajlab.core.config import from_dict

    reference = load_agent(checkpoint, device=device)
    return shadow_statistics(reference, TransitionDataset.load(dataset), member_ids, steps=steps, index=index,
                             config=from_dict(LiraConfig, config, where="lira job"))


# --- Gaussian fits and scores -------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianFits:
    """Per trajectory [N]: mean and std of the statistic where it was IN and where it was OUT of a shadow."""

    mean_in: np.ndarray
    std_in: np.ndarray
    mean_out: np.ndarray
    std_out: np.ndarray


def uses_global_variance(config: LiraConfig, num_shadows: int) -> bool:
    return config.variance == "global" or (config.variance == "auto" and num_shadows < GLOBAL_BELOW)


def _group_fit(statistics: np.ndarray, members: np.ndarray, pooled: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std per column over the rows where `members`; a column with fewer than 2 such rows (or
    `pooled`) takes the std pooled over every column's residuals. NaN mean where a column has no such row."""
    counts = members.sum(0)
    total = np.where(members, statistics, 0.0).sum(0)
    mean = np.divide(total, counts, out=np.full(counts.shape, np.nan), where=counts > 0)
    residuals = np.where(members, statistics - np.nan_to_num(mean), 0.0)
    degrees = max(int(counts.sum() - (counts > 0).sum()), 1)
    pooled_std = float(np.sqrt(np.square(residuals).sum() / degrees))
    own = np.sqrt(np.divide(np.square(residuals).sum(0), counts - 1, out=np.zeros(counts.shape), where=counts > 1))
    std = np.full(counts.shape, pooled_std) if pooled else np.where(counts > 1, own, pooled_std)
    # a zero std would make one exact value infinitely likely; floor it at a small share of the pooled spread
    return mean, np.maximum(std, max(1e-3 * pooled_std, 1e-12))


def fit_gaussians(statistics: np.ndarray, masks: np.ndarray, *, global_variance: bool) -> GaussianFits:
    """Gaussians of the statistic under IN and OUT for each trajectory, from shadows' statistics [K, N]."""
    mean_in, std_in = _group_fit(statistics, masks, global_variance)
    mean_out, std_out = _group_fit(statistics, ~masks, global_variance)
    return GaussianFits(mean_in, std_in, mean_out, std_out)


def gaussian_llr(value: np.ndarray, fits: GaussianFits) -> np.ndarray:
    """log N(value; IN) - log N(value; OUT), elementwise."""
    return norm.logpdf(value, fits.mean_in, fits.std_in) - norm.logpdf(value, fits.mean_out, fits.std_out)


def offline_score(value: np.ndarray, fits: GaussianFits) -> np.ndarray:
    """-log P(S >= value) under the OUT Gaussian: large when the value is improbably high for a non-member."""
    return -norm.logsf(value, fits.mean_out, fits.std_out)


def lira_scores(value: np.ndarray, fits: GaussianFits, *, offline: bool) -> np.ndarray:
    """Membership scores (higher: more likely a member). Online needs an IN fit for every trajectory."""
    if offline:
        return offline_score(value, fits)
    if np.isnan(fits.mean_in).any():
        raise TrajlabError("lira: some trajectories are IN no shadow; use more shadows or offline: true")
    return gaussian_llr(value, fits)


# --- error rates --------------------------------------------------------------------------------------------
def roc_curve(member_scores: np.ndarray, non_member_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                    np.ndarray]:
    """(fpr, tpr, thresholds) for the rule 'member when score >= threshold', thresholds from high to low
    (the first threshold is +inf: nothing called a member)."""
    members, others = np.asarray(member_scores, float), np.asarray(non_member_scores, float)
    if members.size == 0 or others.size == 0:
        raise TrajlabError("an ROC curve needs members and non-members")
    thresholds = np.concatenate([[np.inf], np.unique(np.concatenate([members, others]))[::-1]])
    tpr = np.array([(members >= t).mean() for t in thresholds])
    fpr = np.array([(others >= t).mean() for t in thresholds])
    return fpr, tpr, thresholds


def auc(member_scores: np.ndarray, non_member_scores: np.ndarray) -> float:
    """P(member score > non-member score) + 0.5 P(tie): the area under the ROC curve."""
    members, others = np.asarray(member_scores, float), np.asarray(non_member_scores, float)
    greater = (members[:, None] > others[None, :]).mean()
    ties = (members[:, None] == others[None, :]).mean()
    return float(greater + 0.5 * ties)


def tpr_at_fpr(member_scores: np.ndarray, non_member_scores: np.ndarray, fpr: float) -> float:
    """The largest TPR among thresholds whose FPR is at most `fpr` (0 when even the strictest exceeds it)."""
    rates, tprs, _ = roc_curve(member_scores, non_member_scores)
    return float(tprs[rates <= fpr].max())


def threshold_at_fpr(non_member_scores: np.ndarray, fpr: float) -> float:
    """The smallest score threshold at which at most `fpr` of the non-members score at or above it."""
    others = np.sort(np.asarray(non_member_scores, float))[::-1]
    allowed = int(np.floor(fpr * len(others)))  # non-members that may score >= the threshold
    return float(np.nextafter(others[allowed], np.inf)) if allowed < len(others) else float(others[-1])


def greater_than_reference(sample: np.ndarray, reference: np.ndarray) -> float:
    """p-value of a one-sided Mann-Whitney U test that `sample` tends to be larger than `reference`."""
    if len(sample) == 0 or len(reference) == 0:
        raise TrajlabError("a Mann-Whitney test needs two non-empty samples")
    return float(mannwhitneyu(sample, reference, alternative="greater").pvalue)


@dataclass(frozen=True)
class Calibration:
    """Scores with known truth: each shadow as the audited agent, against Gaussians of the other shadows."""

    member_scores: np.ndarray
    non_member_scores: np.ndarray
    decision_fpr: float

    @property
    def threshold(self) -> float:
        return threshold_at_fpr(self.non_member_scores, self.decision_fpr)

    def to_dict(self, roc_points: int = 200) -> dict[str, Any]:
        fpr, tpr, _ = roc_curve(self.member_scores, self.non_member_scores)
        keep = np.unique(np.linspace(0, len(fpr) - 1, min(roc_points, len(fpr))).astype(int))
        return {"auc": auc(self.member_scores, self.non_member_scores),
                "tpr_at_1pct_fpr": tpr_at_fpr(self.member_scores, self.non_member_scores, 0.01),
                "tpr_at_0.1pct_fpr": tpr_at_fpr(self.member_scores, self.non_member_scores, 0.001),
                "members": int(len(self.member_scores)), "non_members": int(len(self.non_member_scores)),
                "decision_fpr": self.decision_fpr, "threshold": self.threshold,
                "roc": {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist()}}


def centred(statistics: np.ndarray) -> np.ndarray:
    """Each model's statistics [..., N] less that model's median over the N trajectories."""
    return statistics - np.median(statistics, axis=-1, keepdims=True)


def calibrate(statistics: np.ndarray, masks: np.ndarray, config: LiraConfig) -> Calibration:
    """Leave-one-shadow-out: shadow k scored against fits of the other K - 1; IN = member, OUT = non-member."""
    members, others = [], []
    statistics = centred(statistics) if config.centre else statistics
    global_variance = uses_global_variance(config, len(statistics) - 1)
    for k in range(len(statistics)):
        rest = np.arange(len(statistics)) != k
        fits = fit_gaussians(statistics[rest], masks[rest], global_variance=global_variance)
        scores = lira_scores(statistics[k], fits, offline=config.offline)
        usable = np.isfinite(scores)  # offline: trajectories OUT of every other shadow have no OUT fit
        members.append(scores[masks[k] & usable])
        others.append(scores[~masks[k] & usable])
    return Calibration(np.concatenate(members), np.concatenate(others), config.decision_fpr)


# --- the test -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LiraVerdict:
    """One trajectory's membership score in the audited agent."""

    episode_id: int
    statistic: float
    score: float
    member: bool
    """Score at or above the calibration's threshold at `decision_fpr`."""

    def to_dict(self) -> dict[str, Any]:
        return {"episode_id": self.episode_id, "statistic": self.statistic, "score": self.score,
                "decision": "member" if self.member else "non-member"}


@dataclass(frozen=True)
class LiraResult:
    """The audited and control trajectories' scores, their tests against non-members, and the error rates."""

    verdicts: list[LiraVerdict]
    control: list[LiraVerdict]
    calibration: Calibration
    config: LiraConfig
    extras: dict[str, Any] = field(default_factory=dict)

    def _p_value(self, verdicts: list[LiraVerdict]) -> float | None:
        if not verdicts:
            return None
        return greater_than_reference(np.array([v.score for v in verdicts]), self.calibration.non_member_scores)

    def verdict(self) -> dict[str, Any]:
        """'still a member' when the audited scores exceed non-members' (p < alpha); 'not specific' when the
        controls, which the agent does carry, do not either (the test cannot see this agent's members); else
        'indistinguishable from retraining' (at this test's error rates: absence of evidence, with its TPR)."""
        audited, control = self._p_value(self.verdicts), self._p_value(self.control)
        if audited is not None and audited < self.config.alpha:
            label = "still a member"
        elif control is not None and control >= self.config.alpha:
            label = "not specific"
        else:
            label = "indistinguishable from retraining"
        return {"verdict": label, "p_value": audited, "control_p_value": control}

    @property
    def member_rate(self) -> float:
        return float(np.mean([v.member for v in self.verdicts])) if self.verdicts else 0.0

    def to_dict(self) -> dict[str, Any]:
        control_rate = float(np.mean([v.member for v in self.control])) if self.control else None
        return {"test": "lira", **self.verdict(), "member_rate": self.member_rate, "audited": len(self.verdicts),
                "control_member_rate": control_rate, "control_audited": len(self.control),
                "error_rates": self.calibration.to_dict(), "config": to_dict(self.config),
                "trajectories": [v.to_dict() for v in self.verdicts],
                "control_trajectories": [v.to_dict() for v in self.control], **self.extras}


class LiraAuditor:
    """Shadows trained from scratch like `reference`, then the likelihood-ratio test of any agent's membership.

    `dataset` is the population: every trajectory is IN for half the shadows, except `audited_ids` in offline
    mode (OUT of every shadow). Of `reference` the test needs Agent, Rebuildable and Preparable (and Counted
    unless `shadow_steps` is set): the shadows are built and trained as `trajlab train` would build it."""

    def __init__(self, reference: Any, dataset: TransitionDataset, config: LiraConfig = LiraConfig(), *,
                 audited_ids: Sequence[int] = ()) -> None:
        check_lira_config(config)
        require(reference, Agent, Rebuildable, Preparable, *(() if config.shadow_steps else (Counted,)),
                needed_by="the lira test's shadows")
        if dataset.num_episodes < 2:
            raise TrajlabError(f"lira needs at least 2 trajectories, the dataset has {dataset.num_episodes}")
        self.steps = int(config.shadow_steps or updates_of(reference))
        if self.steps < 1:
            raise TrajlabError("lira: the reference agent made no updates; set lira.shadow_steps")
        self.reference, self.dataset, self.config = reference, dataset, config
        self.ids = dataset.episode_id_list
        out = np.flatnonzero(np.isin(self.ids, list(audited_ids))) if config.offline else None
        self.masks = membership_masks(config.num_shadows, len(self.ids), config.seed, out)
        self.statistics: np.ndarray | None = None
        self.calibration: Calibration | None = None

    def fit(self) -> LiraAuditor:
        """Train the shadows (once) and calibrate."""
        if self.statistics is None:
            self.statistics = train_lira_shadows(self.reference, self.dataset, self.masks, self.steps, self.config)
            self.calibration = calibrate(self.statistics, self.masks, self.config)
        return self

    def scores(self, agent: Any, episode_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(statistics, scores) of `agent` on these trajectories of the population."""
        self.fit()
        positions = self._positions(episode_ids)
        shadows = centred(self.statistics) if self.config.centre else self.statistics
        fits = fit_gaussians(shadows, self.masks,
                             global_variance=uses_global_variance(self.config, self.config.num_shadows))
        picked = GaussianFits(*(np.asarray(part)[positions] for part in (fits.mean_in, fits.std_in, fits.mean_out,
                                                                        fits.std_out)))
        values = trajectory_statistics(agent, self.dataset, [int(i) for i in episode_ids], self.config)
        if self.config.centre:  # the agent's own median over the whole population, as for each shadow
            values = values - np.median(trajectory_statistics(agent, self.dataset, self.ids, self.config))
        return values, lira_scores(values, picked, offline=self.config.offline)

    def _positions(self, episode_ids: Sequence[int]) -> np.ndarray:
        unknown = np.setdiff1d(np.asarray(episode_ids, dtype=np.int64), self.ids)
        if unknown.size:
            raise TrajlabError(f"lira: episode(s) {unknown[:5].tolist()} are not in the shadows' population")
        return np.searchsorted(self.ids, episode_ids) if np.all(np.diff(self.ids) > 0) else \
            np.array([int(np.flatnonzero(self.ids == i)[0]) for i in episode_ids])

    def verdicts(self, agent: Any, episode_ids: Sequence[int]) -> list[LiraVerdict]:
        if len(episode_ids) == 0:
            return []
        values, scores = self.scores(agent, episode_ids)
        threshold = self.calibration.threshold
        return [LiraVerdict(int(i), float(v), float(s), bool(s >= threshold))
                for i, v, s in zip(episode_ids, values, scores)]

    def audit(self, agent: Any, episode_ids: Sequence[int], control_ids: Sequence[int] = ()) -> LiraResult:
        """Scores of the audited trajectories and of the control group, with the calibration's error rates."""
        ids = [int(i) for i in episode_ids]
        if not ids:
            raise TrajlabError("no trajectories to audit")
        return LiraResult(self.verdicts(agent, ids), self.verdicts(agent, [int(i) for i in control_ids]),
                          self.fit().calibration, self.config,
                          {"num_shadows": self.config.num_shadows, "shadow_steps": self.steps,
                           "population": int(len(self.ids))})


def control_ids(population: np.ndarray, excluded: Sequence[int], count: int | None, wanted: int, seed: int
                ) -> list[int]:
    """A seeded sample of `count` (None: `wanted`) population ids not among `excluded`, in id order."""
    candidates = np.setdiff1d(population, np.asarray(excluded, dtype=np.int64))
    size = min(wanted if count is None else count, len(candidates))
    rng = np.random.default_rng(derive_seed(seed, "lira-controls"))
    return sorted(int(i) for i in rng.choice(candidates, size=size, replace=False)) if size else []
