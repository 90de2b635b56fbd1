"""The executors run the same jobs to the same results, in job order."""

from __future__ import annotations

import pytest

from trajlab.core.errors import TrajlabError
from trajlab.execution import Job, run_jobs


def square_with_torch(value: int) -> int:
    import torch

    return int(torch.tensor(value) ** 2) + torch.get_num_threads() * 0


def fail(value: int) -> int:
    raise ValueError(f"bad {value}")


@pytest.mark.parametrize("executor", ["serial", "local"])
def test_results_in_job_order(executor):
    jobs = [Job(square_with_torch, {"value": v}, label=f"v{v}") for v in range(5)]
    assert run_jobs(jobs, executor=executor, max_workers=2, progress=False) == [0, 1, 4, 9, 16]


def test_failed_job_names_itself():
    jobs = [Job(square_with_torch, {"value": 1}), Job(fail, {"value": 2}, label="second")]
    with pytest.raises(RuntimeError, match="job second failed: bad 2"):
        run_jobs(jobs, executor="local", max_workers=2, progress=False)


def test_unknown_executor():
    with pytest.raises(TrajlabError, match="unknown executor"):
        run_jobs([Job(square_with_torch, {"value": 1})], executor="dask")


def test_ray_executor_matches_local():
    pytest.importorskip("ray")
    jobs = [Job(square_with_torch, {"value": v}) for v in range(3)]
    assert run_jobs(jobs, executor="ray", max_workers=2, progress=False) == [0, 1, 4]
