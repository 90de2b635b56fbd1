"""Releasing synthetic transitions: sample the EMA denoiser, undo the standardisation, and build a dataset.

A synthetic transition belongs to no trajectory, so each row is its own one-step episode (its timeout is set
where it is not terminal, so every episode ends); ids are fresh (0..n-1) and say nothing about the private
rows. Actions are clipped to the action bounds; rows with NaN or inf are dropped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from trajlab.core.errors import TrajlabError
from trajlab.core.seeding import torch_generator
from trajlab.data.dataset import TransitionDataset
from trajlab.privacy.diffusion import heun_sample
from trajlab.privacy.training import TransitionModel


@dataclass(frozen=True)
class SampleResult:
    dataset: TransitionDataset
    requested: int
    dropped_nonfinite: int


def sample_transitions(bundle: TransitionModel, num: int, *, seed: int, chunk: int = 10_000,
                       device: str = "cpu") -> SampleResult:
    """`num` synthetic transitions (fewer when some rows come out non-finite, which are counted)."""
    if num < 1:
        raise TrajlabError(f"number of samples must be at least 1, got {num}")
    generator = torch_generator(seed, device)
    model = bundle.ema.to(device).eval()
    parts = [heun_sample(model, min(chunk, num - start), bundle.dim, bundle.config, generator, device).cpu()
             for start in range(0, num, chunk)]
    rows = bundle.standardiser.inverse(torch.cat(parts).numpy())
    finite = np.isfinite(rows).all(axis=1)
    dataset = dataset_from_rows(rows[finite], bundle)
    return SampleResult(dataset, num, int((~finite).sum()))


def dataset_from_rows(rows: np.ndarray, bundle: TransitionModel) -> TransitionDataset:
    """A TransitionDataset from [s, a, r, s', done] rows, with fresh ids and the model's provenance."""
    return release_dataset(rows, bundle.observation_dim, bundle.action_low, bundle.action_high,
                           release_metadata(bundle))


def release_dataset(rows: np.ndarray, observation_dim: int, action_low: np.ndarray, action_high: np.ndarray,
                    metadata: dict) -> TransitionDataset:
    """Synthetic [s, a, r, s', done] rows as one-step episodes with fresh ids (no row is linked to a real
    episode), actions clipped to the bounds, done thresholded at 0.5."""
    obs, act = observation_dim, len(np.atleast_1d(action_low))
    actions = np.clip(rows[:, obs:obs + act], action_low, action_high)
    terminals = rows[:, -1] > 0.5
    ids = np.arange(len(rows), dtype=np.int64)
    return TransitionDataset(
        observations=rows[:, :obs], actions=actions, rewards=rows[:, obs + act],
        next_observations=rows[:, obs + act + 1:-1], terminals=terminals, timeouts=~terminals,
        episode_ids=ids, transition_ids=ids.copy(), metadata=metadata)


def release_metadata(bundle: TransitionModel) -> dict[str, Any]:
    """What a user of the released data needs to know: the guarantee, the accountant and the sources."""
    privacy = bundle.info.get("privacy")
    return {
        "source": "trajlab synth",
        "synthetic": True,
        "env_id": bundle.info.get("env_id"),
        "action_low": list(bundle.action_low),
        "action_high": list(bundle.action_high),
        "epsilon": None if privacy is None else privacy["epsilon_rdp"],
        "delta": None if privacy is None else privacy["delta"],
        "accountant": None if privacy is None else privacy["accountant"],
        "noise_multiplier": None if privacy is None else privacy["noise_multiplier"],
        "differentially_private": privacy is not None,
        "public_sources": list(bundle.info.get("public_sources", [])),
        "private_sources": list(bundle.info.get("private_sources", [])),
    }
