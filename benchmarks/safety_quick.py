"""Safety unlearning at a preset (quick, or bench): unsafe expert vs oracle vs concept / decremental / repedit.

For each seed: train the unsafe expert and the oracle, run the three methods from the expert, evaluate all five
policies on the same env seeds, the relearn test (each method, the oracle, a random init) and the probes.
Writes --out (default benchmarks/results/safety_quick.json; one entry per seed, written after each seed).

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/safety_quick.py --seeds 0 1 2
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/safety_quick.py --preset bench --seeds 0 1 \
        --root runs/safe_bench --out benchmarks/results/safety_bench.json
    (--reuse keeps the unsafe and oracle runs an interrupted run finished)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from trajlab.commands.safe import (
    SafeEvalConfig,
    SafeProbeConfig,
    SafeRelearnConfig,
    SafeTrainConfig,
    SafeUnlearnConfig,
    evaluate,
    probe,
    relearn_test,
    train,
    unlearn,
)
from trajlab.core.io import write_json_atomic

METHODS = ("concept", "decremental", "repedit")


def _finished_training(run: Path, role: str, preset: str, seed: int) -> dict | None:
    """The result.json of a finished training run with these settings, or None."""
    path = run / "result.json"
    if not path.is_file():
        return None
    done = json.loads(path.read_text())
    return done if (done.get("role"), done.get("preset"), done.get("seed")) == (role, preset, seed) else None


def one_seed(root: Path, seed: int, preset: str = "quick", reuse: bool = False) -> dict:
    timings, updates = {}, {}
    for role in ("unsafe", "oracle"):
        started = time.perf_counter()
        done = _finished_training(root / role, role, preset, seed) if reuse else None
        if done is None:
            done = train(SafeTrainConfig(role=role, preset=preset, seed=seed, out=str(root / role), overwrite=True),
                         progress=False)
            done["train_wall_time_s"] = time.perf_counter() - started
        timings[role], updates[role] = done["train_wall_time_s"], done["updates"]
    for method in METHODS:
        started = time.perf_counter()
        done = unlearn(SafeUnlearnConfig(agent=str(root / "unsafe"), method=method, preset=preset, seed=seed,
                                         out=str(root / method), overwrite=True), progress=False)
        timings[method], updates[method] = time.perf_counter() - started, done["updates"]
    runs = tuple(str(root / name) for name in ("unsafe", "oracle", *METHODS))
    suite = evaluate(SafeEvalConfig(runs=runs, oracle=str(root / "oracle"), preset=preset, seed=1000 + seed,
                                    out=str(root / "eval"), overwrite=True))
    relearned = {}
    for method in METHODS:
        compare = (str(root / "oracle"),) if method == "concept" else ()
        found = relearn_test(SafeRelearnConfig(run=str(root / method), compare=compare,
                                               random_init=method == "concept", preset=preset, seed=seed,
                                               out=str(root / f"relearn_{method}"), overwrite=True))
        relearned.update({name: entry["updates"] for name, entry in found["relearn"].items()})
        threshold = found["threshold"]
    probes = probe(SafeProbeConfig(run=str(root / "repedit"), compare=(str(root / "concept"),
                                                                      str(root / "decremental")),
                                   preset=preset, seed=seed, out=str(root / "probe"), overwrite=True))
    return {"seed": seed, "policies": suite["policies"], "updates": updates, "wall_time_s": timings,
            "relearn_updates": relearned, "relearn_threshold": threshold, "probes": probes["models"]}


def markdown(results: list[dict]) -> str:
    """Mean +- std over seeds of return, cost and updates per policy, and the relearn counts, as Markdown rows."""
    import numpy as np

    lines = ["| policy | return / episode | cost / episode | cost rate | goals | updates | relearn updates |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in ("unsafe", "oracle", *METHODS):
        column = lambda key, name=name: np.array([seed["policies"][name][key] for seed in results])  # noqa: E731
        relearned = [seed["relearn_updates"].get(name) for seed in results]
        relearn_text = "-" if None in relearned else f"{np.mean(relearned):.1f}"
        lines.append(f"| {name} | {column('return').mean():.1f} ± {column('return').std():.1f} | "
                     f"{column('cost').mean():.1f} ± {column('cost').std():.1f} | {column('cost_rate').mean():.3f} | "
                     f"{column('goals').mean():.2f} | {results[0]['updates'][name]} | {relearn_text} |")
    random_init = [seed["relearn_updates"]["random_init"] for seed in results]
    lines.append(f"| random init | | | | | 0 | {np.mean(random_init):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--preset", default="quick", help="configs/safe/<preset>.yaml (quick, bench, paper)")
    parser.add_argument("--root", type=Path, default=Path("runs/bench_safety_quick"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/safety_quick.json"))
    parser.add_argument("--reuse", action="store_true",
                        help="keep an unsafe or oracle run already finished under --root with this preset and seed")
    parser.add_argument("--table", action="store_true", help="print the Markdown table of --out and stop")
    args = parser.parse_args()
    if args.table:
        print(markdown(json.loads(args.out.read_text())["seeds"]))
        return
    results = []
    for seed in args.seeds:
        results.append(one_seed(args.root / f"seed{seed}", seed, args.preset, args.reuse))
        write_json_atomic(args.out, {"preset": args.preset, "env_id": "SafetyPointGoal1-v0", "seeds": results})


if __name__ == "__main__":
    main()
