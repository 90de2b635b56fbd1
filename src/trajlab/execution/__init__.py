"""Run many independent jobs (shadow agents, leave-one-out, seeds, retraining): a local process pool by
default, the same jobs on a Ray cluster with `executor="ray"`, or in-process with `executor="serial"`."""

from trajlab.execution.executors import EXECUTORS, Job, run_jobs

__all__ = ["EXECUTORS", "Job", "run_jobs"]
