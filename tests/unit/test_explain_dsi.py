"""The detector and return predictor: variable lengths, the loss terms by hand, save/load, refusing other envs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from trajlab.core.errors import TrajlabError
from trajlab.data.frames import EpisodeVideo, FrameStore
from trajlab.explain.dsi import (
    DSIConfig,
    ModelConfig,
    batch_videos,
    check_fits,
    detector_loss,
    load_model,
    mask_scores,
    new_model,
    predict,
    random_frame_subset,
    removed_loss,
    saliency_scores,
    save_model,
    train,
)

TINY = ModelConfig(channels=(4, 4, 4, 4, 8), hidden=8, layers=1)


def store(env_id: str = "toy", size: int = 8) -> FrameStore:
    rng = np.random.default_rng(0)
    episodes = [EpisodeVideo(rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8), n % 2, (n - 1,), split)
                for n, split in ((3, "train"), (6, "train"), (4, "train"), (5, "val"), (7, "test"))]
    return FrameStore.from_episodes(episodes, env_id=env_id, class_names=("lost", "won"))


def test_padding_changes_nothing():
    torch.manual_seed(0)
    data = store()
    dsi = new_model(data, TINY)
    alone = predict(dsi, data, [0])
    together = predict(dsi, data, [0, 4])  # episode 0 padded from 3 to 7 frames
    assert np.allclose(alone[0], together[0], atol=1e-6)
    masks = mask_scores(dsi, data, [0, 4])
    assert [len(m) for m in masks] == [3, 7] and all(((m > 0) & (m < 1)).all() for m in masks)
    assert np.allclose(mask_scores(dsi, data, [0])[0], masks[0], atol=1e-6)


def test_detector_loss_terms_by_hand():
    torch.manual_seed(0)
    data = store()
    dsi = new_model(data, TINY)
    video, lengths, labels = batch_videos(data, [0, 1])
    torch.nn.init.zeros_(dsi.predictor.head.weight)
    torch.nn.init.zeros_(dsi.predictor.head.bias)  # equal logits: both CE terms are log 2
    config = DSIConfig(l1=0.5, cls=1.0, rev=2.0)
    terms = detector_loss(dsi.detector, dsi.predictor, video, lengths, labels, config)
    mask = dsi.detector(video, lengths)
    sparsity = (mask[0, :3].mean() + mask[1, :6].mean()) / 2  # per-episode mean over real frames only
    assert terms["sparsity"].item() == pytest.approx(sparsity.item(), rel=1e-6)
    assert terms["kept_ce"].item() == pytest.approx(math.log(2), rel=1e-6)
    assert terms["removed_ce"].item() == pytest.approx(math.log(2), rel=1e-6)
    assert terms["loss"].item() == pytest.approx(0.5 * sparsity.item() + 3 * math.log(2), rel=1e-6)


def test_reverse_targets_by_hand():
    logits = torch.log(torch.tensor([[0.8, 0.2], [0.3, 0.7]]))
    labels = torch.tensor([0, 0])
    # uniform: CE against (1/2, 1/2); not_outcome: -log(1 - p_y), low when R says the other outcome
    uniform = -(math.log(0.8) + math.log(0.2) + math.log(0.3) + math.log(0.7)) / 4
    assert removed_loss(logits, labels, "uniform").item() == pytest.approx(uniform, rel=1e-5)
    not_outcome = -(math.log(0.2) + math.log(0.7)) / 2
    assert removed_loss(logits, labels, "not_outcome").item() == pytest.approx(not_outcome, rel=1e-5)
    with pytest.raises(ValueError, match="reverse_target"):
        removed_loss(logits, labels, "other")


def test_random_frame_subsets_keep_only_real_frames_at_varied_rates():
    torch.manual_seed(0)
    kept = random_frame_subset(torch.tensor([3, 200] * 50), 200)
    assert set(kept.unique().tolist()) <= {0.0, 1.0} and kept[0::2, 3:].sum() == 0
    rates = kept[1::2].mean(dim=1)  # each episode its own keep probability, drawn from U(0, 1)
    assert rates.min() < 0.2 and rates.max() > 0.8


def test_training_moves_both_networks_and_save_load_round_trips(tmp_path):
    torch.manual_seed(0)
    data = store()
    dsi = new_model(data, TINY)
    before = [p.detach().clone() for p in (*dsi.detector.parameters(), *dsi.predictor.parameters())]
    counts = train(dsi, data, DSIConfig(batch_size=2, epochs=2, learning_rate=1e-2), seed=0)
    after = list((*dsi.detector.parameters(), *dsi.predictor.parameters()))
    assert (counts.epochs, counts.updates, counts.frames) == (2, 4, 2 * (3 + 6 + 4))
    assert any(not torch.equal(a, b) for a, b in zip(before, after))
    loaded = load_model(save_model(str(tmp_path / "m.safetensors"), dsi))
    assert np.allclose(mask_scores(dsi, data, [4])[0], mask_scores(loaded, data, [4])[0])
    saliency = saliency_scores(loaded, data, [4])[0]
    assert saliency.shape == (7,) and saliency.min() == 0.0 and saliency.max() == pytest.approx(1.0)


def test_model_refuses_videos_of_another_env_or_size():
    dsi = new_model(store(), TINY)
    with pytest.raises(TrajlabError, match="trained on 'toy'"):
        check_fits(dsi, store(env_id="pong"), "data")
    with pytest.raises(TrajlabError, match="frames of size"):
        check_fits(dsi, store(size=6), "data")


def test_load_refuses_other_checkpoints(tmp_path):
    from trajlab.core.checkpoint import save_checkpoint

    path = save_checkpoint(tmp_path / "other.safetensors", {"w": torch.zeros(1)}, {"kind": "agent"})
    with pytest.raises(TrajlabError, match="not a Deep State Identifier checkpoint"):
        load_model(str(path))


def test_fidelity_keeps_the_top_frames_and_compares_with_random():
    from trajlab.explain.fidelity import fidelity, keep_top

    assert keep_top(np.array([0.1, 0.9, 0.5, 0.9]), 0.5).tolist() == [0, 1, 0, 1]
    assert keep_top(np.array([0.3, 0.2]), 0.05).tolist() == [1, 0]  # at least one frame
    torch.manual_seed(0)
    data = store()
    dsi = new_model(data, TINY)
    rows = [0, 4]
    result = fidelity(dsi, data, rows, mask_scores(dsi, data, rows), seed=0, fractions=(1.0,))
    # keeping every frame changes nothing, for the scores and for random frames alike
    assert result["k=100%"] == {"prob_drop": pytest.approx(0.0, abs=1e-6), "agreement": 1.0,
                                "random_prob_drop": pytest.approx(0.0, abs=1e-6), "random_agreement": 1.0}
