"""How should TrajAuditor's K shadow agents train on this machine: in this process, or in a process pool?

Both paths run the same fine-tunings with the same seeds (identical weights, see tests/oracle/test_auditor.py);
only the wall time differs. The in-process path is timed with 1 and with 2 torch threads, the pool with
`trajlab.execution`'s local executor (spawned workers, one thread each, two at a time on 2 cores).

    python benchmarks/shadow_training.py --dataset hopper-mr.hdf5 --algo td3_bc --shadows 5 --steps 500

Prints one JSON line per configuration.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from trajlab.algos import AGENTS, new_agent
from trajlab.audit import AuditConfig
from trajlab.audit.shadows import train_shadows
from trajlab.core.config import load_preset
from trajlab.data import TransitionDataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--algo", default="td3_bc")
    parser.add_argument("--presets", default="quick,paper", help="agent presets (network sizes) to time")
    parser.add_argument("--shadows", type=int, default=5)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--paths", default="in-process:1,in-process:2,local:1")
    args = parser.parse_args()
    dataset = TransitionDataset.load(args.dataset)
    agent_class = AGENTS.get(args.algo)
    for preset in args.presets.split(","):
        config = load_preset(agent_class.config_class, f"offline/{args.algo}", preset)
        original = new_agent(agent_class, dataset.spec, config, seed=0)
        original.prepare(dataset)
        for path in args.paths.split(","):
            executor, threads = path.split(":")
            torch.set_num_threads(int(threads))
            audit = AuditConfig(num_shadows=args.shadows, shadow_steps=args.steps, executor=executor)
            started = time.perf_counter()
            train_shadows(original, dataset, audit)
            seconds = time.perf_counter() - started
            print(json.dumps({"algo": args.algo, "preset": preset, "executor": executor, "threads": int(threads),
                              "shadows": args.shadows, "steps": args.steps, "seconds": round(seconds, 2),
                              "updates_per_s": round(args.shadows * args.steps / seconds, 1)}), flush=True)


if __name__ == "__main__":
    main()
