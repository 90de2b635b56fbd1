"""The quickstart's forgetting verdict and scores in words: no raw keys, no None rows, the numbers it was given."""

from __future__ import annotations

import pytest

from trajlab.report.sections.quickstart import AUDIT_KEYS, audit_sentences, audit_summary, score_rows


def lira_run(verdict: str = "still a member") -> tuple[dict, dict]:
    forgetting = {"audit_test": "lira", "audit_verdict": verdict, "audit_forgotten_rate": 0.25,
                  "audit_control_forgotten_rate": 0.0, "audit_specificity": None}
    certificate = {"audit": {"test": "lira", "verdict": verdict, "p_value": 0.0012, "control_p_value": 0.0003,
                             "control_audited": 4, "num_shadows": 8, "shadow_steps": 20000, "population": 412,
                             "config": {"alpha": 0.05},
                             "error_rates": {"auc": 0.8731, "tpr_at_1pct_fpr": 0.214, "tpr_at_0.1pct_fpr": 0.05}}}
    return forgetting, certificate


def test_a_lira_summary_takes_the_verdict_p_values_and_error_rates_from_the_certificate():
    summary = audit_summary(*lira_run())
    assert tuple(summary) == AUDIT_KEYS
    assert (summary["audit_p_value"], summary["audit_control_p_value"], summary["audit_auc"]) == (0.0012, 0.0003,
                                                                                                   0.8731)
    assert (summary["audit_shadows"], summary["audit_shadow_steps"], summary["control_episodes"]) == (8, 20000, 4)
    assert summary["forgotten_rate"] == 0.25 and summary["audit_specificity"] is None


@pytest.mark.parametrize("verdict, meaning", [("still a member", "not removed"),
                                              ("indistinguishable from retraining", "finds none left"),
                                              ("not specific", "inconclusive")])
def test_the_sentences_say_what_was_tested_the_error_rates_and_what_the_verdict_means(verdict, meaning):
    tested, rates, said = audit_sentences(audit_summary(*lira_run(verdict)), forgotten=4)
    assert "8 shadow agents" in tested and "20000 updates" in tested and "412" in tested and "4 forgotten" in tested
    assert "AUC 0.87" in rates and "21% of members at a 1% false-positive rate" in rates and "(5% at 0.1%)" in rates
    assert said.startswith(f"Verdict: {verdict} ") and "p = 0.0012" in said and "p = 0.0003 for 4 control" in said
    assert meaning in said
    assert all("None" not in s and "audit_" not in s for s in (tested, rates, said))


def test_trajauditor_sentences_give_both_rates_and_say_it_has_no_error_rates():
    forgetting = {"audit_test": "trajauditor", "audit_verdict": "forgotten", "audit_forgotten_rate": 1.0,
                  "audit_control_forgotten_rate": 0.75, "audit_specificity": "not specific"}
    certificate = {"audit": {"test": "trajauditor", "error_rates": None, "control_audited": 4,
                             "config": {"num_shadows": 5, "shadow_steps": None, "alpha": 1e-4}}}
    summary = audit_summary(forgetting, certificate)
    assert summary["audit_auc"] is None and summary["audit_p_value"] is None
    first, second = audit_sentences(summary, forgotten=4)
    assert "5 fine-tuned shadow agents" in first and "100% of the 4 forgotten" in first
    assert "75% of control" in second and "(not specific)" in second


def test_score_rows_name_both_scores_and_leave_out_the_one_without_a_reference():
    rows = score_rows({"eval_mean_return": 362.0, "eval_normalized_score": 11.7,
                       "eval_behaviour_normalized_score": 166.4})
    assert rows == {"mean return": 362.0, "D4RL normalised score": 11.7,
                    "score vs the dataset's behaviour policies": 166.4}
    assert score_rows({"eval_mean_return": -150.0, "eval_normalized_score": None,
                       "eval_behaviour_normalized_score": 80.0}) == {
        "mean return": -150.0, "score vs the dataset's behaviour policies": 80.0}


def test_the_report_links_the_forget_runs_report_by_a_relative_path(tmp_path):
    from trajlab.report import Report

    html = Report("q").link("the forget run's report", "forget/report.html", before="Everything: ").render()
    assert '<p>Everything: <a href="forget/report.html">the forget run&#x27;s report</a></p>' in html


def test_the_quickstart_audits_with_the_measured_lira_settings_and_refuses_an_unknown_test(tmp_path):
    from trajlab.commands import quickstart
    from trajlab.core.config import load_preset
    from trajlab.core.errors import TrajlabError

    config = load_preset(quickstart.QuickstartConfig, "quickstart", "default", out=str(tmp_path / "qs"))
    assert quickstart._audit_overrides(config) == {"lira": {"executor": "local", "statistic": "action_error",
                                                            "control_episodes": 40}}
    paper_test = quickstart.replace(config, forget_test="trajauditor")
    assert quickstart._audit_overrides(paper_test) == {"auditor": {"executor": "local"}}
    with pytest.raises(TrajlabError, match="unknown membership test 'grubbs'"):
        quickstart.run(quickstart.replace(config, forget_test="grubbs"), say=lambda line: None)
    assert not (tmp_path / "qs").exists()  # refused before anything was written


def test_an_unknown_tour_is_refused_before_anything_is_written(tmp_path):
    from trajlab.commands import quickstart
    from trajlab.core.config import load_preset
    from trajlab.core.errors import TrajlabError

    config = load_preset(quickstart.QuickstartConfig, "quickstart", "default", out=str(tmp_path / "qs"))
    with pytest.raises(TrajlabError, match="unknown quickstart tour"):
        quickstart.run(quickstart.replace(config, tours=("influence", "juggling")), say=lambda line: None)
    assert not (tmp_path / "qs").exists()


def test_every_tour_has_a_quickstart_step():
    import importlib

    from trajlab.commands.quickstart import TOURS

    for module in TOURS.values():
        assert callable(importlib.import_module(module).quickstart_step), module


def test_the_influence_tour_ranks_its_planted_group_and_says_so(tmp_path):
    from trajlab.commands.influence import quickstart_step

    tour = quickstart_step(tmp_path / "influence", seed=0, planted_group=1, steps=2000)
    assert 1 <= tour["planted_rank"] <= 4
    planted, ranked, amended = tour["sentences"]
    assert "group 1 was planted" in planted and "from 4 experience groups" in planted
    assert "of 4, from one training run instead of 4 retrainings" in ranked
    assert f"({tour['amended_group']})" in amended and f"{tour['return_after']:.1f}" in amended
    assert all(path.endswith(".png") and (tmp_path / path).is_file() for path in tour["plots"])
    assert tour["report"].endswith("report.html")
