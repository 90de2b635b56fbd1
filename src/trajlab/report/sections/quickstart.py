"""The quickstart's story in words: its scores and its forgetting verdict as rows and sentences a new user can
read without knowing trajlab's result keys (the full evidence stays in the forget run's own report.html)."""

from __future__ import annotations

from typing import Any

AUDIT_KEYS = ("audit_test", "audit_verdict", "audit_p_value", "audit_control_p_value", "audit_alpha",
              "audit_auc", "audit_tpr_at_1pct_fpr", "audit_tpr_at_0.1pct_fpr", "audit_shadows",
              "audit_shadow_steps", "audit_population", "control_episodes", "forgotten_rate",
              "control_forgotten_rate", "audit_specificity")
"""The quickstart result.json's audit keys: always present, None where the test used does not have them."""

_MEANING = {
    "still a member": "the forgotten trajectories still score like trajectories the agent was trained on, so "
                      "as far as this test can tell they were not removed.",
    "indistinguishable from retraining": "the forgotten trajectories score like trajectories the agent never "
                                         "saw, while the control trajectories it still carries score as members: "
                                         "the test can see membership and finds none left (evidence at the error "
                                         "rates above, not proof).",
    "not specific": "the test does not see even the control trajectories, which the agent still carries, as "
                    "members, so at this scale it cannot tell forgotten from kept trajectories: inconclusive.",
}


def audit_summary(forgetting: dict[str, Any], certificate: dict[str, Any]) -> dict[str, Any]:
    """The AUDIT_KEYS of a forget run's result.json and certificate.json (its audit entry)."""
    audit = certificate.get("audit") or {}
    rates = audit.get("error_rates") or {}
    config = audit.get("config") or {}
    lira = forgetting.get("audit_test") == "lira"
    summary = {
        "audit_test": forgetting.get("audit_test"), "audit_verdict": forgetting.get("audit_verdict"),
        "audit_p_value": audit.get("p_value") if lira else None,
        "audit_control_p_value": audit.get("control_p_value") if lira else None,
        "audit_alpha": config.get("alpha"), "audit_auc": rates.get("auc"),
        "audit_tpr_at_1pct_fpr": rates.get("tpr_at_1pct_fpr"),
        "audit_tpr_at_0.1pct_fpr": rates.get("tpr_at_0.1pct_fpr"),
        "audit_shadows": audit.get("num_shadows") if lira else config.get("num_shadows"),
        "audit_shadow_steps": audit.get("shadow_steps") if lira else config.get("shadow_steps"),
        "audit_population": audit.get("population"),
        "control_episodes": audit.get("control_audited"),
        "forgotten_rate": forgetting.get("audit_forgotten_rate"),
        "control_forgotten_rate": forgetting.get("audit_control_forgotten_rate"),
        "audit_specificity": forgetting.get("audit_specificity"),
    }
    return {key: summary[key] for key in AUDIT_KEYS}


def audit_sentences(summary: dict[str, Any], forgotten: int) -> list[str]:
    """What was tested, its error rates, and what the verdict means, as plain sentences."""
    if summary["audit_test"] == "lira":
        return _lira_sentences(summary, forgotten)
    return _trajauditor_sentences(summary, forgotten)


def _lira_sentences(s: dict[str, Any], forgotten: int) -> list[str]:
    tested = (f"The likelihood-ratio membership test (LiRA) trained {s['audit_shadows']} shadow agents from "
              f"scratch, {s['audit_shadow_steps']} updates each, on random halves of the {s['audit_population']} "
              f"trajectories, and asked whether the unlearned agent still carries the {forgotten} forgotten ones.")
    rates = (f"Calibrated on the shadows (each scored against the others, where the truth is known), it has AUC "
             f"{s['audit_auc']:.2f} and finds {s['audit_tpr_at_1pct_fpr']:.0%} of members at a 1% false-positive "
             f"rate ({s['audit_tpr_at_0.1pct_fpr']:.0%} at 0.1%); AUC 0.5 would be guessing.")
    control = "" if s["audit_control_p_value"] is None else \
        f", and p = {s['audit_control_p_value']:.2g} for {s['control_episodes']} control trajectories it still carries"
    verdict = (f"Verdict: {s['audit_verdict']} (one-sided Mann-Whitney test that the forgotten trajectories score "
               f"above non-members: p = {s['audit_p_value']:.2g}{control}; alpha {s['audit_alpha']:g}). "
               f"This means {_MEANING.get(s['audit_verdict'], 'see the forget report.')}")
    return [tested, rates, verdict]


def _trajauditor_sentences(s: dict[str, Any], forgotten: int) -> list[str]:
    tested = (f"TrajAuditor (the paper's test: {s['audit_shadows']} fine-tuned shadow agents, Grubbs test) "
              f"judged {s['forgotten_rate']:.0%} of the {forgotten} forgotten trajectories forgotten.")
    if s["control_forgotten_rate"] is None:
        return [tested]
    return [tested, f"It judged {s['control_forgotten_rate']:.0%} of control trajectories the agent still carries "
                    f"forgotten too ({s['audit_specificity']}); it reports no calibrated error rates, so a "
                    "verdict that flags the controls as often as the forgotten ones says nothing."]


def score_rows(training: dict[str, Any]) -> dict[str, Any]:
    """The training rows of the report, leaving out scores that have no reference (never a None row)."""
    rows = {"mean return": training["eval_mean_return"],
            "D4RL normalised score": training.get("eval_normalized_score"),
            "score vs the dataset's behaviour policies": training.get("eval_behaviour_normalized_score")}
    return {key: value for key, value in rows.items() if value is not None}
