"""TrajAuditor's sensitivity to its settings: observation noise, shadow fine-tuning length and whose critic
scores the policies, on agents trained by benchmarks/forgetting.py (run that first, with the same --out).

For each setting, the efficacy evaluation (original agent = member of the forget set, agent retrained without it
= non-member, 15 remaining episodes as members of both) and the share of the forget set judged forgotten for
TrajDeleter with 1,000 and 10,000 updates. Shadows are trained once per shadow length and shared by the
noise/critic settings.

    python benchmarks/auditor_sensitivity.py --dataset hopper-mr.hdf5 --out bench-forgetting --algos td3_bc,iql
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from trajlab.algos import load_agent
from trajlab.audit import AuditConfig, TrajAuditor, efficacy_evaluation
from trajlab.data import TransitionDataset
from trajlab.unlearning import RetrainConfig, TrajDeleterConfig, unlearn
from trajlab.unlearning.base import select_fraction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out", default="bench-forgetting")
    parser.add_argument("--algos", default="td3_bc,iql")
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", default="0,0.01,0.02,0.08")
    parser.add_argument("--shadow-steps", default="500,5000")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = TransitionDataset.load(args.dataset)
    forget = select_fraction(dataset, args.fraction, args.seed)
    remaining = dataset.without(forget)
    members = np.sort(np.random.default_rng(args.seed).choice(remaining.episode_id_list, size=len(forget),
                                                              replace=False))
    rows = []
    for algo in args.algos.split(","):
        original = load_agent(Path(args.out) / f"{algo}_original" / "checkpoints" / "final.safetensors")
        retrained = unlearn(original, dataset, forget, RetrainConfig())
        deleted = {steps: unlearn(original, dataset, forget, TrajDeleterConfig(
            forget_steps=steps * 4 // 5, convergence_steps=steps // 5, block_length=steps // 10))
            for steps in (1000, 10000)}
        for shadow_steps in (int(s) for s in args.shadow_steps.split(",")):
            base = TrajAuditor(original, remaining, AuditConfig(shadow_steps=shadow_steps, seed=args.seed)).fit()
            for critic in ("own", "original"):
                for noise in (float(n) for n in args.noise.split(",")):
                    config = replace(base.config, noise_scale=noise, value_critic=critic)
                    auditor = TrajAuditor(original, remaining, config, shadows=base.shadows)
                    efficacy = efficacy_evaluation(auditor, original, retrained, dataset, forget, members)
                    row = {"algo": algo, "shadow_steps": shadow_steps, "critic": critic, "noise": noise,
                           "f1": efficacy["f1"], "balanced_accuracy": efficacy["balanced_accuracy"],
                           **{f"retained {k}": v for k, v in efficacy["retained_rate"].items()},
                           **{f"trajdeleter {steps} forgotten": auditor.audit(agent, dataset, forget).forgotten_rate
                              for steps, agent in deleted.items()}}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    (Path(args.out) / "auditor_sensitivity.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
