"""The membership attack against a model that overfits, beside DP at epsilon 10 on the same members: whether the
attack can find members where there are members to find (issue #12: >= 10% TPR at 1% FPR without DP, <= 1.5%
at epsilon <= 10).

Public data: the random and medium datasets of one `trajlab data generate` work folder; private data: its
expert dataset. One pre-training on the public data, then fine-tunings on the same few private members (the
private data's `--member-fraction`, split with `--seed`; every other private transition is a non-member):
without DP for many epochs at a higher learning rate (the model meant to overfit), without DP for 5 epochs,
DP at (10, 1e-6) for 5 epochs (the paper's schedule) and DP at (10, 1e-6) for `--dp-long-epochs` at the
overfitting run's learning rate. Each is attacked with both scores (`loss` and `calibrated`, the public
pre-trained model as reference) from one pass of the library's attack, on the raw weights, and on the EMA
weights for the runs in `--ema-for`.

    python benchmarks/privacy_attack_reference.py --public /tmp/pa/hopper-random.hdf5,/tmp/pa/hopper-medium.hdf5 \\
        --private /tmp/pa/hopper-expert.hdf5 --work /tmp/pa/bench \\
        --out benchmarks/results/privacy_attack_reference_quick.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

GOAL_NON_DP_TPR = 0.10
GOAL_DP_TPR = 0.015


def finetune(args: argparse.Namespace, name: str, *, private: bool, epochs: int,
             learning_rate: float | None = None) -> dict[str, Any]:
    """One fine-tuning of the shared pre-trained model on the shared members (seed and fraction fixed)."""
    from trajlab.commands.synth import FinetuneConfig, load_synth_config, run_finetune

    dp = {"epsilon": args.epsilon, "delta": args.delta, "epochs": epochs, "member_fraction": args.member_fraction}
    config = load_synth_config(FinetuneConfig, "finetune", "quick", pretrained=str(args.work / "pre"),
                               private=args.private, out=str(args.work / name), seed=args.seed, threads=1,
                               overwrite=True, private_training=private, dp=dp,
                               optim={"learning_rate": learning_rate})
    result = run_finetune(config)
    return {key: result[key] for key in ("privacy", "members", "non_members", "final_loss", "steps",
                                         "wall_time_s")} | {"epochs": epochs, "learning_rate":
                                                            config.optim.learning_rate, "dp": private}


def attack(args: argparse.Namespace, name: str, use_ema: bool) -> dict[str, Any]:
    """Both scores on one model: the members against every held-out private transition."""
    from trajlab.commands.synth import read_members
    from trajlab.data.dataset import TransitionDataset
    from trajlab.privacy.membership import AttackConfig, attack_metrics, score_table
    from trajlab.privacy.training import load_model

    target = load_model(args.work / name / "checkpoints" / "final.safetensors")
    reference = load_model(args.work / "pre" / "checkpoints" / "final.safetensors")
    members, non_members = read_members(args.work / name)
    private = TransitionDataset.load(args.private)
    config = AttackConfig(sigmas=tuple(args.sigmas), repeats=args.repeats, use_ema=use_ema)
    started = time.perf_counter()
    tables = [score_table(target, private.subset_transitions(ids), config, args.attack_seed, reference)
              for ids in (members, non_members)]
    scores = {score: attack_metrics(tables[0][score], tables[1][score]) for score in tables[0]}
    return {"weights": "ema" if use_ema else "raw", "sigmas": list(config.sigmas), "repeats": config.repeats,
            "scores": scores, "wall_time_s": time.perf_counter() - started}


def goals(runs: dict[str, Any], score: str) -> dict[str, Any]:
    """Issue #12's two attack goals, on the raw weights with the given score."""
    def tpr(name: str) -> float:
        return runs[name]["attack"]["raw"]["scores"][score]["tpr_at_0.01_fpr"]

    return {"score": score, "non_dp_overfit_tpr_at_1pct_fpr_ge_10pct": tpr("nodp_overfit") >= GOAL_NON_DP_TPR,
            "dp_eps10_tpr_at_1pct_fpr_le_1.5pct": tpr("dp_eps10") <= GOAL_DP_TPR,
            "dp_eps10_long_tpr_at_1pct_fpr_le_1.5pct": tpr("dp_eps10_long") <= GOAL_DP_TPR}


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--public", required=True, help="comma-separated public datasets")
    parser.add_argument("--private", required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--member-fraction", type=float, default=0.01, help="share of the private data trained on")
    parser.add_argument("--overfit-epochs", type=int, default=2000)
    parser.add_argument("--overfit-learning-rate", type=float, default=1e-3)
    parser.add_argument("--dp-long-epochs", type=int, default=500)
    parser.add_argument("--epsilon", type=float, default=10.0)
    parser.add_argument("--delta", type=float, default=1e-6)
    parser.add_argument("--sigmas", type=lambda text: [float(x) for x in text.split(",")], default=[0.02, 0.05])
    parser.add_argument("--repeats", type=int, default=16)
    parser.add_argument("--ema-for", default="nodp_overfit", help="comma-separated runs also attacked on EMA weights")
    parser.add_argument("--seed", type=int, default=1, help="member split and fine-tuning seed")
    parser.add_argument("--attack-seed", type=int, default=0)
    return parser.parse_args()


def main() -> None:
    from trajlab.commands.synth import PretrainConfig, load_synth_config, run_pretrain
    from trajlab.privacy.membership import AttackConfig

    args = parse()
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pre = run_pretrain(load_synth_config(PretrainConfig, "pretrain", "quick", public=args.public.split(","),
                                         out=str(args.work / "pre"), threads=1, overwrite=True))
    plans = {"nodp_overfit": {"private": False, "epochs": args.overfit_epochs,
                              "learning_rate": args.overfit_learning_rate},
             "nodp_5ep": {"private": False, "epochs": 5},
             "dp_eps10": {"private": True, "epochs": 5},
             "dp_eps10_long": {"private": True, "epochs": args.dp_long_epochs,
                               "learning_rate": args.overfit_learning_rate}}
    runs: dict[str, Any] = {}
    for name, plan in plans.items():
        runs[name] = {"finetune": finetune(args, name, **plan), "attack": {"raw": attack(args, name, False)}}
        if name in args.ema_for.split(","):
            runs[name]["attack"]["ema"] = attack(args, name, True)
        print(name, json.dumps({w: {s: round(m["tpr_at_0.01_fpr"], 4) for s, m in a["scores"].items()}
                                for w, a in runs[name]["attack"].items()}), flush=True)
    result = {"public": args.public, "private": args.private, "settings": {k: str(v) for k, v in vars(args).items()},
              "default_attack": dataclasses.asdict(AttackConfig()), "pretrain_wall_s": pre["wall_time_s"],
              "runs": runs, "goals": goals(runs, "calibrated"), "goals_with_loss_score": goals(runs, "loss"),
              "wall_time_s": time.perf_counter() - started}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(json.dumps(result["goals"], indent=2), f"{result['wall_time_s']:.0f} s")


if __name__ == "__main__":
    main()
