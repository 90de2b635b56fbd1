"""Is the hazard concept still in a model's representation? Probe accuracy, latent shift and CKA.

On one fixed labelled state set (states the unsafe expert visits, labelled in-hazard or not):
* probe accuracy: a fresh logistic probe fitted on each model's own latents (high: the model still separates
  hazard states, whether or not it acts on it);
* shift: mean projection of the hazard states' (edited) latents on the unsafe expert's hazard direction, minus the
  expert's own (negative: the hazard component shrank);
* linear CKA between the expert's and each model's latents (1: the same representation up to rotation/scale).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trajlab.eval.latents import HazardProbe, fit_probe, latents, linear_cka


def probe_report(expert: Any, expert_probe: HazardProbe, models: dict[str, Any], states: np.ndarray,
                 hazard: np.ndarray, *, per_class: int, seed: int) -> dict[str, dict[str, float]]:
    """{name: probe_accuracy, hazard_shift, cka} for every model (the expert's probe must be the expert's)."""
    expert_probe.check_model(expert)
    direction = expert_probe.direction
    base = latents(expert, states)
    base_shift = float((base[hazard] @ direction).mean())
    report = {}
    for name, model in models.items():
        own = latents(model, states, edited=True)
        probe = fit_probe(latents(model, states), hazard, per_class=per_class, tau_quantile=0.8, seed=seed)
        report[name] = {"probe_accuracy": probe.accuracy,
                        "hazard_shift": float((own[hazard] @ direction).mean()) - base_shift,
                        "cka": linear_cka(base, own)}
    return report
