"""The executors run the same jobs to the same results, in job order.

Jobs must be importable in a fresh (spawned) process, so the tests use standard-library functions.
"""

from __future__ import annotations

import json

import pytest

from trajlab.core.errors import TrajlabError
from trajlab.execution import Job, run_jobs


def _jobs(count: int) -> list[Job]:
    return [Job(json.dumps, {"obj": [value, value * value]}, label=f"v{value}") for value in range(count)]


@pytest.mark.parametrize("executor", ["serial", "local"])
def test_results_in_job_order(executor):
    expected = [json.dumps([v, v * v]) for v in range(5)]
    assert run_jobs(_jobs(5), executor=executor, max_workers=2, progress=False) == expected


def test_failed_job_names_itself():
    jobs = [*_jobs(1), Job(json.loads, {"s": "not json"}, label="second")]
    with pytest.raises(RuntimeError, match="job second failed: Expecting value"):
        run_jobs(jobs, executor="local", max_workers=2, progress=False)


def test_unknown_executor():
    with pytest.raises(TrajlabError, match="unknown executor"):
        run_jobs(_jobs(1), executor="dask")


def test_no_jobs_is_no_work():
    assert run_jobs([], executor="local", progress=False) == []


def test_ray_executor_matches_local():
    pytest.importorskip("ray")
    expected = [json.dumps([v, v * v]) for v in range(3)]
    assert run_jobs(_jobs(3), executor="ray", max_workers=2, progress=False) == expected
