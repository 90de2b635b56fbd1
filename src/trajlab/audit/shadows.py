"""Shadow agents for TrajAuditor: K copies of the original agent, each fine-tuned on the remaining data D_r.

Two ways to train them, with identical results (each shadow seeds torch and its sampler from (seed, index)
before it starts, whichever process runs it):

* in-process: the K fine-tunings run one after another in this process, sharing its threads. No worker start,
  no checkpoint or dataset files in between.
* through `trajlab.execution` (local process pool, Ray, or serial): one job per shadow; the original agent and
  D_r go to a temporary folder as a checkpoint and an HDF5 file, each job writes its shadow's checkpoint.

Which is faster depends on the machine (see docs/benchmarks.md); `AuditConfig.executor` picks.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import device_of
from trajlab.core.seeding import derive_seed
from trajlab.data.dataset import TransitionDataset
from trajlab.execution import EXECUTORS, Job, run_jobs
from trajlab.training.steps import batch_size_of, copy_agent, train_steps

IN_PROCESS = "in-process"


def fine_tune_shadow(original: Any, remaining: TransitionDataset, *, steps: int, batch_size: int, seed: int,
                     index: int) -> Any:
    """Shadow number `index`: a copy of `original` after `steps` updates on `remaining`."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "shadow", index))
        shadow = copy_agent(original)
        sampler = remaining.sampler(device=device_of(shadow),
                                    seed=derive_seed(seed, "shadow-batches", index))
        train_steps(shadow, sampler, steps, batch_size)
    return shadow


def train_shadows(original: Any, remaining: TransitionDataset, config: Any) -> list[Any]:
    """The K shadows of `original` for an `AuditConfig`."""
    batch_size = batch_size_of(original, config.batch_size)
    options = dict(steps=config.shadow_steps, batch_size=batch_size, seed=config.seed)
    if config.executor == IN_PROCESS:
        return [fine_tune_shadow(original, remaining, index=index, **options) for index in range(config.num_shadows)]
    if config.executor not in EXECUTORS:
        raise TrajlabError(f"unknown executor {config.executor!r}; known: {IN_PROCESS}, {', '.join(EXECUTORS)}")
    return _train_through_executor(original, remaining, config.num_shadows, config.executor, options)


def _train_through_executor(original: Any, remaining: TransitionDataset, count: int, executor: str,
                            options: dict[str, Any]) -> list[Any]:
    from trajlab.algos.base import AgentBase, load_agent, save_agent

    if not isinstance(original, AgentBase):
        raise TrajlabError("shadows of a user agent train in-process only (executor 'in-process'): the other "
                           "executors pass agents between processes as trajlab checkpoints")
    device = str(device_of(original))
    with tempfile.TemporaryDirectory(prefix="trajlab-shadows-") as folder:
        checkpoint = save_agent(Path(folder) / "original.safetensors", original)
        data = remaining.save(Path(folder) / "remaining.h5")
        jobs = [Job(shadow_job, dict(checkpoint=str(checkpoint), dataset=str(data), index=index, device=device,
                                     out=str(Path(folder) / f"shadow_{index}.safetensors"), **options),
                    label=f"shadow {index}")
                for index in range(count)]
        paths = run_jobs(jobs, executor=executor, description="shadow agents", progress=False)
        return [load_agent(path, device=device) for path in paths]


def shadow_job(checkpoint: str, dataset: str, index: int, out: str, device: str, steps: int, batch_size: int,
               seed: int) -> str:
    """One shadow in a worker: load the original and D_r from files, fine-tune, save; returns the checkpoint."""
    from trajlab.algos.base import save_agent, start_from_checkpoint

    shadow = fine_tune_shadow(start_from_checkpoint(checkpoint, device=device), TransitionDataset.load(dataset),
                              steps=steps, batch_size=batch_size, seed=seed, index=index)
    save_agent(out, shadow)
    return out
