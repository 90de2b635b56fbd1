"""Fidelity of synthetic transitions, scored as SDV's quality report scores a table (metrics from `sdmetrics`).

Column shapes: per dimension, KSComplement (1 - the Kolmogorov-Smirnov statistic) for continuous columns and
TVComplement for the done flag. Column pair trends: per pair, CorrelationSimilarity (1 - |Pearson difference| / 2)
between continuous columns and ContingencySimilarity for a pair with the done flag. Each property is the mean
over its columns or pairs. sdmetrics 0.32's QualityReport object weighs pairs by a contribution threshold on the
real data's correlation, which in our checks left every pair out (a NaN score), so the same sdmetrics metrics
are averaged here over all pairs, as the report did when PrivTranR quoted its numbers (0.947 / 0.983).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from trajlab.core.errors import TrajlabError
from trajlab.data.dataset import TransitionDataset
from trajlab.privacy.diffusion import transition_matrix


def column_names(observation_dim: int, action_dim: int) -> list[str]:
    """Names of the columns of [s, a, r, s', done]."""
    return ([f"obs_{i}" for i in range(observation_dim)] + [f"action_{i}" for i in range(action_dim)] + ["reward"]
            + [f"next_obs_{i}" for i in range(observation_dim)] + ["done"])


@dataclass(frozen=True)
class Fidelity:
    column_shapes: float
    column_pair_trends: float
    per_column: dict[str, float]
    rows_compared: int

    def to_dict(self) -> dict[str, Any]:
        return {"column_shapes": self.column_shapes, "column_pair_trends": self.column_pair_trends,
                "per_column": self.per_column, "rows_compared": self.rows_compared}


def fidelity(real: TransitionDataset, synthetic: TransitionDataset, *, max_rows: int = 5000,
             seed: int = 0) -> Fidelity:
    """Column-shape and column-pair-trend scores of `synthetic` against `real` (both subsampled to max_rows)."""
    if (real.observation_dim, real.action_dim) != (synthetic.observation_dim, synthetic.action_dim):
        raise TrajlabError("real and synthetic data have different observation/action dimensions")
    if len(real) < 2 or len(synthetic) < 2:
        raise TrajlabError("fidelity needs at least 2 real and 2 synthetic transitions")
    names = column_names(real.observation_dim, real.action_dim)
    rng = np.random.default_rng(seed)
    frames = [_frame(transition_matrix(ds), names, max_rows, rng) for ds in (real, synthetic)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sdmetrics and pandas warn about future dtype handling
        shapes = {name: _shape_score(frames[0][name], frames[1][name], name == "done") for name in names}
        pairs = [_pair_score(frames[0][[a, b]], frames[1][[a, b]], "done" in (a, b))
                 for a, b in itertools.combinations(names, 2)]
    return Fidelity(float(np.nanmean(list(shapes.values()))), float(np.nanmean(pairs)) if pairs else float("nan"),
                    shapes, min(len(frames[0]), len(frames[1])))


def _frame(rows: np.ndarray, names: list[str], max_rows: int, rng: np.random.Generator) -> Any:
    import pandas as pd

    if len(rows) > max_rows:
        rows = rows[np.sort(rng.choice(len(rows), max_rows, replace=False))]
    frame = pd.DataFrame(rows.astype(np.float64), columns=names)
    frame["done"] = frame["done"] > 0.5
    return frame


def _shape_score(real: Any, synthetic: Any, categorical: bool) -> float:
    from sdmetrics.single_column import KSComplement, TVComplement

    return float((TVComplement if categorical else KSComplement).compute(real, synthetic))


def _pair_score(real: Any, synthetic: Any, with_done: bool) -> float:
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity

    if with_done:
        continuous = [name for name in real.columns if name != "done"]
        return float(ContingencySimilarity.compute(real, synthetic, continuous_column_names=continuous))
    # a constant column has no correlation; sdmetrics then returns NaN, which the mean skips
    return float(CorrelationSimilarity.compute(real, synthetic, coefficient="Pearson"))
