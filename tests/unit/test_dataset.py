"""TransitionDataset: ids survive every operation, episodes are derived correctly, nothing mutates in place."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trajlab.core.errors import TrajlabError
from trajlab.data import TransitionDataset


def labelled(lengths: list[int], *, first_episode: int = 10, first_transition: int = 100) -> TransitionDataset:
    """Episodes of the given lengths with sparse ids; each observation is [transition id, episode id]."""
    episode_ids = np.repeat(first_episode + 3 * np.arange(len(lengths)), lengths)
    transition_ids = first_transition + 2 * np.arange(sum(lengths))
    observations = np.stack([transition_ids, episode_ids], axis=1).astype(np.float32)
    last = np.r_[episode_ids[1:] != episode_ids[:-1], True]
    return TransitionDataset(
        observations=observations, actions=observations[:, :1] / 1000.0, rewards=transition_ids / 10.0,
        next_observations=observations + 0.5, terminals=last & (episode_ids % 2 == 0),
        timeouts=last & (episode_ids % 2 == 1), episode_ids=episode_ids, transition_ids=transition_ids,
        metadata={"env_id": "synthetic"},
    )


def assert_rows_match_ids(dataset: TransitionDataset) -> None:
    """Every row still carries the data that was created with its ids."""
    np.testing.assert_array_equal(dataset.observations[:, 0], dataset.transition_ids)
    np.testing.assert_array_equal(dataset.observations[:, 1], dataset.episode_ids)
    np.testing.assert_allclose(dataset.rewards, dataset.transition_ids / 10.0, rtol=1e-6)


@pytest.fixture
def dataset() -> TransitionDataset:
    return labelled([3, 4, 2, 5])  # episode ids 10, 13, 16, 19


# --- id preservation ---------------------------------------------------------------------------------------
def test_subset_and_without_keep_ids(dataset):
    kept = dataset.subset([13, 19])
    assert kept.episode_id_list.tolist() == [13, 19]
    assert kept.transition_ids.tolist() == [106, 108, 110, 112, 118, 120, 122, 124, 126]
    assert_rows_match_ids(kept)
    rest = dataset.without([13, 19])
    assert rest.episode_id_list.tolist() == [10, 16]
    assert rest.transition_ids.tolist() == [100, 102, 104, 114, 116]
    assert_rows_match_ids(rest)


def test_unknown_episode_id_is_a_user_error(dataset):
    with pytest.raises(TrajlabError, match="unknown episode id.*11"):
        dataset.subset([10, 11])
    with pytest.raises(TrajlabError, match="unknown episode id.*99"):
        dataset.without([99])
    with pytest.raises(TrajlabError, match="unknown episode id 12"):
        dataset.episode(12)
    with pytest.raises(TrajlabError, match="unknown transition id.*101"):
        dataset.subset_transitions([100, 101])


def test_subset_transitions_keeps_dataset_order(dataset):
    picked = dataset.subset_transitions([124, 100, 110])
    assert picked.transition_ids.tolist() == [100, 110, 124]
    assert picked.episode_ids.tolist() == [10, 13, 19]
    assert_rows_match_ids(picked)


def test_split_partitions_episodes_deterministically(dataset):
    first, second = dataset.split(0.5, seed=3)
    again, _ = dataset.split(0.5, seed=3)
    assert first.episode_id_list.tolist() == again.episode_id_list.tolist()
    assert len(first.episode_id_list) == 2 and len(second.episode_id_list) == 2
    assert sorted([*first.episode_id_list, *second.episode_id_list]) == [10, 13, 16, 19]
    assert sorted([*first.transition_ids, *second.transition_ids]) == dataset.transition_ids.tolist()
    assert_rows_match_ids(first)
    assert_rows_match_ids(second)
    with pytest.raises(TrajlabError, match="fraction"):
        dataset.split(1.0, seed=0)


def test_concat_keeps_ids_and_rejects_overlap(dataset):
    other = labelled([2, 2], first_episode=50, first_transition=500)
    joined = dataset.concat(other)
    assert joined.episode_id_list.tolist() == [10, 13, 16, 19, 50, 53]
    assert joined.transition_ids.tolist() == [*dataset.transition_ids, *other.transition_ids]
    assert_rows_match_ids(joined)
    with pytest.raises(TrajlabError, match="share transition ids"):
        dataset.concat(dataset)
    with pytest.raises(TrajlabError, match="share episode ids"):
        dataset.concat(labelled([2], first_episode=10, first_transition=900))


def test_with_actions_replaces_actions_only_and_refuses_another_shape(dataset):
    replaced = dataset.with_actions(np.zeros_like(dataset.actions))
    assert np.all(replaced.actions == 0) and not np.all(dataset.actions == 0)
    np.testing.assert_array_equal(replaced.transition_ids, dataset.transition_ids)
    np.testing.assert_array_equal(replaced.rewards, dataset.rewards)
    with pytest.raises(TrajlabError, match="actions of shape"):
        dataset.with_actions(np.zeros((len(dataset) - 1, *dataset.actions.shape[1:])))


def test_with_rewards_keeps_ids_and_leaves_the_original(dataset):
    negated = dataset.with_rewards(-dataset.rewards)
    np.testing.assert_array_equal(negated.transition_ids, dataset.transition_ids)
    np.testing.assert_array_equal(negated.episode_ids, dataset.episode_ids)
    np.testing.assert_allclose(negated.rewards, -dataset.transition_ids / 10.0, rtol=1e-6)
    assert_rows_match_ids(dataset)


def test_save_load_round_trip_keeps_everything(dataset, tmp_path):
    path = dataset.without([16]).save(tmp_path / "d.hdf5")
    loaded = TransitionDataset.load(path)
    for name in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts",
                 "episode_ids", "transition_ids"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(dataset.without([16]), name), err_msg=name)
    assert loaded.metadata["env_id"] == "synthetic"
    assert [p.name for p in tmp_path.iterdir()] == ["d.hdf5"]  # no temporary file left behind


def test_sample_batches_carry_the_ids_of_their_rows(dataset):
    batch = dataset.without([13]).sample(64, np.random.default_rng(0))
    assert batch.observations.shape == (64, 2)
    np.testing.assert_array_equal(batch.observations[:, 0].numpy(), batch.transition_ids.numpy())
    np.testing.assert_array_equal(batch.observations[:, 1].numpy(), batch.episode_ids.numpy())
    assert 13 not in set(batch.episode_ids.tolist())


def test_sampler_batches_carry_the_ids_of_their_rows(dataset):
    sampler = dataset.subset([10, 19]).sampler(seed=1)
    batch = sampler.sample(50)
    np.testing.assert_array_equal(batch.observations[:, 0].numpy(), batch.transition_ids.numpy())
    np.testing.assert_array_equal(batch.observations[:, 1].numpy(), batch.episode_ids.numpy())
    assert set(batch.episode_ids.tolist()) <= {10, 19}
    state = sampler.get_state()
    first = sampler.sample(8).transition_ids
    sampler.set_state(state)
    assert sampler.sample(8).transition_ids.tolist() == first.tolist()


# --- episodes ----------------------------------------------------------------------------------------------
def test_episodes_follow_id_blocks(dataset):
    episodes = list(dataset.episodes())
    assert [e.episode_id for e in episodes] == [10, 13, 16, 19]
    assert [len(e) for e in episodes] == [3, 4, 2, 5]
    assert episodes[1].transition_ids.tolist() == [106, 108, 110, 112]
    assert dataset.episode_lengths().tolist() == [3, 4, 2, 5]
    np.testing.assert_allclose(dataset.episode_returns()[0], (100 + 102 + 104) / 10.0, rtol=1e-6)
    assert episodes[0].terminals.tolist() == [False, False, True]  # episode 10 is even: ends in a terminal
    assert episodes[1].timeouts.tolist() == [False, False, False, True]


def test_episode_ids_must_be_contiguous():
    with pytest.raises(TrajlabError, match="not contiguous"):
        TransitionDataset(
            observations=np.zeros((3, 1)), actions=np.zeros((3, 1)), rewards=np.zeros(3),
            next_observations=np.zeros((3, 1)), terminals=np.zeros(3), timeouts=np.zeros(3),
            episode_ids=[1, 2, 1], transition_ids=[0, 1, 2],
        )


# --- from_arrays ---------------------------------------------------------------------------------------------
def test_from_arrays_derives_episodes_from_terminals_timeouts_and_keeps_the_tail():
    terminals = np.array([0, 1, 0, 0, 0, 0, 0], dtype=bool)
    timeouts = np.array([0, 0, 0, 1, 0, 0, 0], dtype=bool)
    observations = np.arange(7, dtype=np.float32)[:, None]
    dataset = TransitionDataset.from_arrays(
        observations=observations, actions=np.zeros((7, 1)), rewards=np.arange(7), terminals=terminals,
        timeouts=timeouts, next_observations=observations + 1,
    )
    assert dataset.episode_ids.tolist() == [0, 0, 1, 1, 2, 2, 2]
    assert dataset.transition_ids.tolist() == list(range(7))
    assert dataset.episode_lengths().tolist() == [2, 2, 3]
    assert dataset.episode_returns().tolist() == [1.0, 5.0, 15.0]


def test_from_arrays_without_next_observations_uses_the_following_row():
    # episode 0 ends in a terminal (row 1), episode 1 in a timeout (row 4), episode 2 is unfinished (rows 5-6)
    terminals = np.array([0, 1, 0, 0, 0, 0, 0], dtype=bool)
    timeouts = np.array([0, 0, 0, 0, 1, 0, 0], dtype=bool)
    observations = 10 * np.arange(7, dtype=np.float32)[:, None]
    dataset = TransitionDataset.from_arrays(
        observations=observations, actions=np.zeros((7, 1)), rewards=np.zeros(7), terminals=terminals,
        timeouts=timeouts,
    )
    # rows without a known successor (the timeout row 4 and the last row 6) are dropped; the terminal row stays
    assert dataset.transition_ids.tolist() == [0, 1, 2, 3, 5]
    assert dataset.episode_ids.tolist() == [0, 0, 1, 1, 2]
    assert dataset.next_observations[:, 0].tolist() == [10, 10, 30, 40, 60]
    assert dataset.timeouts.tolist() == [False] * 5


def test_from_arrays_rejects_inconsistent_lengths():
    with pytest.raises(TrajlabError, match="inconsistent array lengths.*observations 5.*actions 4"):
        TransitionDataset.from_arrays(observations=np.zeros((5, 2)), actions=np.zeros((4, 1)), rewards=np.zeros(4),
                                      terminals=np.zeros(4))


@pytest.mark.parametrize("field", ["rewards", "observations"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_values_are_rejected(field, bad):
    arrays = {"observations": np.zeros((4, 2)), "actions": np.zeros((4, 1)), "rewards": np.zeros(4),
              "terminals": np.zeros(4)}
    arrays[field] = arrays[field].copy()
    arrays[field][2] = bad
    with pytest.raises(TrajlabError, match=f"{field} contains NaN or inf .*row 2"):
        TransitionDataset.from_arrays(**arrays, next_observations=np.zeros((4, 2)))


# --- immutability ------------------------------------------------------------------------------------------
def test_arrays_are_read_only_and_operations_return_new_objects(dataset):
    for name in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts",
                 "episode_ids", "transition_ids"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(dataset, name)[0] = 1
    before = dataset.transition_ids.copy()
    results = [dataset.subset([10]), dataset.without([10]), dataset.with_rewards(np.zeros(len(dataset))),
               dataset.with_metadata(note="x"), *dataset.split(0.5, seed=0)]
    assert all(result is not dataset for result in results)
    np.testing.assert_array_equal(dataset.transition_ids, before)
    assert "note" not in dataset.metadata
    with pytest.raises(AttributeError):
        dataset.rewards = np.zeros(len(dataset))  # type: ignore[misc]


# --- properties ----------------------------------------------------------------------------------------------
episode_lengths = st.lists(st.integers(min_value=1, max_value=6), min_size=2, max_size=8)


@settings(max_examples=40, deadline=None)
@given(lengths=episode_lengths, data=st.data())
def test_subset_and_without_partition_the_dataset(lengths, data):
    dataset = labelled(lengths)
    ids = dataset.episode_id_list.tolist()
    chosen = data.draw(st.lists(st.sampled_from(ids), unique=True))
    kept, rest = dataset.subset(chosen), dataset.without(chosen)
    assert sorted(kept.episode_id_list.tolist()) == sorted(chosen)
    assert len(kept) + len(rest) == len(dataset)
    assert sorted([*kept.transition_ids, *rest.transition_ids]) == dataset.transition_ids.tolist()
    if len(kept) and len(rest):
        assert_rows_match_ids(kept.concat(rest))


@settings(max_examples=40, deadline=None)
@given(ends=st.lists(st.sampled_from(["step", "terminal", "timeout"]), min_size=1, max_size=30))
def test_from_arrays_episode_count_matches_the_ends(ends):
    terminals = np.array([e == "terminal" for e in ends])
    timeouts = np.array([e == "timeout" for e in ends])
    n = len(ends)
    dataset = TransitionDataset.from_arrays(
        observations=np.zeros((n, 1)), actions=np.zeros((n, 1)), rewards=np.ones(n), terminals=terminals,
        timeouts=timeouts, next_observations=np.zeros((n, 1)),
    )
    closed = int((terminals | timeouts).sum())
    assert dataset.num_episodes == closed + (0 if ends[-1] != "step" else 1)
    assert dataset.episode_lengths().sum() == n
