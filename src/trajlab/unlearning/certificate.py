"""Deletion certificates: what was forgotten, from which agent, how, and with what evidence.

A certificate names each forgotten episode by id and by a content hash of its arrays, so a data owner can
check that the removed trajectories are exactly theirs without the certificate holding the data itself. It
also carries the original checkpoint's hash (which agent was changed), the method and its full config, the
wall time, and the audit verdict when one was run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np

import trajlab
from trajlab.data.dataset import TransitionDataset
from trajlab.data.ids import HASHED_FIELDS, trajectory_hash, trajectory_hashes

CERTIFICATE_VERSION = 1


def build_certificate(*, dataset: TransitionDataset, forget_ids: Iterable[int], method: str, method_config: dict,
                      original_checkpoint: str, original_checkpoint_sha256: str, algorithm: str,
                      wall_time_seconds: float, unlearning_updates: int | None = None,
                      dataset_path: str | None = None, audit: dict[str, Any] | None = None) -> dict[str, Any]:
    """The certificate as a JSON-ready dict.

    `unlearning_updates` is the number of gradient updates the method made (None when trajlab cannot know it):
    an auditor trains its shadows as long, so it reads this instead of knowing every method."""
    ids = [int(i) for i in forget_ids]
    certificate: dict[str, Any] = {
        "certificate_version": CERTIFICATE_VERSION,
        "issued_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "trajlab_version": trajlab.__version__,
        "forgotten_episode_ids": ids,
        "forgotten_trajectory_sha256": trajectory_hashes(dataset, ids),
        "forgotten_transitions": int(np.isin(dataset.episode_ids, ids).sum()),
        "dataset": {"path": dataset_path, "episodes": dataset.num_episodes, "transitions": len(dataset),
                    "env_id": dataset.metadata.get("env_id")},
        "method": method,
        "method_config": method_config,
        "algorithm": algorithm,
        "original_checkpoint": original_checkpoint,
        "original_checkpoint_sha256": original_checkpoint_sha256,
        "wall_time_seconds": float(wall_time_seconds),
        "unlearning_updates": None if unlearning_updates is None else int(unlearning_updates),
        "hash_fields": list(HASHED_FIELDS),
    }
    if audit is not None:
        certificate["audit"] = audit
    return certificate


def verify_certificate_hashes(certificate: dict[str, Any], dataset: TransitionDataset) -> list[int]:
    """Episode ids whose trajectory in `dataset` does NOT match the certificate's hash (empty: all match)."""
    expected = certificate.get("forgotten_trajectory_sha256", {})
    known = set(dataset.episode_id_list.tolist())
    mismatched = []
    for key, digest in expected.items():
        episode_id = int(key)
        if episode_id not in known or trajectory_hash(dataset.episode(episode_id)) != digest:
            mismatched.append(episode_id)
    return mismatched
