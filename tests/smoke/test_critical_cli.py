"""`trajlab critical data|train|evaluate|explain` end to end with tiny networks, and its bad-input errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trajlab.cli import run as cli
from trajlab.data.frames import EpisodeVideo, FrameStore

TINY = ["--set", "model.channels=[4,4,4,4,8]", "--set", "model.hidden=8", "--set", "model.layers=1",
        "--set", "dsi.batch_size=8", "--threads", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("critical")
    assert cli("critical", "data", "--episodes", 12, "--test-episodes", 6, "--set", "val_fraction=0.25",
               "--out", root / "data") == 0
    assert cli("critical", "train", root / "data", "--out", root / "train", "--epochs", 1, *TINY) == 0
    return root


def test_data_train_evaluate_explain(trained, capsys):
    root = trained
    data = json.loads((root / "data" / "result.json").read_text())
    assert data["episodes"] == {"train": 9, "val": 3, "test": 6} and data["frame_shape"] == [28, 28, 3]
    store = FrameStore.load(root / "data" / "frames.h5")
    assert int(store.critical.sum()) == 3 * int(store.labels.sum())  # key, door, ball in every success
    assert json.loads((root / "train" / "result.json").read_text())["updates"] == 2

    assert cli("critical", "evaluate", root / "train", "--data", root / "data", "--out", root / "eval",
               "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["methods"]) == {"dsi", "random", "saliency"}
    assert all(0 <= result["methods"]["dsi"]["paper"][t]["f1"] <= 100 for t in ("T=1", "T=2", "T=3"))
    assert (root / "eval" / "plots" / "f1.png").is_file() and (root / "eval" / "report.html").is_file()

    episode = int(store.episode_ids[store.rows("test")[0]])
    assert cli("critical", "explain", root / "train", "--data", root / "data", "--episode", episode,
               "--out", root / "ex", "--json") == 0
    explained = json.loads(capsys.readouterr().out)
    assert len(explained["scores"]) == explained["length"] == int(store.lengths[store.rows("test")[0]])
    # no --threshold: the validation episodes' best, one of the sweep's values
    assert explained["threshold"] in [round(0.1 * i, 1) for i in range(11)]
    highlighted = [t for t, score in enumerate(explained["scores"]) if score >= explained["threshold"]]
    assert explained["critical_steps"] == highlighted
    assert (root / "ex" / "plots" / f"episode_{episode}.gif").is_file()


def test_unknown_env_is_exit_2_and_writes_nothing(tmp_path, capsys):
    assert cli("critical", "data", "--env", "atari-breakout", "--episodes", 4, "--out", tmp_path / "d") == 2
    assert "unknown env 'atari-breakout'" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_model_on_data_of_another_env_is_exit_2(trained, tmp_path, capsys):
    frames = np.zeros((4, 28, 28, 3), dtype=np.uint8)
    other = FrameStore.from_episodes([EpisodeVideo(frames, 1, (3,), "test")], env_id="pong",
                                     class_names=("failure", "success")).save(tmp_path / "pong.h5")
    assert cli("critical", "evaluate", trained / "train", "--data", other, "--out", tmp_path / "e") == 2
    assert "trained on 'minigrid-keycorridor'" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def test_unknown_episode_and_missing_data_are_exit_2(trained, tmp_path, capsys):
    assert cli("critical", "explain", trained / "train", "--data", trained / "data", "--episode", 999,
               "--out", tmp_path / "x") == 2
    assert "no episode 999" in capsys.readouterr().err
    assert cli("critical", "train", tmp_path / "nothing", "--out", tmp_path / "t") == 2
    assert "no frame store" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "t").exists()


def test_pong_data_train_evaluate_attack(tmp_path, capsys):
    assert cli("critical", "data", "--env", "pong", "--episodes", 8, "--test-episodes", 3,
               "--out", tmp_path / "data", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data["label_counts"]) == {"lost", "none", "won"} and sum(data["label_counts"].values()) == 11
    assert data["frame_shape"] == [40, 40, 3] and data["critical_frames"] == 0
    assert cli("critical", "train", tmp_path / "data", "--out", tmp_path / "train", "--epochs", 1, *TINY) == 0
    capsys.readouterr()
    assert cli("critical", "evaluate", tmp_path / "train", "--data", tmp_path / "data", "--out", tmp_path / "eval",
               "--json") == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["methods"] == {} and evaluated["f1_at_2_paper"] is None and "k=5%" in evaluated["fidelity"]
    # the commonest outcome's share of the 3 test episodes: 1/3, 2/3 or 1
    assert round(evaluated["test_majority_share"] * 3, 6) in (1.0, 2.0, 3.0)
    assert cli("critical", "attack", tmp_path / "train", "--episodes", 2, "--steps", 4, "--out", tmp_path / "att",
               "--threads", 1, "--json") == 0
    attacked = json.loads(capsys.readouterr().out)
    assert attacked["episodes"] == 2 and attacked["mean_steps_attacked"] == 4
    assert 0 <= attacked["win_rate_critical"] <= 1
    # a victim replayed at another frame size than the model's data is refused before anything is written
    assert cli("critical", "attack", tmp_path / "train", "--episodes", 2, "--out", tmp_path / "att2",
               "--preset", "pong-quick") == 2  # data of the quick preset: 40x40 frames, pong-quick's are 20x20
    assert "the attack's pong settings give (20, 20, 3)" in capsys.readouterr().err
    assert not (tmp_path / "att2").exists()


def test_attack_refuses_a_gridworld_model(trained, tmp_path, capsys):
    assert cli("critical", "attack", trained / "train", "--episodes", 2, "--out", tmp_path / "a") == 2
    assert "needs a model trained on Pong" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()


def test_a_number_given_as_text_is_read_or_refused(trained, tmp_path, capsys):
    base = ["critical", "train", trained / "data", "--epochs", 1, *TINY]
    assert cli(*base, "--out", tmp_path / "t", "--set", "dsi.learning_rate=fast") == 2
    assert "dsi.learning_rate must be a number, got 'fast'" in capsys.readouterr().err
    assert cli(*base, "--out", tmp_path / "u", "--set", "dsi.batch_size=eight") == 2
    assert "dsi.batch_size must be a number, got 'eight'" in capsys.readouterr().err
    assert not (tmp_path / "t").exists() and not (tmp_path / "u").exists()
    # YAML reads 3e-3 (no dot) as text: a number field takes it as the number it spells
    assert cli(*base, "--out", tmp_path / "v", "--set", "dsi.learning_rate=3e-3") == 0
    assert "learning_rate: 0.003" in (tmp_path / "v" / "config.yaml").read_text()


def test_resume_after_an_interrupt_repeats_the_uninterrupted_run(trained, tmp_path, monkeypatch, capsys):
    from safetensors.torch import load_file

    import trajlab.explain.dsi as dsi_module

    # random frame subsets draw from torch's generator: resuming must restore it too; the epoch chosen on
    # validation must be the uninterrupted run's
    args = [trained / "data", "--epochs", 2, *TINY, "--set", "dsi.predictor_dropout=true", "--select", "val_f1"]
    assert cli("critical", "train", *args, "--out", tmp_path / "whole") == 0
    step, calls = dsi_module._alternating_step, {"n": 0}

    def interrupted_in_epoch_two(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:  # 2 updates per epoch: the first update of epoch 2
            raise KeyboardInterrupt
        return step(*a, **k)

    monkeypatch.setattr(dsi_module, "_alternating_step", interrupted_in_epoch_two)
    assert cli("critical", "train", *args, "--out", tmp_path / "cut") == 130  # as a shell reports Ctrl-C
    assert "--resume" in capsys.readouterr().err
    monkeypatch.setattr(dsi_module, "_alternating_step", step)
    assert cli("critical", "train", *args, "--out", tmp_path / "cut", "--set", "dsi.l1=1.0", "--resume") == 2
    assert "cannot resume with a different dsi" in capsys.readouterr().err
    assert cli("critical", "train", *args, "--out", tmp_path / "cut", "--resume") == 0
    result = json.loads((tmp_path / "cut" / "result.json").read_text())
    assert result["resumed_from_epoch"] == 1 and result["updates"] == 4
    assert result["validation"] == json.loads((tmp_path / "whole" / "result.json").read_text())["validation"]
    whole, cut = (load_file(str(p / "checkpoints" / "final.safetensors")) for p in (tmp_path / "whole",
                                                                                   tmp_path / "cut"))
    assert whole.keys() == cut.keys() and all(whole[k].equal(cut[k]) for k in whole)
    assert cli("critical", "train", *args, "--out", tmp_path / "cut", "--resume") == 2  # finished: nothing to do

    # stopped inside the first epoch: nothing to continue from, so it starts again, without the old rows
    calls["n"] = 1  # the next update passes and logs its row, the one after is interrupted
    monkeypatch.setattr(dsi_module, "_alternating_step", interrupted_in_epoch_two)
    assert cli("critical", "train", *args, "--out", tmp_path / "early") == 130
    monkeypatch.setattr(dsi_module, "_alternating_step", step)
    assert cli("critical", "train", *args, "--out", tmp_path / "early", "--resume") == 0
    early = load_file(str(tmp_path / "early" / "checkpoints" / "final.safetensors"))
    assert all(whole[k].equal(early[k]) for k in whole)
    rows = (tmp_path / "early" / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 4  # header and one row per update


def test_a_gridworld_share_outside_0_1_is_refused_before_writing(tmp_path, capsys):
    assert cli("critical", "data", "--episodes", 4, "--test-episodes", 2, "--out", tmp_path / "d",
               "--set", "gridworld.key_then_door_fraction=1.5") == 2
    assert "gridworld.key_then_door_fraction must be in [0, 1], got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_set_epochs_is_kept_and_a_set_key_with_its_own_option_is_refused(trained, tmp_path, capsys):
    base = ["critical", "train", trained / "data", *TINY]
    # --set dsi.epochs is not erased by --epochs left unset: two epochs of 9 training episodes in batches of 8
    assert cli(*base, "--out", tmp_path / "two", "--set", "dsi.epochs=2", "--json") == 0
    assert json.loads(capsys.readouterr().out)["updates"] == 4
    assert cli(*base, "--out", tmp_path / "sel", "--set", "select=last") == 2
    assert "--set select: select has its own option (--select)" in capsys.readouterr().err
    assert not (tmp_path / "sel").exists()


def test_train_refuses_bad_objective_settings_before_writing(trained, tmp_path, capsys):
    base = ["critical", "train", trained / "data", "--epochs", 1, *TINY]
    assert cli(*base, "--out", tmp_path / "a", "--set", "dsi.reverse_target=confused") == 2
    assert "dsi.reverse_target must be one of uniform, not_outcome" in capsys.readouterr().err
    assert cli(*base, "--out", tmp_path / "b", "--resume", "--overwrite") == 2
    assert "--resume and --overwrite exclude each other" in capsys.readouterr().err
    assert cli(*base, "--out", tmp_path / "c", "--resume") == 2
    assert "no run to resume" in capsys.readouterr().err
    assert not any((tmp_path / name).exists() for name in "abc")


def test_select_keeps_the_epoch_with_the_best_validation_f1(trained, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    import trajlab.commands.critical as critical

    scores = iter([{0.5: 40.0}, {0.5: 70.0}, {0.5: 55.0}])  # epochs 1, 2, 3: the second is the best
    monkeypatch.setattr(critical, "validation_sweep", lambda *a, **k: next(scores))
    assert cli("critical", "train", trained / "data", "--out", tmp_path / "sel", "--epochs", 3, *TINY,
               "--select", "val_f1") == 0
    result = json.loads((tmp_path / "sel" / "result.json").read_text())
    assert result["selected_epoch"] == 2 and [row["epoch"] for row in result["validation"]] == [1, 2, 3]
    final, best = (load_file(str(tmp_path / "sel" / "checkpoints" / f"{name}.safetensors"))
                   for name in ("final", "best_validation"))
    assert all(final[k].equal(best[k]) for k in final)
    assert cli("critical", "train", trained / "data", "--out", tmp_path / "last", "--epochs", 3, *TINY,
               "--select", "last") == 0
    last = load_file(str(tmp_path / "last" / "checkpoints" / "final.safetensors"))
    assert not all(final[k].equal(last[k]) for k in final)  # epoch 3's networks, not epoch 2's


def test_select_val_f1_without_labelled_validation_and_unknown_select_are_exit_2(tmp_path, capsys):
    assert cli("critical", "data", "--env", "pong", "--episodes", 6, "--test-episodes", 2,
               "--out", tmp_path / "pong") == 0
    capsys.readouterr()
    base = ["critical", "train", tmp_path / "pong", "--epochs", 1, *TINY]
    assert cli(*base, "--out", tmp_path / "a", "--select", "val_f1") == 2
    assert "select val_f1 needs validation episodes with ground-truth critical frames" in capsys.readouterr().err
    assert cli(*base, "--out", tmp_path / "b", "--select", "best") == 2
    assert "select must be one of last, val_f1, auto" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_improve_runs_every_arm_and_refuses_bad_requests(trained, tmp_path, capsys):
    base = ["critical", "improve", trained / "train", "--threads", 1, "--seeds", "0",
            "--env", "MiniGrid-Empty-5x5-v0", "--iterations", 2, "--set", "envs=2", "--set", "horizon=16"]
    assert cli(*base, "--out", tmp_path / "imp", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["arms"]) == {"plain", "critical", "shuffled"}
    assert "critical_vs_shuffled/success_auc" in result["comparisons"]
    assert (tmp_path / "imp" / "plots" / "improve_success.png").is_file()
    assert cli(*base[:-6], "--env", "MiniGrid-Nowhere-v0", "--out", tmp_path / "bad") == 2
    assert cli(*base, "--arms", "plain,lucky", "--out", tmp_path / "bad2") == 2
    assert "unknown MiniGrid task" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad2").exists()
