"""trajlab's offline agents against d3rlpy 2.8.1, side by side: updates/s, FLOPs, % of matmul peak, returns.

One process, one dataset, one CPU, the same torch thread count for both libraries. For each algorithm both
agents are built with matched settings (see MAPPING: network sizes, batch, learning rates, gamma, tau and the
algorithm's own hyper-parameters), warmed up, then timed in alternation (trajlab, d3rlpy, trajlab, d3rlpy ...),
so load from elsewhere on the machine hits both alike. A timed training step is what each library's own
training loop does per update: draw a minibatch from its dataset object, then `update` (trajlab:
TensorSampler.sample + agent.update; d3rlpy: ReplayBuffer.sample_transition_batch + algo.update).

FLOPs per update are counted analytically from the matmuls each implementation runs (see `count_flops`):
a dense layer costs 2 * in * out FLOPs per row forward; a pass whose weights are trained costs 3x its forward
(backward = 2x forward: input and weight gradients); a pass that only carries gradients to its inputs (the
critic inside an actor loss, when weight gradients are not asked for) costs 2x; a no-grad pass 1x.
Achieved FLOP/s = FLOPs/update x updates/s, compared with the float32 matmul peak measured in the same run
(a loop of [256, 256] @ [256, 256] products).

Returns: IQL and TD3+BC trained for `--return-updates` updates on each seed with each library (in worker
processes, `--return-workers` at a time), then evaluated with trajlab.eval.evaluate in the dataset's
environment (deterministic actions, the same episode seeds for both), as normalised scores against the
dataset's own random/expert references.

    python benchmarks/offline_vs_d3rlpy.py --dataset benchmarks/data/hopper-mr.hdf5

needs `pip install -e ".[bench]"` (d3rlpy).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

ALGOS = ("iql", "cql", "td3_bc", "bcq")
RETURN_ALGOS = ("iql", "td3_bc")
BF16_ALGOS = ("iql", "td3_bc", "cql")
"""Algorithms also timed with RuntimeOptions(bf16=True) (autocast of the matmuls to bfloat16)."""
DEFAULT_DATASET = Path("benchmarks/data/hopper-mr.hdf5")
DEFAULT_JSON = Path("benchmarks/results/offline_vs_d3rlpy.json")

MAPPING = {
    "common": "batch 256, gamma 0.99, tau 0.005, 2 critics, Adam; hidden layers --hidden (256 256) for actor, "
              "critics and value (BCQ: its paper's 400x300 actor/critics and 750x750 VAE in both)",
    "iql": "trajlab IQL(actor_lr=critic_lr=value_lr=3e-4, expectile=0.7, beta=3, max_weight=100, scale_rewards, "
           "actor_lr_decay_steps=T) = d3rlpy IQLConfig(actor/critic lr 3e-4, expectile 0.7, weight_temp 3, "
           "max_weight 100, ReturnBasedRewardScaler(multiplier=1000), actor Adam with CosineAnnealingLR(T_max=T)); "
           "T = the run's updates. Neither normalises observations",
    "td3_bc": "trajlab TD3BC(lrs 3e-4, policy_noise 0.2, noise_clip 0.5, policy_freq 2, alpha 2.5, observation "
              "standardisation) = d3rlpy TD3PlusBCConfig(lrs 3e-4, target_smoothing_sigma 0.2, "
              "target_smoothing_clip 0.5, update_actor_interval 2, alpha 2.5, StandardObservationScaler)",
    "cql": "trajlab CQL(actor_lr 1e-4, critic_lr 3e-4, temperature_lr 1e-4, initial temperature 1, "
           "conservative_weight 5, n_actions 10, lagrange_lr 0) = d3rlpy CQLConfig(actor 1e-4, critic 3e-4, "
           "temp 1e-4, initial_temperature 1, conservative_weight 5, n_action_samples 10, alpha_learning_rate 0, "
           "initial_alpha 1). Both: 10 uniform + 10 pi(s) + 10 pi(s') actions per state; non-soft backup "
           "(d3rlpy backs up the policy mean, trajlab a policy sample)",
    "bcq": "trajlab BCQ(actor_lr 1e-4, critic_lr 3e-4, vae_lr 1e-3, 400x300 actor/critics, 750x750 VAE, lam 0.75, "
           "phi 0.05, 10 action samples, kl_weight 0.5) = d3rlpy BCQConfig(actor 1e-4, critic 3e-4, imitator 1e-3, "
           "same encoders, lam 0.75, action_flexibility 0.05, n_action_samples 10, beta 0.5)",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="*", default=list(ALGOS), choices=ALGOS, help="algorithms to time")
    parser.add_argument("--updates", type=int, default=100, help="timed updates per repeat and library")
    parser.add_argument("--warmup", type=int, default=20, help="untimed updates before timing")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per library (the median is reported)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads for the timing")
    parser.add_argument("--clock", choices=sorted(CLOCK), default="wall",
                        help="time steps by wall time or by this process's CPU time (1 thread on a busy machine)")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 256], help="hidden widths (not BCQ)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--bf16", action="store_true",
                        help="also time trajlab with bfloat16 autocast (iql, td3_bc, cql; float32 stays the headline)")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="trajlab HDF5 dataset")
    parser.add_argument("--return-algos", nargs="*", default=list(RETURN_ALGOS), choices=ALGOS,
                        help="algorithms whose returns are compared (none: skip the return comparison)")
    parser.add_argument("--return-updates", type=int, default=10_000, help="training updates per return run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the return runs")
    parser.add_argument("--return-workers", type=int, default=2, help="return runs side by side (1 thread each)")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON, help="raw results (JSON)")
    return parser.parse_args(argv)


# --- matched agents -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """What both libraries are given."""

    hidden: tuple[int, ...]
    batch_size: int
    total_updates: int
    """Length of the run (IQL's cosine actor learning-rate schedule spans it)."""
    bcq_hidden: tuple[int, ...] = (400, 300)
    """BCQ's actor and critics (its paper's sizes)."""
    bcq_vae_hidden: tuple[int, ...] = (750, 750)
    """BCQ's VAE encoder and decoder."""


def trajlab_config(algo: str, settings: Settings) -> Any:
    from trajlab.algos.offline.bcq import BCQConfig
    from trajlab.algos.offline.cql import CQLConfig
    from trajlab.algos.offline.iql import IQLConfig
    from trajlab.algos.offline.td3_bc import TD3BCConfig

    hidden, batch = settings.hidden, settings.batch_size
    if algo == "iql":
        return IQLConfig(actor_hidden=hidden, critic_hidden=hidden, batch_size=batch,
                         actor_lr_decay_steps=settings.total_updates)
    if algo == "td3_bc":
        return TD3BCConfig(actor_hidden=hidden, critic_hidden=hidden, batch_size=batch)
    if algo == "cql":
        return CQLConfig(actor_hidden=hidden, critic_hidden=hidden, batch_size=batch, lagrange_lr=0.0)
    return BCQConfig(batch_size=batch, actor_hidden=settings.bcq_hidden, critic_hidden=settings.bcq_hidden,
                     vae_hidden=settings.bcq_vae_hidden)


def d3rlpy_config(algo: str, settings: Settings) -> Any:
    import d3rlpy
    from d3rlpy.models import VectorEncoderFactory
    from d3rlpy.optimizers import AdamFactory, CosineAnnealingLRFactory

    encoder = VectorEncoderFactory(hidden_units=list(settings.hidden))
    batch = settings.batch_size
    if algo == "iql":
        cosine = AdamFactory(lr_scheduler_factory=CosineAnnealingLRFactory(T_max=settings.total_updates))
        return d3rlpy.algos.IQLConfig(
            actor_learning_rate=3e-4, critic_learning_rate=3e-4, batch_size=batch, gamma=0.99, tau=0.005,
            n_critics=2, expectile=0.7, weight_temp=3.0, max_weight=100.0, actor_optim_factory=cosine,
            actor_encoder_factory=encoder, critic_encoder_factory=encoder, value_encoder_factory=encoder,
            reward_scaler=d3rlpy.preprocessing.ReturnBasedRewardScaler(multiplier=1000.0))
    if algo == "td3_bc":
        return d3rlpy.algos.TD3PlusBCConfig(
            actor_learning_rate=3e-4, critic_learning_rate=3e-4, batch_size=batch, gamma=0.99, tau=0.005,
            n_critics=2, target_smoothing_sigma=0.2, target_smoothing_clip=0.5, alpha=2.5, update_actor_interval=2,
            actor_encoder_factory=encoder, critic_encoder_factory=encoder,
            observation_scaler=d3rlpy.preprocessing.StandardObservationScaler())
    if algo == "cql":
        return d3rlpy.algos.CQLConfig(
            actor_learning_rate=1e-4, critic_learning_rate=3e-4, temp_learning_rate=1e-4, alpha_learning_rate=0.0,
            batch_size=batch, gamma=0.99, tau=0.005, n_critics=2, initial_temperature=1.0, initial_alpha=1.0,
            conservative_weight=5.0, n_action_samples=10, actor_encoder_factory=encoder,
            critic_encoder_factory=encoder)
    return d3rlpy.algos.BCQConfig(
        actor_learning_rate=1e-4, critic_learning_rate=3e-4, imitator_learning_rate=1e-3, batch_size=batch,
        gamma=0.99, tau=0.005, n_critics=2, lam=0.75, n_action_samples=10, action_flexibility=0.05, beta=0.5,
        actor_encoder_factory=VectorEncoderFactory(hidden_units=list(settings.bcq_hidden)),
        critic_encoder_factory=VectorEncoderFactory(hidden_units=list(settings.bcq_hidden)),
        imitator_encoder_factory=VectorEncoderFactory(hidden_units=list(settings.bcq_vae_hidden)))


def d3rlpy_dataset(dataset: Any) -> Any:
    """The same transitions as a d3rlpy MDPDataset (an unfinished last episode is closed as a timeout)."""
    import d3rlpy

    timeouts = np.array(dataset.timeouts, dtype=np.float32)
    if not (dataset.terminals[-1] or dataset.timeouts[-1]):
        timeouts[-1] = 1.0
    return d3rlpy.dataset.MDPDataset(
        observations=np.array(dataset.observations, dtype=np.float32),
        actions=np.array(dataset.actions, dtype=np.float32),
        rewards=np.array(dataset.rewards, dtype=np.float32),
        terminals=np.array(dataset.terminals, dtype=np.float32), timeouts=timeouts)


Step = Callable[[], None]


def build_trajlab(algo: str, dataset: Any, settings: Settings, seed: int, bf16: bool = False) -> tuple[Any, Step]:
    from trajlab.algos.base import AGENTS, RuntimeOptions, new_agent

    config = trajlab_config(algo, settings)
    agent = new_agent(AGENTS.get(algo), dataset.spec, config, seed=seed, runtime=RuntimeOptions(bf16=bf16))
    agent.prepare(dataset)
    sampler = dataset.sampler(seed=seed)
    batch_size = settings.batch_size

    def step() -> None:
        agent.update(sampler.sample(batch_size))

    return agent, step


def build_d3rlpy(algo: str, mdp_dataset: Any, settings: Settings, seed: int) -> tuple[Any, Step]:
    import d3rlpy
    from d3rlpy.algos.utility import build_scalers_with_transition_picker

    d3rlpy.seed(seed)
    learner = d3rlpy_config(algo, settings).create(device="cpu:0")
    build_scalers_with_transition_picker(learner, mdp_dataset)  # what d3rlpy's fit() does first
    learner.build_with_dataset(mdp_dataset)
    batch_size = settings.batch_size

    def step() -> None:
        learner.update(mdp_dataset.sample_transition_batch(batch_size))

    return learner, step


def d3rlpy_update_only(algo: str, mdp_dataset: Any, settings: Settings, batches: int = 32) -> Step:
    """d3rlpy's update on minibatches drawn beforehand (cycled): its step without its per-transition sampler."""
    learner, _ = build_d3rlpy(algo, mdp_dataset, settings, seed=0)
    drawn = [mdp_dataset.sample_transition_batch(settings.batch_size) for _ in range(batches)]
    position = [0]

    def step() -> None:
        learner.update(drawn[position[0] % batches])
        position[0] += 1

    return step


class D3rlpyPolicy:
    """A d3rlpy algorithm behind trajlab's `act(observations, deterministic)` (for trajlab.eval.evaluate)."""

    def __init__(self, learner: Any) -> None:
        self.learner = learner

    def act(self, observations: np.ndarray, deterministic: bool = True) -> np.ndarray:
        batch = np.asarray(observations, dtype=np.float32)
        single = batch.ndim == 1
        batch = batch[None] if single else batch
        actions = self.learner.predict(batch) if deterministic else self.learner.sample_action(batch)
        return actions[0] if single else actions


# --- FLOPs ------------------------------------------------------------------------------------------------
FORWARD, THROUGH, TRAIN = 1, 2, 3
"""Cost of a pass in forwards: no grad; gradients to the inputs only; full backward (weights and inputs)."""


def mlp_flops(*widths: int) -> int:
    """Forward matmul FLOPs per row of an MLP with these layer widths (input, hidden..., output)."""
    return sum(2 * a * b for a, b in zip(widths[:-1], widths[1:]))


def count_flops(algo: str, library: str, obs: int, act: int, hidden: tuple[int, ...], batch: int) -> dict[str, Any]:
    """Matmul FLOPs of one update: a list of (network pass, rows, cost factor) as each library runs it."""
    h = tuple(hidden)
    critic, value = mlp_flops(obs + act, *h, 1), mlp_flops(obs, *h, 1)
    b = batch
    passes: list[tuple[str, int, int, int]]  # (name, flops per row, rows, factor)
    if algo == "iql":
        actor = mlp_flops(obs, *h, act)
        passes = [("target critics Q'(s,a)", critic, 2 * b, FORWARD), ("V(s) loss", value, b, TRAIN),
                  ("V(s) advantage", value, b, FORWARD), ("actor log pi(a|s)", actor, b, TRAIN),
                  ("V(s') target", value, b, FORWARD), ("critics Q(s,a)", critic, 2 * b, TRAIN)]
        if library == "d3rlpy":  # Q'(s,a) computed twice (value loss, advantage weights)
            passes.append(("target critics Q'(s,a) again", critic, 2 * b, FORWARD))
    elif algo == "td3_bc":
        actor = mlp_flops(obs, *h, act)
        half = b // 2  # the actor step runs every second update
        passes = [("target actor pi'(s')", actor, b, FORWARD), ("target critics", critic, 2 * b, FORWARD),
                  ("critics Q(s,a)", critic, 2 * b, TRAIN), ("actor pi(s) (every 2nd)", actor, half, TRAIN)]
        if library == "trajlab":
            passes.append(("critic 0 on pi(s) (every 2nd)", critic, half, THROUGH))
        else:  # d3rlpy evaluates both critics, uses the first, and runs the full backward of both
            passes += [("critic 0 on pi(s) (every 2nd)", critic, half, TRAIN),
                       ("critic 1 on pi(s), unused, zero gradients (every 2nd)", critic, half, TRAIN)]
    elif algo == "cql":
        actor = mlp_flops(obs, *h, 2 * act)
        n = 10
        passes = [("actor on s and s' (sampled actions)", actor, 2 * b, FORWARD),
                  ("critics on 3n sampled + data actions", critic, 2 * b * (3 * n + 1), TRAIN),
                  ("actor pi(s') for the target", actor, b, FORWARD), ("target critics", critic, 2 * b, FORWARD),
                  ("actor pi(s)", actor, b, TRAIN),
                  ("critics on pi(s)", critic, 2 * b, THROUGH if library == "trajlab" else TRAIN)]
        if library == "d3rlpy":  # Q(s, a_data) is evaluated twice (TD error and conservative term)
            passes.append(("critics Q(s,a) again", critic, 2 * b, TRAIN))
    elif algo == "bcq":
        critic, actor = mlp_flops(obs + act, 400, 300, 1), mlp_flops(obs + act, 400, 300, act)
        latent = 2 * act
        encoder, decoder = mlp_flops(obs + act, 750, 750, 2 * latent), mlp_flops(obs + latent, 750, 750, act)
        if library == "d3rlpy":  # separate mean and log-std heads of the same total size
            encoder = mlp_flops(obs + act, 750, 750) + 2 * 750 * 2 * latent
        n = 10
        passes = [("VAE encoder", encoder, b, TRAIN), ("VAE decoder", decoder, b, TRAIN),
                  ("decoder, n candidates at s'", decoder, n * b, FORWARD),
                  ("target perturbation, n at s'", actor, n * b, FORWARD),
                  ("target critics, n at s'", critic, 2 * n * b, FORWARD), ("critics Q(s,a)", critic, 2 * b, TRAIN),
                  ("decoder proposals at s", decoder, b, FORWARD if library == "trajlab" else TRAIN),
                  ("perturbation actor", actor, b, TRAIN),
                  ("critic 0 on the actor's action", critic, b, THROUGH if library == "trajlab" else TRAIN),
                  ("critic 1, unused", critic, b, THROUGH if library == "trajlab" else TRAIN)]
    else:
        raise ValueError(algo)
    total = sum(flops * rows * factor for _, flops, rows, factor in passes)
    return {"flops_per_update": int(total),
            "passes": [{"pass": name, "flops_per_row": f, "rows": r, "factor": k} for name, f, r, k in passes]}


def torch_counted_flops(step: Step, updates: int = 2) -> float:
    """Matmul FLOPs per update as torch.utils.flop_counter counts them while the update runs (a check of
    `count_flops`; it skips input gradients nobody asked for, so it reads 1-2% lower)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        for _ in range(updates):
            step()
    return counter.get_total_flops() / updates


def matmul_peak(threads: int, dtype: torch.dtype = torch.float32, size: int = 256, seconds: float = 2.0) -> float:
    """Best GFLOP/s of [size, size] @ [size, size] products (out= preallocated) on `threads` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    out = torch.empty(size, size, dtype=dtype)
    for _ in range(200):
        torch.mm(a, b, out=out)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(200):
            torch.mm(a, b, out=out)
        best = max(best, 200 * 2 * size**3 / (time.perf_counter() - start))
    return best / 1e9


# --- timing -----------------------------------------------------------------------------------------------
CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
clock = CLOCK["wall"]
"""The timer of `time_steps`: wall time, or this process's CPU time (`--clock cpu`: with 1 thread on a shared
machine it leaves out the time slices other processes take; with more threads OpenMP's spinning counts)."""


def time_steps(step: Step, updates: int) -> float:
    """Training steps per second over `updates` consecutive steps."""
    start = clock()
    for _ in range(updates):
        step()
    return updates / (clock() - start)


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def time_algorithm(algo: str, dataset: Any, mdp_dataset: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Warm all up, then alternate timed blocks: trajlab, d3rlpy, [trajlab-bf16,] trajlab, d3rlpy, ..."""
    settings = Settings(tuple(args.hidden), args.batch_size, total_updates=1_000_000)
    steps = {"trajlab": build_trajlab(algo, dataset, settings, seed=0)[1],
             "d3rlpy": build_d3rlpy(algo, mdp_dataset, settings, seed=0)[1],
             "d3rlpy-update-only": d3rlpy_update_only(algo, mdp_dataset, settings)}
    if args.bf16 and algo in BF16_ALGOS:
        steps["trajlab-bf16"] = build_trajlab(algo, dataset, settings, seed=0, bf16=True)[1]
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    counted = {name: torch_counted_flops(step) for name, step in steps.items()}
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.repeats):
        for name, step in steps.items():
            rates[name].append(time_steps(step, args.updates))
    result: dict[str, Any] = {"updates_per_s": {name: spread(values) for name, values in rates.items()},
                              "runs": rates, "torch_counted_flops_per_update": counted}
    medians = {name: values["median"] for name, values in result["updates_per_s"].items()}
    result["ratio"] = medians["trajlab"] / medians["d3rlpy"]
    result["ratio_update_only"] = medians["trajlab"] / medians["d3rlpy-update-only"]
    if "trajlab-bf16" in medians:
        result["ratio_bf16"] = medians["trajlab-bf16"] / medians["d3rlpy"]
    return result


def time_overhead(algo: str, dataset: Any, mdp_dataset: Any, updates: int = 200) -> dict[str, float]:
    """Milliseconds per training step with 8-unit networks and 8-row batches: what an update costs besides its
    arithmetic (Python, op dispatch, autograd bookkeeping, optimiser and sampler calls)."""
    tiny = Settings((8, 8), 8, total_updates=1_000_000, bcq_hidden=(8, 8), bcq_vae_hidden=(8, 8))
    steps = {"trajlab": build_trajlab(algo, dataset, tiny, seed=0)[1],
             "d3rlpy": build_d3rlpy(algo, mdp_dataset, tiny, seed=0)[1]}
    for step in steps.values():
        time_steps(step, 20)
    return {name: 1000.0 / max(time_steps(step, updates) for _ in range(3)) for name, step in steps.items()}


def time_samplers(dataset: Any, mdp_dataset: Any, batch_size: int, draws: int = 300) -> dict[str, float]:
    """Milliseconds per minibatch of each library's sampler alone (part of every timed step)."""
    sampler = dataset.sampler(seed=0)
    timings = {"trajlab": lambda: sampler.sample(batch_size),
               "d3rlpy": lambda: mdp_dataset.sample_transition_batch(batch_size)}
    return {name: 1000.0 / time_steps(draw, draws) for name, draw in timings.items()}


# --- returns ----------------------------------------------------------------------------------------------
def return_run(library: str, algo: str, seed: int, dataset_path: str, updates: int, hidden: tuple[int, ...],
               batch_size: int, episodes: int) -> dict[str, Any]:
    """Train one agent for `updates` updates and evaluate it (runs in a worker process, 1 thread)."""
    from trajlab.data.dataset import TransitionDataset
    from trajlab.eval import evaluate

    torch.set_num_threads(1)
    quiet_d3rlpy()
    dataset = TransitionDataset.load(dataset_path)
    settings = Settings(hidden, batch_size, total_updates=updates)
    if library == "trajlab":
        agent, step = build_trajlab(algo, dataset, settings, seed)
    else:
        learner, step = build_d3rlpy(algo, d3rlpy_dataset(dataset), settings, seed)
        agent = D3rlpyPolicy(learner)
    start = time.perf_counter()
    for _ in range(updates):
        step()
    train_time = time.perf_counter() - start
    env_id = dataset.metadata["env_id"]
    result = evaluate(agent, env_id, episodes=episodes, seed=10_000 + seed, metadata=dataset.metadata)
    # the stored results' "normalized_score" has always been the score against the dataset's behaviour
    # references (see the docstring); trajlab's own normalized_score is D4RL's
    return {"library": library, "algo": algo, "seed": seed, "updates": updates, "train_time_s": train_time,
            "normalized_score": result.mean_behaviour_normalized_score, "mean_return": result.mean_return,
            "returns": [float(r) for r in result.returns]}


def compare_returns(args: argparse.Namespace) -> list[dict[str, Any]]:
    jobs = [(library, algo, seed) for algo in args.return_algos for seed in args.seeds
            for library in ("trajlab", "d3rlpy")]
    context = get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.return_workers, mp_context=context) as pool:
        futures = [pool.submit(return_run, library, algo, seed, str(args.dataset), args.return_updates,
                               tuple(args.hidden), args.batch_size, args.eval_episodes)
                   for library, algo, seed in jobs]
        results = []
        for future in futures:
            results.append(future.result())
            row = results[-1]
            print(f"  {row['algo']:7s} {row['library']:8s} seed {row['seed']}: score {row['normalized_score']:.1f} "
                  f"(return {row['mean_return']:.1f}, {row['train_time_s']:.0f} s)", flush=True)
    return results


def summarise_returns(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for row in runs:
        entry = summary.setdefault(row["algo"], {}).setdefault(row["library"], {"scores": []})
        entry["scores"].append(row["normalized_score"])
    for libraries in summary.values():
        for entry in libraries.values():
            scores = entry["scores"]
            entry.update(mean=float(np.mean(scores)), std=float(np.std(scores)), min=min(scores), max=max(scores))
    return summary


def quiet_d3rlpy() -> None:
    """d3rlpy logs every automatic choice through structlog at info level; keep warnings only."""
    import logging

    import d3rlpy  # noqa: F401  (configures structlog on import; we override after)
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


# --- main -------------------------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    import d3rlpy

    import trajlab

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "d3rlpy": d3rlpy.__version__, "trajlab": trajlab.__version__, "trajlab_commit": commit or None,
            "load_average_at_start": list(os.getloadavg()), "gpu": torch.cuda.is_available()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    from trajlab.core.errors import TrajlabError
    from trajlab.core.io import write_json_atomic
    from trajlab.data.dataset import TransitionDataset

    if not args.dataset.exists():
        raise SystemExit(f"error: dataset {args.dataset} not found (trajlab data generate --env Hopper-v5 "
                         f"--quality medium-replay --preset quick --out {args.dataset})")
    try:
        dataset = TransitionDataset.load(args.dataset)
    except TrajlabError as error:
        raise SystemExit(f"error: {error}") from error
    quiet_d3rlpy()
    torch.set_num_threads(args.threads)
    global clock
    clock = CLOCK[args.clock]
    report: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                              "command": " ".join(["python benchmarks/offline_vs_d3rlpy.py",
                                                   *(sys.argv[1:] if argv is None else argv)]),
                              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                              "machine": machine(), "mapping": MAPPING, "dataset": str(args.dataset),
                              "dataset_size": len(dataset)}
    if args.algos:
        time_all(args, dataset, report)
    if args.return_algos:
        print(f"returns after {args.return_updates} updates:", flush=True)
        runs = compare_returns(args)
        report["returns"] = {"runs": runs, "summary": summarise_returns(runs)}
    report["load_average_at_end"] = list(os.getloadavg())
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.json_out, report)
    print(f"wrote {args.json_out}")
    return report


def time_all(args: argparse.Namespace, dataset: Any, report: dict[str, Any]) -> None:
    """The speed half: matmul peaks, samplers, then each algorithm's interleaved timing (into `report`)."""
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.1f}: other processes share the CPU, timings (2 threads especially) "
              "will be low and noisy", flush=True)
    report["matmul_peak_gflops"] = peak = matmul_peak(args.threads)
    report["bf16_matmul_peak_gflops"] = matmul_peak(args.threads, torch.bfloat16)
    print(f"matmul peak ({args.threads} threads): float32 {peak:.0f} GFLOP/s, bfloat16 "
          f"{report['bf16_matmul_peak_gflops']:.0f} GFLOP/s", flush=True)
    mdp_dataset = d3rlpy_dataset(dataset)
    report["sampler_ms"] = time_samplers(dataset, mdp_dataset, args.batch_size)
    report["timing"] = {}
    for algo in args.algos:
        result = time_algorithm(algo, dataset, mdp_dataset, args)
        result["overhead_ms"] = time_overhead(algo, dataset, mdp_dataset)
        for name, rate in result["updates_per_s"].items():
            library = "d3rlpy" if name.startswith("d3rlpy") else "trajlab"
            flops = count_flops(algo, library, dataset.observation_dim, dataset.action_dim, tuple(args.hidden),
                                args.batch_size)
            flops["gflops_per_s"] = flops["flops_per_update"] * rate["median"] / 1e9
            flops["percent_of_peak"] = 100.0 * flops["gflops_per_s"] / peak  # of the float32 peak
            flops["ceiling_updates_per_s"] = peak * 1e9 / flops["flops_per_update"]
            result.setdefault("flops", {})[name] = flops
        report["timing"][algo] = result
        print(format_timing(algo, result), flush=True)
    report["matmul_peak_gflops_end"] = matmul_peak(args.threads)


def format_timing(algo: str, result: dict[str, Any]) -> str:
    rows = []
    for name, rate in result["updates_per_s"].items():
        flops = result["flops"][name]
        rows.append(f"  {algo:7s} {name:18s} {rate['median']:7.1f} updates/s [{rate['min']:.1f}-{rate['max']:.1f}]"
                    f"  {flops['flops_per_update'] / 1e9:.3f} GFLOP/update  {flops['percent_of_peak']:5.1f}% of peak")
    overhead = result["overhead_ms"]
    rows.append(f"  {algo:7s} overhead per step (8-unit nets, batch 8): trajlab {overhead['trajlab']:.2f} ms, "
                f"d3rlpy {overhead['d3rlpy']:.2f} ms")
    rows.append(f"  {algo:7s} ratio {result['ratio']:.2f}x (to d3rlpy's update alone "
                f"{result['ratio_update_only']:.2f}x)" +
                (f" (bf16: {result['ratio_bf16']:.2f}x)" if "ratio_bf16" in result else ""))
    return "\n".join(rows)


def markdown(reports: list[dict[str, Any]]) -> str:
    """Markdown tables of saved results (timing and/or returns), as docs/benchmarks.md shows them."""
    lines: list[str] = []
    for report in reports:
        if report.get("timing"):
            lines += _timing_table(report)
        if report.get("returns"):
            lines += _returns_table(report)
    return "\n".join(lines)


def _timing_table(report: dict[str, Any]) -> list[str]:
    peak = report["matmul_peak_gflops"]
    lines = [f"float32 matmul peak {peak:.0f} GFLOP/s, bfloat16 {report['bf16_matmul_peak_gflops']:.0f} GFLOP/s "
             f"({report['args']['threads']} threads, {report['args'].get('clock', 'wall')} clock; "
             f"{report['matmul_peak_gflops_end']:.0f} GFLOP/s float32 at the end; load average "
             f"{report['machine']['load_average_at_start'][0]:.1f} at the start, "
             f"{report['load_average_at_end'][0]:.1f} at the end); sampler ms/batch: trajlab "
             f"{report['sampler_ms']['trajlab']:.3f}, d3rlpy "
             f"{report['sampler_ms']['d3rlpy']:.3f}", "",
             "| algorithm | library | updates/s median [min-max] | ratio | GFLOP/update (torch count) | GFLOP/s "
             "| % of fp32 peak | ceiling updates/s | overhead ms/step |",
             "|---|---|---|---|---|---|---|---|---|"]
    order = ("trajlab", "d3rlpy", "d3rlpy-update-only", "trajlab-bf16")
    for algo, result in report["timing"].items():
        for name in sorted(result["updates_per_s"], key=order.index):
            rate, flops = result["updates_per_s"][name], result["flops"][name]
            ratio = {"trajlab": result["ratio"], "trajlab-bf16": result.get("ratio_bf16"),
                     "d3rlpy-update-only": result["ratio_update_only"]}.get(name)
            overhead = result["overhead_ms"].get(name)
            lines.append(
                f"| {algo} | {name} | {rate['median']:.1f} [{rate['min']:.1f}-{rate['max']:.1f}] | "
                f"{'' if ratio is None else f'{ratio:.2f}x'} | {flops['flops_per_update'] / 1e9:.3f} "
                f"({result['torch_counted_flops_per_update'][name] / 1e9:.3f}) | {flops['gflops_per_s']:.0f} | "
                f"{flops['percent_of_peak']:.0f}% | {flops['ceiling_updates_per_s']:.0f} | "
                f"{'' if overhead is None else f'{overhead:.2f}'} |")
    return lines + [""]


def _returns_table(report: dict[str, Any]) -> list[str]:
    seeds = report["args"]["seeds"]
    lines = [f"normalised score after {report['args']['return_updates']} updates "
             f"({report['args']['eval_episodes']} episodes per seed)", "",
             "| algorithm | library | " + " | ".join(f"seed {seed}" for seed in seeds) + " | mean ± std | range |",
             "|---|---|" + "---|" * len(seeds) + "---|---|"]
    for algo, libraries in report["returns"]["summary"].items():
        for library in sorted(libraries, key=("trajlab", "d3rlpy").index):
            entry = libraries[library]
            scores = " | ".join(f"{score:.1f}" for score in entry["scores"])
            lines.append(f"| {algo} | {library} | {scores} | {entry['mean']:.1f} ± {entry['std']:.1f} | "
                         f"{entry['min']:.1f} to {entry['max']:.1f} |")
    return lines + [""]


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--markdown-from":
        print(markdown([json.loads(Path(path).read_text()) for path in sys.argv[2:]]))
    else:
        main()
