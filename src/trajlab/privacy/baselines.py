"""DP tabular baselines for synthetic transitions: MST and AIM (smartnoise-synth) on discretised transitions.

PrivTranR's claim is that a diffusion model releases better transitions than the marginal-based DP synthesizers
that win tabular benchmarks; these are those synthesizers, run on the same private rows at the same budget.

MST and AIM model a table of discrete columns, and transitions [s, a, r, s', done] are continuous, so every
column is cut into bins. The bin edges come from the PUBLIC data only (quantiles or equal widths of its values),
so the discretisation spends no privacy budget and the domain the synthesizers see (the number of bins of each
column) does not depend on the private data; the whole (epsilon, delta) goes to the synthesizer. Private values
outside the public range fall into the outer bins. A sampled bin maps back to a value drawn uniformly within its
edges; the done flag is its own two-valued column (0/1, known without looking at any data).

The unit of privacy is one transition (a row), as in DP-SGD fine-tuning. smartnoise-synth is an optional extra
(`pip install -e .[synth-baselines]` plus smartnoise-synth with --no-deps, see the Makefile): it brings jax.
Its Gaussian noise comes from OpenDP's sampler, which takes no seed, so two runs with the same seed differ.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from trajlab.core.errors import TrajlabError
from trajlab.data.dataset import TransitionDataset
from trajlab.privacy.diffusion import transition_matrix
from trajlab.privacy.synthesis import release_dataset

METHODS = ("mst", "aim")
BINNINGS = ("quantile", "uniform")
INSTALL_HINT = ("smartnoise-synth is not installed (an optional extra): run `make synth-baselines` (pip install -e "
                ".[synth-baselines], then smartnoise-synth==1.0.8 with --no-deps)")


@dataclass(frozen=True)
class Binning:
    """Per-column bin edges of [s, a, r, s', done]; the last column (done) is always the two values 0 and 1."""

    edges: tuple[np.ndarray, ...]
    """Bin edges of each continuous column (increasing; k + 1 edges make k bins, 2 equal edges one point bin)."""

    @classmethod
    def fit(cls, public_rows: np.ndarray, bins: int, strategy: str = "quantile") -> Binning:
        """Edges from public rows: `bins` quantile or equal-width bins per column (fewer where values tie)."""
        if bins < 1:
            raise TrajlabError(f"bins must be at least 1, got {bins}")
        if strategy not in BINNINGS:
            raise TrajlabError(f"unknown binning {strategy!r}; known: {', '.join(BINNINGS)}")
        if len(public_rows) == 0:
            raise TrajlabError("bin edges need at least one public transition")
        return cls(tuple(_edges(column, bins, strategy) for column in public_rows[:, :-1].T))

    @property
    def cardinalities(self) -> list[int]:
        """Number of codes of each column (the domain the synthesizer sees), done's 2 last."""
        return [max(len(edges) - 1, 1) for edges in self.edges] + [2]

    def encode(self, rows: np.ndarray) -> np.ndarray:
        """Integer bin codes [N, columns]; values beyond the outer edges go to the outer bins."""
        if rows.shape[1] != len(self.edges) + 1:
            raise TrajlabError(f"rows have {rows.shape[1]} columns, the binning {len(self.edges) + 1}")
        codes = [np.clip(np.searchsorted(edges, column, side="right") - 1, 0, count - 1)
                 for edges, column, count in zip(self.edges, rows[:, :-1].T, self.cardinalities)]
        return np.stack([*codes, (rows[:, -1] > 0.5).astype(np.int64)], axis=1).astype(np.int64)

    def decode(self, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Float32 rows: each continuous code drawn uniformly within its bin, done as 0/1."""
        columns = []
        for edges, column in zip(self.edges, codes[:, :-1].T):
            low = edges[column]
            high = edges[np.minimum(column + 1, len(edges) - 1)]
            columns.append(low + rng.random(len(column)) * (high - low))
        return np.stack([*columns, codes[:, -1].astype(np.float64)], axis=1).astype(np.float32)


def _edges(column: np.ndarray, bins: int, strategy: str) -> np.ndarray:
    values = column.astype(np.float64)
    if strategy == "quantile":
        edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    else:
        edges = np.unique(np.linspace(values.min(), values.max(), bins + 1))
    return edges if len(edges) > 1 else np.repeat(edges, 2)


@dataclass(frozen=True)
class TabularOptions:
    """Settings of the smartnoise synthesizers beyond the budget."""

    aim_rounds: int | None = None
    """AIM's rounds, which set its per-measurement noise; None: smartnoise's default, 16 per column. AIM first
    measures every column's 1-way marginal at that noise (columns / rounds of the budget, so rounds must exceed
    the columns), then selects and measures 2-way marginals, refitting its model after each, until the budget is
    spent: fewer rounds, fewer and less noisy 2-way measurements, and far less time."""
    aim_max_model_size: float = 80.0
    """AIM's cap on the graphical model's size in MB."""
    aim_max_cells: int = 10_000
    """AIM's workload: the 2-way marginals with at most this many cells."""


def require_smartnoise() -> None:
    """A one-line error naming the extra when smartnoise-synth (or what it needs) is missing."""
    try:
        import snsynth.aim  # noqa: F401
        import snsynth.mst  # noqa: F401
    except ImportError as error:
        raise TrajlabError(f"{INSTALL_HINT} ({error})") from None


def limit_jax_threads(threads: int | None) -> None:
    """One XLA thread when asked (mbi's estimation runs on jax); only effective before jax is imported."""
    if threads == 1 and "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def fit_sample(method: str, codes: np.ndarray, cardinalities: list[int], num: int, *, epsilon: float,
               delta: float, seed: int, options: TabularOptions = TabularOptions()) -> np.ndarray:
    """Fit MST or AIM to the integer codes at (epsilon, delta) and draw `num` rows of codes."""
    if method not in METHODS:
        raise TrajlabError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    require_smartnoise()
    synthesizer = _synthesizer(method, epsilon, delta, options)
    np.random.seed(seed)  # smartnoise's exponential mechanism and mbi's sampler draw from numpy's global state
    with contextlib.redirect_stdout(io.StringIO()):  # AIM prints diagnostics; stdout is for --json
        synthesizer.fit(codes, transformer=_fixed_domain(cardinalities), preprocessor_eps=0.0)
        sampled = np.asarray(synthesizer.sample(num), dtype=np.int64)
    return sampled.reshape(num, len(cardinalities))


def _synthesizer(method: str, epsilon: float, delta: float, options: TabularOptions) -> Any:
    from snsynth.aim import AIMSynthesizer
    from snsynth.mst import MSTSynthesizer

    if method == "mst":
        return MSTSynthesizer(epsilon=float(epsilon), delta=float(delta))
    return AIMSynthesizer(epsilon=float(epsilon), delta=float(delta), rounds=options.aim_rounds,
                          max_model_size=options.aim_max_model_size, max_cells=options.aim_max_cells)


def _fixed_domain(cardinalities: list[int]) -> Any:
    """A smartnoise transformer fitted on every code 0..k-1 of each column and on nothing else: so the domain is
    the public binning's, never read off the private data (whose empty bins would otherwise vanish from it)."""
    from snsynth.transform.label import LabelTransformer
    from snsynth.transform.table import TableTransformer

    all_codes = np.stack([np.minimum(np.arange(max(cardinalities)), count - 1) for count in cardinalities], axis=1)
    transformer = TableTransformer([LabelTransformer(nullable=False) for _ in cardinalities])
    transformer.fit(all_codes)
    return transformer


def release(rows: np.ndarray, like: TransitionDataset, metadata: dict[str, Any]) -> TransitionDataset:
    """A TransitionDataset from [s, a, r, s', done] rows in `like`'s spaces, as `synth sample` releases."""
    spec = like.spec
    return release_dataset(rows, like.observation_dim, spec.action_low, spec.action_high, metadata)


def public_rows(public: list[TransitionDataset]) -> np.ndarray:
    """The public datasets' transition rows, one matrix."""
    return np.concatenate([transition_matrix(ds) for ds in public])
