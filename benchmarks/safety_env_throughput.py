"""Env steps/s of SafetyPointGoal1-v0: the raw single env vs trajlab's SafetyVectorEnv (in-process copies, costs
kept), and two SafetyVectorEnvs in two processes (one per core). Random actions.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/safety_env_throughput.py
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np

from trajlab.core.io import write_json_atomic

STEPS = 4000


def raw_single() -> float:
    from trajlab.envs.safety import make_safety_env

    env = make_safety_env("SafetyPointGoal1-v0", seed=0)
    env.reset(seed=0)
    started = time.perf_counter()
    for _ in range(STEPS):
        *_, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    return STEPS / (time.perf_counter() - started)


def vector(count: int, seed: int = 0) -> float:
    from trajlab.envs.safety import SafetyVectorEnv

    envs = SafetyVectorEnv("SafetyPointGoal1-v0", count, seed=seed)
    envs.reset()
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for _ in range(STEPS // count):
        envs.step(rng.uniform(-1, 1, size=(count, 2)))
    return (STEPS // count) * count / (time.perf_counter() - started)


def two_processes(count: int) -> float:
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        return float(sum(pool.starmap(vector, [(count, 0), (count, 100)])))


def main() -> None:
    result = {"cpu_count": os.cpu_count(), "steps": STEPS, "raw_single_env": raw_single(),
              "vector_1": vector(1), "vector_8": vector(8), "two_processes_x_vector_4": two_processes(4)}
    print(json.dumps(result, indent=1))
    write_json_atomic(Path("benchmarks/results/safety_env_throughput.json"), result)


if __name__ == "__main__":
    main()
