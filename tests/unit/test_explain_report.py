"""The critical-state figures: the GIF's highlighted frames and the report section of the quickstart step."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest

from trajlab.report.sections.critical import highlight_gif


def test_gif_outlines_frames_at_or_above_the_threshold(tmp_path):
    frames = np.zeros((3, 5, 5, 3), dtype=np.uint8)
    path = highlight_gif(frames, np.array([0.2, 0.5, 0.9]), 0.5, tmp_path / "e.gif", scale=2)
    read = np.asarray(imageio.mimread(path))[..., :3]
    assert read.shape[0] == 3
    corner = read[:, 0, 0]
    assert corner[0].tolist() == [255, 255, 255]  # below the threshold: plain border
    assert corner[1][0] > 150 and corner[1][1] < 80 and corner[2][0] > 150  # at and above: red


@pytest.mark.slow
def test_quickstart_step_runs_end_to_end(tmp_path):
    from trajlab.commands.critical import quickstart_step

    step = quickstart_step(tmp_path, seed=0)
    assert all(p.endswith(".png") for p in step["plots"]) and all(g.endswith(".gif") for g in step["gifs"].values())
    assert "F1@2" in step["sentences"][1]
    assert 0 <= step["f1_at_2_paper"] <= 100 and 0 <= step["random_f1_at_2"] <= 100  # quality: the benchmark
