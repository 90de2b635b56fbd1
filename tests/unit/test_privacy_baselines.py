"""The discretisation that MST and AIM see: public bin edges, codes, and values drawn back within their bins."""

from __future__ import annotations

import numpy as np
import pytest

from trajlab.core.errors import TrajlabError
from trajlab.privacy.baselines import Binning
from trajlab.privacy.training import check_budget


def _rows(n: int, seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    continuous = np.stack([rng.normal(shift, 1.0, n), rng.exponential(1.0, n), np.full(n, 3.0)], axis=1)
    done = (rng.random(n) < 0.2).astype(np.float64)
    return np.concatenate([continuous, done[:, None]], axis=1).astype(np.float32)


def test_quantile_edges_give_equal_public_counts_and_a_point_bin_for_a_constant_column():
    public = _rows(4000, 0)
    binning = Binning.fit(public, 8, "quantile")
    assert binning.cardinalities == [8, 8, 1, 2]
    counts = np.bincount(binning.encode(public)[:, 0], minlength=8)
    assert counts.min() >= 480 and counts.max() <= 520  # 500 each, up to ties at the edges
    assert binning.edges[2].tolist() == [3.0, 3.0]


def test_uniform_edges_span_the_public_range_in_equal_widths():
    public = _rows(1000, 1)
    edges = Binning.fit(public, 4, "uniform").edges[0]
    assert edges[0] == pytest.approx(public[:, 0].min()) and edges[-1] == pytest.approx(public[:, 0].max())
    assert np.allclose(np.diff(edges), np.diff(edges)[0])


def test_round_trip_codes_to_values_to_the_same_codes_within_the_edges():
    public = _rows(2000, 2)
    binning = Binning.fit(public, 6, "quantile")
    codes = binning.encode(_rows(3000, 3, shift=0.5))
    values = binning.decode(codes, np.random.default_rng(0))
    assert values.dtype == np.float32 and values.shape == (3000, 4)
    np.testing.assert_array_equal(binning.encode(values), codes)
    for column, edges in enumerate(binning.edges):
        assert values[:, column].min() >= edges[0] and values[:, column].max() <= edges[-1]
    assert set(np.unique(values[:, -1])) <= {0.0, 1.0}
    np.testing.assert_array_equal(values[:, -1], codes[:, -1])
    np.testing.assert_array_equal(values[:, 2], 3.0)


def test_decoded_values_are_uniform_within_their_bin():
    binning = Binning.fit(np.array([[0.0, 0.0], [10.0, 1.0]], dtype=np.float32), 2, "uniform")
    values = binning.decode(np.tile([[1, 0]], (20_000, 1)), np.random.default_rng(1))[:, 0]
    assert values.min() >= 5.0 and values.max() <= 10.0
    assert values.mean() == pytest.approx(7.5, abs=0.05)


def test_private_values_beyond_the_public_range_fall_into_the_outer_bins():
    binning = Binning.fit(_rows(500, 4), 5, "quantile")
    far = np.array([[-100.0, -100.0, -100.0, 0.0], [100.0, 100.0, 100.0, 1.0]], dtype=np.float32)
    assert binning.encode(far).tolist() == [[0, 0, 0, 0], [4, 4, 0, 1]]


def test_bad_binning_requests_are_errors():
    with pytest.raises(TrajlabError, match="bins must be at least 1"):
        Binning.fit(_rows(10, 0), 0)
    with pytest.raises(TrajlabError, match="unknown binning"):
        Binning.fit(_rows(10, 0), 4, "kmeans")
    with pytest.raises(TrajlabError, match="rows have 3 columns, the binning 4"):
        Binning.fit(_rows(10, 0), 4).encode(np.zeros((2, 3)))


@pytest.mark.parametrize(("epsilon", "delta", "message"), [
    (0.0, 1e-6, "epsilon must be a positive number"),
    (-1.0, 1e-6, "epsilon must be a positive number"),
    (float("inf"), 1e-6, "epsilon must be a positive number"),
    (10.0, 0.01, "delta must be in (0, 1/n)"),
    (10.0, 0.0, "delta must be in (0, 1/n)"),
])
def test_budget_checks(epsilon, delta, message):
    with pytest.raises(TrajlabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_budget(epsilon, delta, 1000)
    check_budget(10.0, 1e-6, 1000)
