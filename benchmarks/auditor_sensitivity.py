"""TrajAuditor's sensitivity to its settings: shadow fine-tuning length, observation noise and whose critic
scores the policies, on agents trained by benchmarks/forgetting.py (run that first, with the same --out).

For each setting: the efficacy evaluation (original agent = member of the forget set, agent retrained without it
= non-member, the auditor's control episodes = members of both), and for four agents (the original, fine-tuned
on D_r, TrajDeleter with the quick forget preset, retrained) the share of the forget set and of the control
group judged forgotten. An auditor that works calls the original and the fine-tuned agent "retained" on both,
and flags the forget set of an agent that forgot it more often than its controls. Shadows are trained once per
shadow length and shared by the noise/critic settings.

    python benchmarks/auditor_sensitivity.py --dataset hopper-mr.hdf5 --out bench-forgetting --algos td3_bc,iql
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from trajlab.algos import start_from_checkpoint
from trajlab.audit import AuditConfig, TrajAuditor, efficacy_evaluation
from trajlab.commands.forget import load_forget_config
from trajlab.data import TransitionDataset
from trajlab.unlearning import RetrainConfig, unlearn
from trajlab.unlearning.base import select_fraction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out", default="bench-forgetting")
    parser.add_argument("--algos", default="td3_bc,iql")
    parser.add_argument("--fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", default="0,0.01,0.08")
    parser.add_argument("--critics", default="own", help="own and/or original (comma-separated)")
    parser.add_argument("--shadow-steps", default="500,5000")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = TransitionDataset.load(args.dataset)
    forget = select_fraction(dataset, args.fraction, args.seed)
    remaining = dataset.without(forget)
    settings = load_forget_config("quick", agent="unused", dataset=args.dataset, out="unused", seed=args.seed)
    rows = []
    for algo in args.algos.split(","):
        original = start_from_checkpoint(Path(args.out) / f"{algo}_original" / "checkpoints" / "final.safetensors")
        agents = {"original": original,
                  "finetune": unlearn(original, dataset, forget, replace(settings.finetune, seed=args.seed)),
                  "trajdeleter": unlearn(original, dataset, forget, replace(settings.trajdeleter, seed=args.seed)),
                  "retrain": unlearn(original, dataset, forget, RetrainConfig())}
        for shadow_steps in (int(s) for s in args.shadow_steps.split(",")):
            base = TrajAuditor(original, remaining, AuditConfig(shadow_steps=shadow_steps, seed=args.seed)).fit()
            for critic in args.critics.split(","):
                for noise in (float(n) for n in args.noise.split(",")):
                    config = replace(base.config, noise_scale=noise, value_critic=critic)
                    row = {"algo": algo, "shadow_steps": shadow_steps, "critic": critic, "noise": noise,
                           **audit_row(TrajAuditor(original, remaining, config, shadows=base.shadows), agents,
                                       dataset, forget)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    (Path(args.out) / "auditor_sensitivity.json").write_text(json.dumps(rows, indent=2) + "\n")


def audit_row(auditor: TrajAuditor, agents: dict, dataset: TransitionDataset, forget: np.ndarray) -> dict:
    audits = {name: auditor.audit(agent, dataset, forget) for name, agent in agents.items()}
    members = [verdict.episode_id for verdict in audits["original"].control]
    efficacy = efficacy_evaluation(auditor, agents["original"], agents["retrain"], dataset, forget, members)
    return {"f1": efficacy["f1"], "balanced_accuracy": efficacy["balanced_accuracy"],
            **{f"{name} forget/control": [audit.forgotten_rate, audit.control_forgotten_rate]
               for name, audit in audits.items()}}


if __name__ == "__main__":
    main()
