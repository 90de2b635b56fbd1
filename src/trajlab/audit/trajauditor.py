"""TrajAuditor (Gong et al., NDSS 2025): was an agent trained on a given trajectory, or has it forgotten it?

Reference behaviour comes from shadow agents: K copies of the original agent (which was trained on the
trajectories) fine-tuned on the remaining data D_r. They show how much an agent that still carries the
trajectories' influence varies. For each audited trajectory:

1. every agent's values along it, v_t = Q(s_t + noise, pi(s_t)), are accumulated backwards with discount,
   A_t = v_t + gamma * A_{t+1}, into a value sequence (each shadow gives `noisy_evaluations` of them);
2. the 1-D Wasserstein distance of each sequence to the shadows' mean sequence is taken, for the shadows' own
   sequences and for the audited agent's (one noisy evaluation, like each shadow sample);
3. a Grubbs test asks whether the audited agent's distance is an outlier among them (significance `alpha`).

An outlier behaves unlike every agent that kept the trajectory: it is judged forgotten. Shadows are trained
once per auditor and reused for every audited agent.

Beside the audited trajectories the auditor judges a control group: episodes of D_r, which the audited agent
still carries. An agent whose values moved everywhere is an outlier on every trajectory, so "forgotten" means
something only where the controls stay "retained"; `AuditResult.specificity()` tests that (one-sided Fisher
exact test on forgotten counts, audited vs control).

Of the original agent the auditor needs a `q_value` (capability ValueEstimator) and, to train the shadows
itself, the Agent protocol; of an audited agent `act` and, unless `value_critic` is "original", a `q_value`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from scipy.stats import fisher_exact, wasserstein_distance
from scipy.stats import t as student_t

from trajlab.core.config import to_dict
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Agent, ValueEstimator, device_of, require
from trajlab.core.seeding import derive_seed
from trajlab.data.dataset import Episode, TransitionDataset


@dataclass(frozen=True)
class AuditConfig:
    """TrajAuditor's settings (defaults: the paper's)."""

    num_shadows: int = 5
    """K: shadow agents (copies of the original agent fine-tuned on the remaining data)."""
    shadow_steps: int | None = 5_000
    """Fine-tuning updates per shadow agent. None: as many as the audited unlearning run made (trajlab forget, or
    trajlab audit of a run with a certificate; else 5,000), so the shadows have moved away from the original as
    far as an unlearned agent that forgot nothing would have."""
    noisy_evaluations: int = 4
    """Value sequences per shadow, each with its own observation noise."""
    noise_scale: float = 0.08
    """Std of the Gaussian noise added to observations (dataset units) before the critic sees them."""
    alpha: float = 1e-4
    """Significance level of the Grubbs outlier test."""
    two_sided: bool = False
    """Also call a trajectory forgotten when its distance is unusually SMALL (the paper's test is one-sided)."""
    gamma: float | None = None
    """Discount of the backward value accumulation (None: the agent's own gamma, else 0.99)."""
    batch_size: int | None = None
    """Shadow fine-tuning batch size (None: the agent's own)."""
    value_critic: str = "own"
    """Whose critic scores the agent's actions: own (each agent its own Q) or original (the original agent's Q
    judges every agent's policy, as the paper's code does for the shadows)."""
    control_episodes: int | None = None
    """Episodes of the shadows' data D_r audited alongside, as a control group the audited agent still carries
    (None: as many as are audited; 0: none). "Forgotten" verdicts mean something only where the controls stay
    retained: an agent whose values moved everywhere is flagged on every trajectory."""
    executor: str = "in-process"
    """How shadows train: in-process (one after another in this process) or local|ray|serial (trajlab.execution)."""
    seed: int = 0
    """Seed of the shadows' training and of the observation noise."""


# --- the statistics -----------------------------------------------------------------------------------------
def grubbs_critical_value(n: int, alpha: float, *, two_sided: bool = False) -> float:
    """Critical value of Grubbs' statistic G = |x - mean| / sd for a sample of n values.

    G_crit = (n - 1) / sqrt(n) * sqrt(t^2 / (n - 2 + t^2)), with t the upper alpha / n quantile (one-sided) or
    alpha / (2n) quantile (two-sided) of Student's t with n - 2 degrees of freedom.
    """
    if n < 3:
        raise TrajlabError(f"Grubbs' test needs at least 3 values, got {n}")
    if not 0.0 < alpha < 1.0:
        raise TrajlabError(f"alpha must be in (0, 1), got {alpha}")
    tail = alpha / (2 * n) if two_sided else alpha / n
    t = float(student_t.isf(tail, n - 2))
    return float((n - 1) / np.sqrt(n) * np.sqrt(t * t / (n - 2 + t * t)))


def grubbs_statistic(point: float, others: Sequence[float], *, two_sided: bool = False) -> float:
    """G of `point` within the sample `others + [point]` (signed upwards unless two-sided)."""
    sample = np.append(np.asarray(others, dtype=np.float64), point)
    spread = float(sample.std(ddof=1))
    if spread == 0.0:
        return 0.0
    deviation = (point - float(sample.mean())) / spread
    return abs(deviation) if two_sided else deviation


def discounted_backward(values: np.ndarray, gamma: float) -> np.ndarray:
    """A_t = v_t + gamma * A_{t+1} along the last axis (A_{T-1} = v_{T-1})."""
    values = np.asarray(values, dtype=np.float64)
    accumulated = np.empty_like(values)
    running = np.zeros(values.shape[:-1])
    for index in range(values.shape[-1] - 1, -1, -1):
        running = values[..., index] + gamma * running
        accumulated[..., index] = running
    return accumulated


def q_values(agent: Any, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Q(s, a) [N] from `agent.q_value` (raw observations, actions as the agent emits them)."""
    require(agent, ValueEstimator, needed_by="TrajAuditor")
    device = device_of(agent)
    with torch.no_grad():
        values = agent.q_value(torch.as_tensor(observations, device=device), torch.as_tensor(actions, device=device))
    return values.detach().cpu().numpy().astype(np.float64).reshape(-1)


def value_sequences(agent: Any, episodes: Sequence[Episode], *, noise_draws: int, noise_scale: float, gamma: float,
                    seed: int, critic: Any = None) -> list[np.ndarray]:
    """Per episode, `noise_draws` value sequences [draws, T] of Q(s + noise, pi(s)) accumulated backwards, with
    pi the agent's policy and Q the agent's critic (or `critic`'s, when given).

    Each episode's noise comes from its own generator (seed, episode id), so a trajectory's sequences do not
    depend on which other trajectories are audited with it. All episodes go through the networks at once.
    """
    observations = np.concatenate([episode.observations for episode in episodes]).astype(np.float32)
    actions = np.asarray(agent.act(observations, deterministic=True))
    noise = np.concatenate([
        np.random.default_rng(derive_seed(seed, episode.episode_id)).normal(
            0.0, noise_scale, size=(noise_draws, *episode.observations.shape))
        for episode in episodes], axis=1).astype(np.float32)
    scorer = agent if critic is None else critic
    values = np.stack([q_values(scorer, observations + noise[draw], actions) for draw in range(noise_draws)])
    bounds = np.cumsum([0, *[len(episode) for episode in episodes]])
    return [discounted_backward(values[:, start:stop], gamma) for start, stop in zip(bounds, bounds[1:])]


# --- results ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrajectoryVerdict:
    """The audit of one trajectory."""

    episode_id: int
    distance: float
    """Wasserstein distance of the audited agent's value sequence to the shadows' mean sequence."""
    statistic: float
    """Grubbs' G of that distance among the shadows' own distances."""
    threshold: float
    """Grubbs' critical value; a statistic above it means an outlier."""
    forgotten: bool
    """True when the agent is judged not to carry this trajectory (an outlier among the shadows)."""
    shadow_distance_mean: float
    shadow_distance_std: float

    def to_dict(self) -> dict[str, Any]:
        return {"episode_id": self.episode_id, "distance": self.distance, "statistic": self.statistic,
                "threshold": self.threshold, "decision": "forgotten" if self.forgotten else "retained",
                "shadow_distance_mean": self.shadow_distance_mean, "shadow_distance_std": self.shadow_distance_std}


SPECIFICITY_ALPHA = 0.05
"""Significance of the one-sided Fisher test that the audited set is judged forgotten more often than controls."""


@dataclass(frozen=True)
class AuditResult:
    """Verdicts for a set of trajectories and the share judged forgotten; with a control group, whether that
    share is specific to them."""

    verdicts: list[TrajectoryVerdict]
    config: AuditConfig
    extras: dict[str, Any] = field(default_factory=dict)
    control: list[TrajectoryVerdict] = field(default_factory=list)
    """Verdicts on episodes of D_r, which the audited agent still carries (should be 'retained')."""

    @property
    def forgotten_rate(self) -> float:
        return float(np.mean([v.forgotten for v in self.verdicts])) if self.verdicts else 0.0

    @property
    def forgotten_ids(self) -> list[int]:
        return [v.episode_id for v in self.verdicts if v.forgotten]

    @property
    def control_forgotten_rate(self) -> float | None:
        return float(np.mean([v.forgotten for v in self.control])) if self.control else None

    def specificity(self) -> dict[str, Any]:
        """Were the audited trajectories judged forgotten more often than the controls? One-sided Fisher exact
        test on the 2x2 table of (audited, control) x (forgotten, retained)."""
        if not self.control:
            return {"specificity": "no control", "specificity_p_value": None}
        audited, controls = len(self.forgotten_ids), sum(v.forgotten for v in self.control)
        table = [[audited, len(self.verdicts) - audited], [controls, len(self.control) - controls]]
        p_value = float(fisher_exact(table, alternative="greater")[1])
        if audited == 0:
            label = "nothing forgotten"
        elif controls / len(self.control) >= self.forgotten_rate:
            label = "not specific"  # the agent looks changed everywhere, not on these trajectories
        else:
            label = "specific" if p_value < SPECIFICITY_ALPHA else "inconclusive"
        return {"specificity": label, "specificity_p_value": p_value}

    def to_dict(self) -> dict[str, Any]:
        return {"forgotten_rate": self.forgotten_rate, "audited": len(self.verdicts),
                "forgotten": len(self.forgotten_ids), "control_forgotten_rate": self.control_forgotten_rate,
                "control_audited": len(self.control), **self.specificity(), "config": to_dict(self.config),
                "trajectories": [verdict.to_dict() for verdict in self.verdicts],
                "control_trajectories": [verdict.to_dict() for verdict in self.control], **self.extras}


# --- the auditor --------------------------------------------------------------------------------------------
def audited_needs(config: AuditConfig) -> tuple[type, ...]:
    """What an audited agent (and a shadow) must have beyond `act`: its own critic, unless the original's judges
    every policy (value_critic "original")."""
    return () if config.value_critic == "original" else (ValueEstimator,)


DEFAULT_GAMMA = 0.99
"""Discount of the value accumulation for an agent whose config has none (behaviour cloning) or no config."""


def discount(agent: Any, config: AuditConfig) -> float:
    """`config.gamma`, else the agent config's own `gamma`, else DEFAULT_GAMMA."""
    if config.gamma is not None:
        return config.gamma
    # a field of the algorithm's config, not a capability: algorithms without a discount have no such field
    return float(getattr(getattr(agent, "config", None), "gamma", DEFAULT_GAMMA))


class TrajAuditor:
    """Shadows of an original agent, and the membership test of any agent derived from it against them."""

    def __init__(self, original: Any, remaining: TransitionDataset, config: AuditConfig = AuditConfig(), *,
                 shadows: Sequence[Any] | None = None) -> None:
        check_audit_config(config)
        require(original, ValueEstimator, needed_by="TrajAuditor")  # its critic (or its copies') values policies
        config = with_shadow_steps(config, None)
        self.original = original
        self.remaining = remaining
        self.config = config
        self.gamma = discount(original, config)
        self.shadows: list[Any] = list(shadows) if shadows is not None else []
        self.shadow_seconds = 0.0
        self._shadow_cache: dict[int, np.ndarray] = {}
        self._critic = original if config.value_critic == "original" else None

    def fit(self) -> TrajAuditor:
        """Train the shadow agents (once)."""
        if not self.shadows:
            from trajlab.audit.shadows import train_shadows  # imports the unlearning package (training loop)

            require(self.original, Agent, needed_by="TrajAuditor's shadow training")  # copies trained by update()

            started = time.perf_counter()
            self.shadows = train_shadows(self.original, self.remaining, self.config)
            self.shadow_seconds = time.perf_counter() - started
        return self

    def audit(self, agent: Any, dataset: TransitionDataset, episode_ids: Iterable[int], *,
              control: bool = True) -> AuditResult:
        """Judge, for each episode of `dataset` with these ids, whether `agent` still carries it; with `control`
        (and `config.control_episodes` not 0), also judge a seeded sample of D_r's other episodes."""
        require(agent, *audited_needs(self.config), needed_by="TrajAuditor")
        self.fit()
        ids = [int(i) for i in episode_ids]
        if not ids:
            raise TrajlabError("no trajectories to audit")
        verdicts = self._verdicts(agent, [dataset.episode(i) for i in ids])
        controls = self._verdicts(agent, self._control_episodes(ids)) if control else []
        return AuditResult(verdicts, self.config, {"num_shadows": len(self.shadows),
                                                   "shadow_seconds": self.shadow_seconds}, controls)

    def _verdicts(self, agent: Any, episodes: Sequence[Episode]) -> list[TrajectoryVerdict]:
        if not episodes:
            return []
        shadow_sequences = self._shadow_sequences(episodes)
        target_sequences = value_sequences(agent, episodes, noise_draws=1, noise_scale=self.config.noise_scale,
                                           gamma=self.gamma, seed=derive_seed(self.config.seed, "audited"),
                                           critic=self._critic)
        return [self._verdict(episode.episode_id, shadows, target[0])
                for episode, shadows, target in zip(episodes, shadow_sequences, target_sequences)]

    def _control_episodes(self, audited_ids: Sequence[int]) -> list[Episode]:
        """A seeded sample of D_r's episodes (not among the audited ones), in id order."""
        wanted = len(audited_ids) if self.config.control_episodes is None else self.config.control_episodes
        candidates = np.setdiff1d(self.remaining.episode_id_list, audited_ids)
        count = min(wanted, len(candidates))
        rng = np.random.default_rng(derive_seed(self.config.seed, "control-episodes"))
        chosen = np.sort(rng.choice(candidates, size=count, replace=False)) if count else []
        return [self.remaining.episode(int(i)) for i in chosen]

    def _shadow_sequences(self, episodes: Sequence[Episode]) -> list[np.ndarray]:
        """[K * noisy_evaluations, T] per episode, computed once per episode id."""
        missing = [episode for episode in episodes if episode.episode_id not in self._shadow_cache]
        if missing:
            per_shadow = [value_sequences(shadow, missing, noise_draws=self.config.noisy_evaluations,
                                          noise_scale=self.config.noise_scale, gamma=self.gamma,
                                          seed=derive_seed(self.config.seed, "shadow-noise", index),
                                          critic=self._critic)
                          for index, shadow in enumerate(self.shadows)]
            for position, episode in enumerate(missing):
                self._shadow_cache[episode.episode_id] = np.concatenate([seqs[position] for seqs in per_shadow])
        return [self._shadow_cache[episode.episode_id] for episode in episodes]

    def _verdict(self, episode_id: int, shadow_sequences: np.ndarray, target: np.ndarray) -> TrajectoryVerdict:
        mean_sequence = shadow_sequences.mean(axis=0)
        shadow_distances = np.array([wasserstein_distance(mean_sequence, s) for s in shadow_sequences])
        distance = float(wasserstein_distance(mean_sequence, target))
        n = len(shadow_distances) + 1
        statistic = grubbs_statistic(distance, shadow_distances, two_sided=self.config.two_sided)
        threshold = grubbs_critical_value(n, self.config.alpha, two_sided=self.config.two_sided)
        return TrajectoryVerdict(episode_id, distance, float(statistic), float(threshold), bool(statistic > threshold),
                                 float(shadow_distances.mean()), float(shadow_distances.std(ddof=1)))


DEFAULT_SHADOW_STEPS = 5_000
"""Shadow fine-tuning length when `shadow_steps` is None and no unlearning run says how long it trained."""


def with_shadow_steps(config: AuditConfig, unlearning_updates: int | None) -> AuditConfig:
    """`config` with `shadow_steps` decided: kept when set, else the audited unlearning's update count, else
    DEFAULT_SHADOW_STEPS."""
    if config.shadow_steps is not None:
        return config
    steps = DEFAULT_SHADOW_STEPS if unlearning_updates is None else int(unlearning_updates)
    return replace(config, shadow_steps=steps)


def check_audit_config(config: AuditConfig) -> None:
    """Raise TrajlabError for settings the auditor cannot run with."""
    if config.num_shadows < 1 or config.noisy_evaluations < 1:
        raise TrajlabError("num_shadows and noisy_evaluations must be at least 1")
    if config.num_shadows * config.noisy_evaluations < 2:
        raise TrajlabError("TrajAuditor needs at least 2 shadow value sequences (num_shadows x noisy_evaluations)")
    from trajlab.execution import EXECUTORS

    if config.executor not in ("in-process", *EXECUTORS):
        raise TrajlabError(f"unknown executor {config.executor!r}; known: in-process, {', '.join(EXECUTORS)}")
    if config.value_critic not in ("own", "original"):
        raise TrajlabError(f"value_critic must be own or original, got {config.value_critic!r}")
    if config.control_episodes is not None and config.control_episodes < 0:
        raise TrajlabError(f"control_episodes must be non-negative (or None), got {config.control_episodes}")
    if config.noise_scale < 0 or (config.shadow_steps is not None and config.shadow_steps < 0):
        raise TrajlabError("noise_scale and shadow_steps must be non-negative")
    grubbs_critical_value(config.num_shadows * config.noisy_evaluations + 1, config.alpha)


# --- efficacy (the paper's RQ1) -----------------------------------------------------------------------------
def membership_metrics(is_member: Sequence[bool], judged_forgotten: Sequence[bool]) -> dict[str, float]:
    """Precision, recall and F1 of the auditor's 'still trained on it' (retained) decisions against the truth."""
    member = np.asarray(is_member, dtype=bool)
    retained = ~np.asarray(judged_forgotten, dtype=bool)
    tp, fp = int((member & retained).sum()), int((~member & retained).sum())
    fn, tn = int((member & ~retained).sum()), int((~member & ~retained).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    specificity = tn / (tn + fp) if tn + fp else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "balanced_accuracy": (recall + specificity) / 2,
            "true_positives": tp, "false_positives": fp, "false_negatives": fn, "true_negatives": tn}


def efficacy_evaluation(auditor: TrajAuditor, full_agent: Any, retrained_agent: Any, dataset: TransitionDataset,
                        forget_ids: Iterable[int], member_ids: Iterable[int]) -> dict[str, Any]:
    """Audit planted truth: the fully trained agent carries both the forget set and the sampled remaining
    episodes (`member_ids`); the agent retrained without the forget set carries only the remaining ones.

    The auditor's shadows must come from `full_agent`. Returns precision/recall/F1 of 'retained' decisions and
    the share judged retained in each of the four groups.
    """
    forget, members = [int(i) for i in forget_ids], [int(i) for i in member_ids]
    groups = {"full_agent/forget_set": (full_agent, forget, True),
              "full_agent/remaining": (full_agent, members, True),
              "retrained_agent/forget_set": (retrained_agent, forget, False),
              "retrained_agent/remaining": (retrained_agent, members, True)}
    truth: list[bool] = []
    judged: list[bool] = []
    retained_rates = {}
    for name, (agent, ids, member) in groups.items():
        if not ids:
            continue
        result = auditor.audit(agent, dataset, ids, control=False)
        decisions = [verdict.forgotten for verdict in result.verdicts]
        truth += [member] * len(decisions)
        judged += decisions
        retained_rates[name] = 1.0 - float(np.mean(decisions))
    return {**membership_metrics(truth, judged), "retained_rate": retained_rates}
