"""trajlab SAC against Stable-Baselines3 SAC: updates/s, env steps/s and final return at a fixed step budget.

Both libraries train on the same environment with the same networks (256x256), batch size, learning rates,
discount, Polyak factor, automatic entropy tuning (initial alpha 1, target entropy -|A|), learning_starts,
step budget and seeds. Each (library, seed) run is its own subprocess with the same torch thread count, and
the two libraries alternate seed by seed (SB3 first on even seeds, trajlab first on odd ones), so load from
other jobs on the machine hits both alike; compare the ratios, which are taken within this one run.

Speed: env steps/s = env steps / wall time of the training loop (no evaluation); updates/s = gradient updates
/ time inside the update calls, minibatch sampling included (SB3: time in `SAC.train`). Return: mean over
`--eval-episodes` deterministic episodes after training, through trajlab's `evaluate` for both (same seeds).

    python benchmarks/sac_vs_sb3.py --env Hopper-v5 --steps 20000 --learning-starts 5000 --seeds 0 1 2

needs `pip install -e ".[bench]"` (stable-baselines3).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from trajlab.core.io import write_json_atomic

LIBRARIES = ("sb3", "trajlab")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per run")
    parser.add_argument("--learning-starts", type=int, default=5_000, help="random-action steps before updates")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--hidden", type=int, default=256, help="width of both hidden layers (actor and critics)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads of every run")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="trajlab: torch.compile the SAC losses")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default benchmarks/results/...)")
    parser.add_argument("--worker", choices=LIBRARIES, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- workers: one training run each, in a fresh process ------------------------------------------------------
def evaluate_policy(act: Any, args: argparse.Namespace) -> dict[str, Any]:
    from trajlab.eval import evaluate

    class Adapter:
        def act(self, observations: np.ndarray, deterministic: bool = True) -> np.ndarray:
            return act(observations)

    result = evaluate(Adapter(), args.env, episodes=args.eval_episodes, seed=10_000 + args.seed)
    return {"mean_return": result.mean_return, "std_return": result.std_return,
            "returns": [float(r) for r in result.returns]}


def run_sb3(args: argparse.Namespace) -> dict[str, Any]:
    import stable_baselines3
    import torch
    from stable_baselines3 import SAC

    from trajlab.envs import make

    torch.set_num_threads(args.threads)
    model = SAC(
        "MlpPolicy", make(args.env, seed=args.seed), learning_rate=3e-4, buffer_size=args.steps,
        learning_starts=args.learning_starts, batch_size=args.batch_size, tau=0.005, gamma=0.99, train_freq=1,
        gradient_steps=1, ent_coef="auto", target_entropy="auto",
        policy_kwargs={"net_arch": [args.hidden, args.hidden]}, seed=args.seed, device="cpu", verbose=0,
    )
    update_time = [0.0]
    train = model.train

    def timed_train(*train_args: Any, **train_kwargs: Any) -> None:
        start = time.perf_counter()
        train(*train_args, **train_kwargs)
        update_time[0] += time.perf_counter() - start

    model.train = timed_train  # type: ignore[method-assign]
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps)
    learn_time = time.perf_counter() - start
    updates = int(model._n_updates)
    final = evaluate_policy(lambda obs: model.predict(obs, deterministic=True)[0], args)
    return {"library": "sb3", "version": stable_baselines3.__version__, "steps": int(model.num_timesteps),
            "updates": updates, "learn_time_s": learn_time, "env_steps_per_s": model.num_timesteps / learn_time,
            "updates_per_s": updates / update_time[0], "final_eval": final}


def run_trajlab(args: argparse.Namespace) -> dict[str, Any]:
    import trajlab
    from trajlab.algos import RuntimeOptions, new_agent
    from trajlab.algos.online.sac import SAC, SACConfig
    from trajlab.core.spec import SpaceSpec
    from trajlab.envs import make
    from trajlab.training.online import OnlineTrainConfig, train_online

    config = OnlineTrainConfig(
        algo="sac", env_id=args.env, total_steps=args.steps, learning_starts=args.learning_starts,
        batch_size=args.batch_size, buffer_size=args.steps, eval_every=0, checkpoint_every=0, log_every=args.steps,
        seed=args.seed, num_threads=args.threads,
    )
    agent_config = SACConfig(hidden=(args.hidden, args.hidden), batch_size=args.batch_size)
    agent = new_agent(SAC, SpaceSpec.from_env(make(args.env)), agent_config, seed=args.seed,
                      runtime=RuntimeOptions(compile=args.compile))
    start = time.perf_counter()
    result = train_online(agent, config, progress=False)
    learn_time = time.perf_counter() - start
    final = evaluate_policy(lambda obs: agent.act(obs, deterministic=True), args)
    return {"library": "trajlab", "version": trajlab.__version__, "steps": result.steps, "updates": result.updates,
            "learn_time_s": learn_time, "env_steps_per_s": result.env_steps_per_s,
            "updates_per_s": result.updates_per_s, "final_eval": final}


def worker(args: argparse.Namespace) -> None:
    result = run_sb3(args) if args.worker == "sb3" else run_trajlab(args)
    result["seed"] = args.seed
    print("RESULT " + json.dumps(result))


# --- the driver: interleaved subprocesses, then the summary -------------------------------------------------
def run_one(library: str, seed: int, argv: list[str]) -> dict[str, Any]:
    command = [sys.executable, __file__, *argv, "--worker", library, "--seed", str(seed)]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "MUJOCO_GL": "egl"})
    if completed.returncode != 0:
        raise SystemExit(f"{library} seed {seed} failed:\n{completed.stderr[-3000:]}")
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result["process_wall_s"] = time.perf_counter() - started
    result["load_average_after"] = os.getloadavg()[0]
    return result


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for library in LIBRARIES:
        mine = [run for run in runs if run["library"] == library]
        summary[library] = {
            "median_updates_per_s": float(np.median([r["updates_per_s"] for r in mine])),
            "median_env_steps_per_s": float(np.median([r["env_steps_per_s"] for r in mine])),
            "median_final_return": float(np.median([r["final_eval"]["mean_return"] for r in mine])),
            "final_returns": [r["final_eval"]["mean_return"] for r in mine],
        }
    ours, theirs = summary["trajlab"], summary["sb3"]
    summary["ratio_trajlab_over_sb3"] = {
        "updates_per_s": ours["median_updates_per_s"] / theirs["median_updates_per_s"],
        "env_steps_per_s": ours["median_env_steps_per_s"] / theirs["median_env_steps_per_s"],
        "per_seed_env_steps_per_s": [a["env_steps_per_s"] / b["env_steps_per_s"] for a, b in _pairs(runs)],
        "per_seed_updates_per_s": [a["updates_per_s"] / b["updates_per_s"] for a, b in _pairs(runs)],
    }
    return summary


def _pairs(runs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    by_key = {(run["library"], run["seed"]): run for run in runs}
    seeds = sorted({run["seed"] for run in runs})
    return [(by_key["trajlab", seed], by_key["sb3", seed]) for seed in seeds]


def print_table(summary: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    print(f"{'library':<8} {'seed':>4} {'updates/s':>10} {'env steps/s':>12} {'final return':>13}")
    for run in runs:
        print(f"{run['library']:<8} {run['seed']:>4} {run['updates_per_s']:>10.1f} {run['env_steps_per_s']:>12.1f} "
              f"{run['final_eval']['mean_return']:>13.1f}")
    for library in LIBRARIES:
        row = summary[library]
        print(f"{library:<8} {'med':>4} {row['median_updates_per_s']:>10.1f} {row['median_env_steps_per_s']:>12.1f} "
              f"{row['median_final_return']:>13.1f}")
    ratio = summary["ratio_trajlab_over_sb3"]
    print(f"trajlab/sb3: updates/s x{ratio['updates_per_s']:.2f}, env steps/s x{ratio['env_steps_per_s']:.2f}")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    started, runs = time.perf_counter(), []
    for index, seed in enumerate(args.seeds):
        for library in (LIBRARIES if index % 2 == 0 else LIBRARIES[::-1]):
            runs.append(run_one(library, seed, _worker_argv(args)))
            print(f"{library} seed {seed}: {runs[-1]['updates_per_s']:.1f} updates/s, "
                  f"return {runs[-1]['final_eval']['mean_return']:.1f}", flush=True)
    summary = summarise(runs)
    print_table(summary, runs)
    report = {"command": "python benchmarks/sac_vs_sb3.py " + " ".join(argv), "summary": summary, "runs": runs,
              "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "seed", "out")},
              "machine": _machine(), "total_wall_s": time.perf_counter() - started,
              "date": datetime.now(UTC).isoformat(timespec="seconds")}
    out = args.out or Path(__file__).parent / "results" / f"sac_vs_sb3_{args.env}_{args.steps}.json"
    write_json_atomic(out, report)
    print(f"wrote {out}")


def _worker_argv(args: argparse.Namespace) -> list[str]:
    argv = ["--env", args.env, "--steps", str(args.steps), "--learning-starts", str(args.learning_starts),
            "--hidden", str(args.hidden), "--batch-size", str(args.batch_size), "--threads", str(args.threads),
            "--eval-episodes", str(args.eval_episodes)]
    return argv + (["--compile"] if args.compile else [])


def _machine() -> dict[str, Any]:
    import torch

    return {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__, "load_average_end": os.getloadavg()}


if __name__ == "__main__":
    main()
