"""`trajlab critical` at a preset, end to end through the CLI: data collection rate, training wall time and
throughput (frames/s) on one torch thread, and F1@1/2/3 of DSI under both protocols beside the random and
gradient-saliency baselines measured in the same run; one success episode explained (GIF + score plot).

    python benchmarks/critical_quick.py --preset quick --work /tmp/critical --out benchmarks/results/critical_quick.json
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
from pathlib import Path

from cli_json import cli

QUICK_GOAL_F1_AT_2 = 80.0
QUICK_GOAL_TRAIN_S = 15 * 60
PAPER_GOAL_F1_AT_2 = 85.0


def copy_figure(figure: Path, out: Path) -> Path:
    """A run's figure beside the result file, named after it (results/critical_quick_f1.png, ...)."""
    target = out.with_name(f"{out.stem}_{figure.stem}{figure.suffix}")
    shutil.copyfile(figure, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    work, preset = args.work, ["--preset", args.preset, "--seed", args.seed, "--overwrite"]
    data = cli("critical", "data", "--out", work / "data", *preset)
    trained = cli("critical", "train", work / "data", "--out", work / "train", "--threads", 1, *preset)
    evaluated = cli("critical", "evaluate", work / "train", "--data", work / "data", "--out", work / "eval", *preset)
    from trajlab.data.frames import FrameStore

    store = FrameStore.load(work / "data" / "frames.h5")
    episode = int(next(store.episode_ids[r] for r in store.rows("test") if store.labels[r] == 1))
    explained = cli("critical", "explain", work / "train", "--data", work / "data", "--episode", episode,
                    "--out", work / "explain", "--preset", args.preset, "--overwrite")
    f1 = evaluated["f1_at_2_paper"]
    result = {"preset": args.preset, "seed": args.seed, "machine": platform.processor() or platform.machine(),
              "torch_threads": 1, "data": {k: data[k] for k in ("episodes", "frames", "mean_length", "wall_time_s",
                                                                  "frames_per_s")},
              "train": {k: trained[k] for k in ("updates", "frames_seen", "wall_time_s", "frames_per_s",
                                                "selection", "selected_epoch", "validation")},
              "methods": evaluated["methods"], "predictor_test_accuracy": evaluated["predictor_test_accuracy"],
              "scored_test_episodes": evaluated["scored_test_episodes"], "explained_episode": episode,
              "figures": evaluated["plots"] + explained["plots"] + [explained["gif"]],
              "goals": {"quick_f1_at_2_paper_ge_80": f1 >= QUICK_GOAL_F1_AT_2,
                        "quick_train_le_15_min": trained["wall_time_s"] <= QUICK_GOAL_TRAIN_S,
                        "f1_at_2_paper_ge_85": f1 >= PAPER_GOAL_F1_AT_2}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result["figures"] = [str(copy_figure(Path(figure), args.out)) for figure in result["figures"]]
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps({"f1_at_2_paper": f1, "f1_at_2_honest": evaluated["f1_at_2_honest"],
                      "random_f1_at_2": evaluated["methods"]["random"]["paper"]["T=2"]["f1"],
                      "train_s": trained["wall_time_s"], "goals": result["goals"]}, indent=2))


if __name__ == "__main__":
    main()
