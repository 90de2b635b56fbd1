"""Do two trajlab checkouts produce the same numbers? A refactoring's check, end to end through the CLI.

Runs one small pipeline with each checkout's own CLI (its `src/` first on PYTHONPATH, its `configs/`): offline
training of TD3+BC, CQL and AWAC (evaluation and step checkpoints on), forgetting with TrajDeleter (+ audit,
evaluation), fine-tuning (+ audit on the local process pool) and random reward, a separate audit, and a
poisoning experiment. Then compares every result.json and certificate.json (timings, versions and file hashes
left out), every tensor of every checkpoint, and every metrics.csv row (rates left out). Keys present in one
checkout only are listed, not counted: a new field or a moved option is a change of format, not of numbers.

    python benchmarks/checkout_numbers.py --old /tmp/old --new . --dataset hopper-mr.hdf5 --out /tmp/numbers
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

TIMING = ("time", "per_s", "issued_at", "trajlab_version", "sha256", "seconds")
"""Keys whose values differ between any two runs."""


def pipeline(dataset: Path) -> list[list[str]]:
    train = [["train", "--algo", algo, "--dataset", str(dataset), "--steps", "200", "--eval-every", "200",
              "--eval-episodes", "2", "--checkpoint-every", "100", "--out", algo, "--threads", "1"]
             for algo in ("td3_bc", "cql", "awac")]
    forget = [
        ["forget", "--agent", "td3_bc", "--dataset", str(dataset), "--method", "trajdeleter", "--episodes", "3,17",
         "--audit", "--evaluate", "--eval-episodes", "2", "--out", "forget_td3", "--shadows", "2", "--threads", "1",
         "--set", "trajdeleter.forget_steps=100", "--set", "trajdeleter.convergence_steps=40",
         "--set", "trajdeleter.block_length=50"],
        ["forget", "--agent", "cql", "--dataset", str(dataset), "--method", "finetune", "--episodes", "5", "--audit",
         "--shadows", "2", "--executor", "local", "--out", "forget_cql", "--threads", "1",
         "--set", "finetune.steps=60"],
        ["forget", "--agent", "awac", "--dataset", str(dataset), "--method", "random-reward", "--episodes", "8,9",
         "--out", "forget_awac", "--threads", "1", "--set", "random_reward.steps=60"],
        ["audit", "--agent", "forget_td3", "--dataset", str(dataset), "--episodes", "3,17", "--shadows", "2",
         "--out", "audit_td3", "--threads", "1"],
        ["poison", "--dataset", str(dataset), "--algo", "td3_bc", "--train-steps", "150",
         "--methods", "trajdeleter,finetune,retrain", "--out", "poison", "--threads", "1",
         "--set", "trajdeleter.forget_steps=60", "--set", "trajdeleter.convergence_steps=20",
         "--set", "trajdeleter.block_length=30", "--set", "finetune.steps=40", "--set", "eval_episodes=2"],
    ]
    return train + forget


def run_pipeline(checkout: Path, dataset: Path, out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(checkout.resolve() / "src"), "MUJOCO_GL": "egl"}
    for arguments in pipeline(dataset.resolve()):
        command = [sys.executable, "-c", "from trajlab.cli import main; main()", *arguments, "--json"]
        subprocess.run(command, cwd=out, env=env, check=True, stdout=subprocess.DEVNULL)


def comparable(value: Any, roots: tuple[Path, Path]) -> Any:
    if isinstance(value, dict):
        return {k: comparable(v, roots) for k, v in value.items() if not any(t in k for t in TIMING)}
    if isinstance(value, list):
        return [comparable(v, roots) for v in value]
    if isinstance(value, str):
        return value.replace(str(roots[0]), "RUN").replace(str(roots[1]), "RUN")
    return value


def json_differences(old: Any, new: Any, where: str, only_one: list[str]) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            if key not in old or key not in new:
                only_one.append(f"{where}.{key} ({'old' if key in old else 'new'} only)")
            else:
                found += json_differences(old[key], new[key], f"{where}.{key}", only_one)
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in json_differences(a, b, f"{where}[{i}]", only_one)]
    same_nan = isinstance(old, float) and isinstance(new, float) and math.isnan(old) and math.isnan(new)
    return [] if old == new or same_nan else [f"{where}: {old!r} != {new!r}"]


def tensor_differences(old: Path, new: Path, name: str) -> list[str]:
    from safetensors.torch import load_file

    a, b = load_file(old), load_file(new)
    shared = [key for key in a if key in b and "elapsed" not in key]
    return [f"{name}:{key}" for key in shared if a[key].shape != b[key].shape or not bool((a[key] == b[key]).all())]


def csv_differences(old: Path, new: Path, name: str) -> list[str]:
    rows_a, rows_b = list(csv.DictReader(old.open())), list(csv.DictReader(new.open()))
    if len(rows_a) != len(rows_b):
        return [f"{name}: {len(rows_a)} rows != {len(rows_b)}"]
    return [f"{name} row {i} {key}" for i, (a, b) in enumerate(zip(rows_a, rows_b)) for key in a
            if not any(t in key for t in TIMING) and a[key] != b.get(key)]


def compare(old: Path, new: Path) -> dict[str, Any]:
    differences: list[str] = []
    only_one: list[str] = []
    files = 0
    for path in sorted(old.rglob("*")):
        twin, name = new / path.relative_to(old), str(path.relative_to(old))
        if path.suffix not in (".json", ".safetensors", ".csv") or not path.is_file():
            continue
        if not twin.exists():
            differences.append(f"{name}: missing in new")
            continue
        files += 1
        if path.suffix == ".json":
            roots = (old.resolve(), new.resolve())
            differences += json_differences(comparable(json.loads(path.read_text()), roots),
                                            comparable(json.loads(twin.read_text()), roots), name, only_one)
        elif path.suffix == ".safetensors":
            differences += tensor_differences(path, twin, name)
        else:
            differences += csv_differences(path, twin, name)
    return {"files_compared": files, "differences": differences, "keys_in_one_checkout_only": only_one}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="root of the reference checkout")
    parser.add_argument("--new", type=Path, default=Path("."), help="root of the checkout under test")
    parser.add_argument("--dataset", type=Path, required=True, help="trajlab HDF5 dataset of a known environment")
    parser.add_argument("--out", type=Path, required=True, help="folder for both pipelines' outputs (replaced)")
    parser.add_argument("--json-out", type=Path, default=Path("benchmarks/results/checkout_numbers.json"))
    args = parser.parse_args(argv)
    for name, checkout in (("old", args.old), ("new", args.new)):
        run_pipeline(checkout, args.dataset, args.out / name)
    report = {"old": str(args.old.resolve()), "new": str(args.new.resolve()), "dataset": str(args.dataset),
              **compare(args.out / "old", args.out / "new")}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['files_compared']} files compared, {len(report['differences'])} differences, "
          f"{len(report['keys_in_one_checkout_only'])} keys in one checkout only")
    return report


if __name__ == "__main__":
    main()
