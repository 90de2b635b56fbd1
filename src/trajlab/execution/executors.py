"""Executors for independent jobs.

A job is an importable top-level function and its keyword arguments; results should be small (numbers, paths,
JSON-able dicts): weights travel through safetensors files in run directories, not through return values.
On a 2-core machine one thread per job and two jobs at a time is the fastest layout for small networks, so
that is the local default. Ray is optional (`pip install 'trajlab[ray]'`) and connects to `RAY_ADDRESS` when
set, else starts a local instance.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from trajlab.core.errors import TrajlabError

EXECUTORS = ("local", "ray", "serial")


@dataclass(frozen=True)
class Job:
    """One unit of work: `function(**kwargs)`, with a label for progress and errors."""

    function: Callable[..., Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""


def run_jobs(jobs: Sequence[Job], *, executor: str = "local", max_workers: int | None = None,
             threads_per_job: int = 1, progress: bool = True, description: str = "jobs") -> list[Any]:
    """Run jobs and return their results in job order."""
    if executor not in EXECUTORS:
        raise TrajlabError(f"unknown executor {executor!r}; known: {', '.join(EXECUTORS)}")
    if not jobs:
        return []
    runner = {"local": _run_local, "ray": _run_ray, "serial": _run_serial}[executor]
    workers = max_workers or max(1, (os.cpu_count() or 1) // max(1, threads_per_job))
    with _Progress(len(jobs), description, progress) as bar:
        return runner(list(jobs), workers, threads_per_job, bar.advance)


def _call(function: Callable[..., Any], kwargs: dict[str, Any], threads: int) -> Any:
    import torch

    torch.set_num_threads(threads)
    return function(**kwargs)


def _run_serial(jobs: list[Job], workers: int, threads: int, advance: Callable[[], None]) -> list[Any]:
    results = []
    for job in jobs:
        results.append(job.function(**job.kwargs))
        advance()
    return results


def _run_local(jobs: list[Job], workers: int, threads: int, advance: Callable[[], None]) -> list[Any]:
    if workers == 1 or len(jobs) == 1:
        return _run_serial(jobs, workers, threads, advance)
    results: list[Any] = [None] * len(jobs)
    # spawn, not fork: a forked child of a process that already ran torch's thread pool can hang
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context) as pool:
        futures = {pool.submit(_call, job.function, job.kwargs, threads): index for index, job in enumerate(jobs)}
        for future in as_completed(futures):
            index = futures[future]
            try:
                results[index] = future.result()
            except TrajlabError:
                raise
            except Exception as error:
                raise RuntimeError(f"job {jobs[index].label or index} failed: {error}") from error
            advance()
    return results


def _run_ray(jobs: list[Job], workers: int, threads: int, advance: Callable[[], None]) -> list[Any]:
    try:
        import ray
    except ImportError:
        raise TrajlabError("the ray executor needs Ray: pip install 'trajlab[ray]'") from None
    if not ray.is_initialized():
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        address = os.environ.get("RAY_ADDRESS")
        ray.init(address=address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
                 **({} if address else {"num_cpus": os.cpu_count()}))
    remote = ray.remote(num_cpus=threads)(_call)
    pending = {remote.remote(job.function, job.kwargs, threads): index for index, job in enumerate(jobs)}
    results: list[Any] = [None] * len(jobs)
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        index = pending.pop(done[0])
        results[index] = ray.get(done[0])
        advance()
    return results


class _Progress:
    """A Rich progress bar on stderr (silent when disabled)."""

    def __init__(self, total: int, description: str, enabled: bool) -> None:
        self.total, self.description, self.enabled = total, description, enabled
        self._progress: Any = None

    def __enter__(self) -> _Progress:
        if self.enabled:
            from rich.progress import Progress

            self._progress = Progress(transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total)
        return self

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.advance(self._task)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
