"""The likelihood-ratio membership test as `trajlab audit --test lira` and `trajlab forget --audit --test lira`
run it: shadows from scratch on the original's training data, the audited trajectories next to a control group,
and canaries as known members.

Canaries the dataset's metadata lists (`trajlab.audit.canaries`, planted before the original was trained) are
members of every agent trained on that file: the share found is a check that the test sees members of the
audited agent. `canaries > 0` plants new ones in a COPY of the dataset (written into the run directory, ids in
result.json), adds them to the shadows' population and trains one reference agent from scratch on the copy:
the test must find them in that agent and not in the audited one, which never saw them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from trajlab.audit.canaries import canary_ids, plant_canaries
from trajlab.audit.lira import LiraAuditor, LiraConfig, LiraResult, LiraVerdict, check_lira_config, control_ids
from trajlab.commands.progress import counted_updates_bar
from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import updates_of
from trajlab.core.seeding import derive_seed
from trajlab.data.dataset import TransitionDataset

TESTS = ("trajauditor", "lira")
"""Membership tests `--test` chooses from."""
CANARY_FILE = "dataset_with_canaries.hdf5"


def check_test(test: str, lira: LiraConfig, canaries: int) -> None:
    """Raise TrajlabError for an unknown test or settings the chosen one cannot run with."""
    if test not in TESTS:
        raise TrajlabError(f"unknown test {test!r}; known: {', '.join(TESTS)}")
    if canaries < 0:
        raise TrajlabError(f"canaries must be non-negative, got {canaries}")
    if canaries and test != "lira":
        raise TrajlabError("--canaries needs --test lira (TrajAuditor has no calibration to find them with)")
    if test == "lira":
        check_lira_config(lira)


def prepare_lira(original: Any, dataset: TransitionDataset, ids: np.ndarray, config: LiraConfig,
                 canaries: int) -> LiraAuditor:
    """The auditor (untrained), with new canaries planted in its population: every check that can fail on the
    user's input runs here, before a run directory is written."""
    if canaries and canary_ids(dataset):
        raise TrajlabError(f"the dataset already holds canaries {canary_ids(dataset)[:5]}; give --canaries 0")
    population = dataset if not canaries else plant_canaries(dataset, canaries, seed=config.seed)
    return LiraAuditor(original, population, config, audited_ids=ids)


def lira_audit(auditor: LiraAuditor, agent: Any, dataset: TransitionDataset, ids: np.ndarray, *,
               excluded: np.ndarray, run_path: Path, progress: bool) -> LiraResult:
    """The test of `agent` on `ids` (controls: the dataset's other episodes minus `excluded` and canaries)."""
    config, population = auditor.config, auditor.dataset
    canaries = len(canary_ids(population)) if population is not dataset else 0
    shadow_updates = auditor.steps * config.num_shadows if config.executor == "in-process" else 0
    with counted_updates_bar("audit: lira shadow agents", shadow_updates, enabled=progress):
        auditor.fit()
    known = canary_ids(dataset)
    controls = control_ids(dataset.episode_id_list, [*ids.tolist(), *excluded.tolist(), *known],
                           config.control_episodes, len(ids), config.seed)
    result = auditor.audit(agent, ids.tolist(), controls)
    checks = {"episode_ids": known, "source": "dataset",
              "found_in_audited": _found(auditor.verdicts(agent, known)) if known else None}
    if canaries:
        checks = _planted_check(auditor, agent, population, run_path, progress)
    return replace(result, extras={**result.extras, "canaries": checks})


def _found(verdicts: list[LiraVerdict]) -> dict[str, Any]:
    return {"rate": float(np.mean([v.member for v in verdicts])), "scores": [v.score for v in verdicts]}


def _planted_check(auditor: LiraAuditor, agent: Any, population: TransitionDataset, run_path: Path,
                   progress: bool) -> dict[str, Any]:
    """Train one agent from scratch on the planted copy; the canaries must be found in it, not in `agent`."""
    from trajlab.training.offline import prepare_training
    from trajlab.training.steps import batch_size_of, train_steps

    planted = canary_ids(population)
    path = population.save(run_path / CANARY_FILE)
    reference = auditor.reference
    trained, sampler = prepare_training(type(reference), reference.config, population, spec=reference.spec,
                                        seed=derive_seed(auditor.config.seed, "canary-reference"),
                                        device=str(getattr(reference, "device", "cpu")))
    with counted_updates_bar("audit: canary reference agent", auditor.steps, enabled=progress):
        train_steps(trained, sampler, auditor.steps, batch_size_of(trained, None))
    return {"episode_ids": planted, "source": "planted", "dataset": str(path),
            "reference_updates": updates_of(trained),
            "found_in_reference": _found(auditor.verdicts(trained, planted)),
            "found_in_audited": _found(auditor.verdicts(agent, planted))}
