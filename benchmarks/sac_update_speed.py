"""Where SAC's update time goes: FLOPs per update and updates/s of trajlab variants and SB3, in one process.

Variants run in interleaved rounds on the same replay data, so load from other jobs hits them alike:
  trajlab          the default agent (fused Adam, twin critics as one batched ensemble)
  trajlab-foreach  the same with the multi-tensor (foreach) Adam instead of the fused kernel
  trajlab-compile  RuntimeOptions(compile=True): torch.compile of the loss computations
  sb3              Stable-Baselines3 SAC's `train` (same sizes; needs the bench extra)
  masked           PIToD's masked SAC at its paper settings (K = 20 sub-networks of 128 x 128 with layer norm,
                   policy every 20th update; configs/online/masked_sac/paper.yaml), on a buffer with group masks
  masked-every     the same networks with the policy updated every update, as the plain variants do
  masked-independent  `masked` with member_coupling=independent (every member its own SAC agent)
  unmasked         plain SAC with the masked preset's settings but one network each (128 x 128, layer norm in the
                   critics, policy every 20th update): what the K = 20 ensembles add to the same schedule
FLOPs per update come from torch.utils.flop_counter for both libraries; `--profile` adds the torch.profiler
table of the trajlab update.

    python benchmarks/sac_update_speed.py --hidden 256 --batch-size 256 --threads 1 --rounds 8
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trajlab.algos.base import RuntimeOptions, new_agent
from trajlab.algos.online.masked_sac import MaskedSAC, MaskedSACConfig
from trajlab.algos.online.sac import SAC, SACConfig
from trajlab.core.config import from_dict, load_yaml
from trajlab.core.io import write_json_atomic
from trajlab.core.spec import SpaceSpec
from trajlab.data.masks import GroupMasks
from trajlab.data.replay import ReplayBuffer

UPDATES_PER_ROUND = 20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="Hopper-v5")
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--variants", default="trajlab,trajlab-foreach,trajlab-compile,sb3")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--out", type=Path, default=None)
    return parser.parse_args()


def random_replay(spec: SpaceSpec, size: int = 5000, group_masks: GroupMasks | None = None) -> ReplayBuffer:
    rng = np.random.default_rng(0)
    replay = ReplayBuffer(spec.observation_dim, spec.action_dim, size, group_masks=group_masks)
    for step in range(size):
        replay.add(rng.normal(size=spec.observation_dim), rng.uniform(-1, 1, spec.action_dim), float(rng.normal()),
                   rng.normal(size=spec.observation_dim), False, step % 1000 == 999)
    return replay


PITOD_VARIANTS = ("masked", "masked-every", "masked-independent", "unmasked")


def pitod_preset_variant(name: str, spec: SpaceSpec, args: argparse.Namespace) -> tuple[SAC, ReplayBuffer]:
    """The masked SAC with the paper preset's agent settings (a replay whose rows carry group masks), or the
    plain SAC on the same settings."""
    settings = load_yaml(Path(__file__).parents[1] / "configs" / "online" / "masked_sac" / "paper.yaml")["agent"]
    settings = settings | {"batch_size": args.batch_size, "actor_every": 1 if name == "masked-every" else 20,
                           "member_coupling": "independent" if name == "masked-independent" else "mean"}
    if name == "unmasked":
        plain = {key: value for key, value in settings.items() if key in {f.name for f in fields(SACConfig)}}
        return new_agent(SAC, spec, from_dict(SACConfig, plain), seed=0), random_replay(spec)
    agent = new_agent(MaskedSAC, spec, from_dict(MaskedSACConfig, settings), seed=0)
    return agent, random_replay(spec, group_masks=agent.group_masks)


def trajlab_variant(name: str, spec: SpaceSpec, args: argparse.Namespace) -> SAC:
    runtime = RuntimeOptions(compile=name == "trajlab-compile")
    agent = new_agent(SAC, spec, SACConfig(hidden=(args.hidden, args.hidden)), seed=0, runtime=runtime)
    if name == "trajlab-foreach":
        agent.optimizers = {key: torch.optim.Adam(opt.param_groups[0]["params"], lr=opt.param_groups[0]["lr"],
                                                  foreach=True) for key, opt in agent.optimizers.items()}
    return agent


def sb3_model(args: argparse.Namespace) -> Any:
    from stable_baselines3 import SAC as SB3SAC

    from trajlab.envs import make

    model = SB3SAC("MlpPolicy", make(args.env, seed=0), learning_starts=2000, batch_size=args.batch_size,
                   policy_kwargs={"net_arch": [args.hidden, args.hidden]}, seed=0, device="cpu", verbose=0)
    model.learn(2000)  # fills its replay buffer with random-action steps, no updates yet
    return model


def build(args: argparse.Namespace, spec: SpaceSpec) -> dict[str, Callable[[], None]]:
    replay, rng = random_replay(spec), np.random.default_rng(1)
    runs: dict[str, Callable[[], None]] = {}
    for name in args.variants.split(","):
        if name == "sb3":
            model = sb3_model(args)
            runs[name] = lambda model=model: model.train(gradient_steps=UPDATES_PER_ROUND, batch_size=args.batch_size)
        else:
            agent, replay_of = (pitod_preset_variant(name, spec, args) if name in PITOD_VARIANTS
                                else (trajlab_variant(name, spec, args), replay))

            def updates(agent: SAC = agent, replay: ReplayBuffer = replay_of) -> None:
                for _ in range(UPDATES_PER_ROUND):
                    agent.update(replay.sample(args.batch_size, rng))

            runs[name] = updates
    torch.set_num_threads(args.threads)  # SB3's setup may have changed it
    return runs


def flops_per_update(runs: dict[str, Callable[[], None]]) -> dict[str, float]:
    from torch.utils.flop_counter import FlopCounterMode

    counted = {}
    for name in ("trajlab", "sb3", *PITOD_VARIANTS):
        if name in runs:
            counter = FlopCounterMode(display=False)
            with counter:
                runs[name]()
            counted[name] = counter.get_total_flops() / UPDATES_PER_ROUND
    return counted


def timed_rounds(runs: dict[str, Callable[[], None]], rounds: int) -> dict[str, list[float]]:
    for run in runs.values():
        run()  # warm-up (and compilation)
    speeds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            speeds[name].append(UPDATES_PER_ROUND / (time.perf_counter() - start))
    return speeds


def print_profile(spec: SpaceSpec, args: argparse.Namespace) -> None:
    from torch.profiler import profile

    agent, replay, rng = trajlab_variant("trajlab", spec, args), random_replay(spec), np.random.default_rng(2)
    for _ in range(5):
        agent.update(replay.sample(args.batch_size, rng))
    with profile() as prof:
        for _ in range(UPDATES_PER_ROUND):
            agent.update(replay.sample(args.batch_size, rng))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    from trajlab.envs import make

    spec = SpaceSpec.from_env(make(args.env))
    runs = build(args, spec)
    flops = flops_per_update(runs)
    speeds = timed_rounds(runs, args.rounds)
    summary = {name: {"median_updates_per_s": float(np.median(v)), "max_updates_per_s": float(np.max(v))}
               for name, v in speeds.items()}
    for name, row in summary.items():
        print(f"{name:<16} median {row['median_updates_per_s']:7.1f}  max {row['max_updates_per_s']:7.1f} updates/s")
    for name, value in flops.items():
        print(f"{name:<16} {value / 1e6:7.1f} MFLOP per update")
    if args.profile:
        print_profile(spec, args)
    name = f"sac_update_speed_{args.hidden}x{args.hidden}_b{args.batch_size}_t{args.threads}.json"
    out = args.out or Path(__file__).parent / "results" / name
    write_json_atomic(out, {"settings": vars(args) | {"out": str(out)}, "summary": summary, "speeds": speeds,
                            "mflop_per_update": {k: v / 1e6 for k, v in flops.items()}})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
