"""Latent features of a policy trunk and linear hazard probes on them (what unlearning and audit both use).

An agent here is anything with `model.latents(observations)` (the PPO-Lagrangian's trunk output before its
editor) and `model.features(observations)` (after it). A probe is a logistic regression (scikit-learn) from
latents to "this state is in a hazard"; it is saved as JSON with the fingerprint of the trunk it was fitted on,
so using it on another model is a one-line error instead of a silent wrong answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajlab.core.errors import TrajlabError
from trajlab.core.io import write_json_atomic


@torch.no_grad()
def latents(agent: Any, observations: np.ndarray, *, edited: bool = False) -> np.ndarray:
    """Trunk features [N, H] of raw observations (after the editor when `edited`)."""
    obs = torch.as_tensor(np.asarray(observations, dtype=np.float32), device=agent.device)
    model = agent.model
    return (model.features(obs) if edited else model.latents(obs)).cpu().numpy()


def fingerprint(agent: Any) -> str:
    """A short hash of the trunk's weights and observation statistics."""
    digest = hashlib.sha256()
    for name, value in sorted(agent.model.state_dict().items()):
        if name.startswith(("trunk", "obs_")):
            digest.update(name.encode())
            digest.update(value.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class HazardProbe:
    """A linear probe: p(hazard | z) = sigmoid(w.z + b); `direction` = w / |w|; `tau` the edit threshold."""

    weights: list[float]
    bias: float
    tau: float
    accuracy: float
    """Held-out accuracy on a balanced split."""
    model_fingerprint: str

    @property
    def direction(self) -> np.ndarray:
        w = np.asarray(self.weights, dtype=np.float32)
        return w / max(float(np.linalg.norm(w)), 1e-12)

    def save(self, path: str | Path) -> Path:
        write_json_atomic(path, asdict(self))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> HazardProbe:
        try:
            return cls(**json.loads(Path(path).read_text()))
        except (OSError, ValueError, TypeError) as error:
            raise TrajlabError(f"{path}: not a hazard probe ({error})") from None

    def check_model(self, agent: Any) -> None:
        if fingerprint(agent) != self.model_fingerprint:
            raise TrajlabError("the hazard probe was fitted on another model (trunk fingerprint differs)")


def balanced(features: np.ndarray, labels: np.ndarray, per_class: int,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Up to `per_class` rows of each class (as many of each as the rarer class has)."""
    hazard, safe = np.flatnonzero(labels), np.flatnonzero(~labels)
    count = min(per_class, len(hazard), len(safe))
    if count < 4:
        raise TrajlabError(f"too few hazard ({len(hazard)}) or safe ({len(safe)}) states to fit a probe; "
                           "collect more steps")
    chosen = np.concatenate([rng.choice(hazard, count, replace=False), rng.choice(safe, count, replace=False)])
    return features[chosen], labels[chosen]


def fit_probe(features: np.ndarray, labels: np.ndarray, *, per_class: int, tau_quantile: float, seed: int,
              model_fingerprint: str = "") -> HazardProbe:
    """Logistic regression on a balanced set (3/4 train, 1/4 held out); tau = that quantile of the projections
    on the unit direction of the held-in safe and hazard states together."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    x, y = balanced(features, labels.astype(bool), per_class, rng)
    order = rng.permutation(len(y))
    split = (3 * len(y)) // 4
    train, test = order[:split], order[split:]
    model = LogisticRegression(max_iter=1000).fit(x[train], y[train])
    w = model.coef_[0]
    projections = x[train] @ (w / max(float(np.linalg.norm(w)), 1e-12))
    return HazardProbe([float(v) for v in w], float(model.intercept_[0]),
                       float(np.quantile(projections, tau_quantile)), float(model.score(x[test], y[test])),
                       model_fingerprint)


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear centred kernel alignment of two feature sets of the same states (1: same up to rotation/scale)."""
    x, y = x - x.mean(0), y - y.mean(0)
    cross = np.linalg.norm(x.T @ y) ** 2
    return float(cross / max(np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y), 1e-12))
