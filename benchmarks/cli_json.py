"""What the benchmark scripts share: run one trajlab command as a user would, one thread, and read its result.

The scripts run as `python benchmarks/<name>.py`, so this folder is on their import path.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

TRAJLAB = [sys.executable, "-m", "trajlab.cli"]


def cli(*args: object) -> dict[str, Any]:
    """`trajlab ARGS --json` in a subprocess with one OpenMP thread: its result, plus `benchmark_wall_s` (the
    command's wall time, process start included). A failing command stops the benchmark with its error."""
    started = time.perf_counter()
    done = subprocess.run([*TRAJLAB, *map(str, args), "--json"], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed: {done.stderr.strip()[-800:]}")
    result = json.loads(done.stdout[done.stdout.index("{"):])  # ALE prints its banner on stdout first
    result["benchmark_wall_s"] = time.perf_counter() - started
    return result
