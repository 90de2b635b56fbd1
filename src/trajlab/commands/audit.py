"""`trajlab audit`: was an agent trained on these trajectories (or has it forgotten them)?

    trajlab audit --agent runs/forget --dataset hopper.hdf5 --episodes 3,17,42

The shadows are fine-tunings of the ORIGINAL agent (the one trained on the trajectories): `--original`, else
the original named by the audited run's certificate.json (a `trajlab forget` run; its checkpoint hash must
still match), else the audited agent itself. They fine-tune on `--reference-dataset`, else on the dataset
without the audited trajectories (and without those the certificate lists as forgotten).

`--test lira` runs the likelihood-ratio test instead (trajlab.audit.lira, trajlab.commands.membership): shadows
trained from scratch like the original on random halves of the dataset, error rates from their calibration,
and canaries as known members. Its result.json holds the same top-level keys as TrajAuditor's where they
apply, plus "test", "verdict", "p_value", "control_p_value", "error_rates" and "canaries".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trajlab.audit.lira import LiraConfig
from trajlab.audit.trajauditor import AuditConfig, TrajAuditor, check_audit_config, with_shadow_steps
from trajlab.commands.membership import check_test, lira_audit, prepare_lira
from trajlab.commands.progress import counted_updates_bar, in_process_shadow_updates
from trajlab.core.config import load_nested_preset, to_dict
from trajlab.core.devices import check_device
from trajlab.core.errors import TrajlabError
from trajlab.core.io import sha256_file
from trajlab.core.protocols import ValueEstimator, require, updates_of
from trajlab.core.rundir import RunDirectory, agent_checkpoint
from trajlab.core.seeding import set_threads
from trajlab.data.dataset import TransitionDataset
from trajlab.data.ids import check_dataset_matches, forget_ids_array, parse_episode_ids, read_episodes_file
from trajlab.unlearning.base import method_updates


@dataclass(frozen=True)
class AuditRunConfig:
    """One audit (presets: configs/audit/<preset>.yaml)."""

    agent: str
    """The audited agent: a run directory or a checkpoint file."""
    dataset: str
    """The dataset holding the audited trajectories (trajlab HDF5)."""
    episodes: tuple[int, ...] | None = None
    """Episode ids to audit, e.g. 3,17,42."""
    episodes_file: str | None = None
    """A file of episode ids to audit (JSON list, or ids separated by commas/whitespace)."""
    reference_dataset: str | None = None
    """D_r for the shadows (default: the dataset without the audited and the certified-forgotten episodes)."""
    original: str | None = None
    """The original agent the shadows copy (default: from the run's certificate, else the audited agent)."""
    out: str | None = None
    """Run directory to write (default: runs/audit_<agent run name>)."""
    preset: str = "quick"
    """Preset of the auditor settings: configs/audit/<preset>.yaml (quick: CPU minutes; paper: the paper's)."""
    test: str = "trajauditor"
    """Membership test: trajauditor (the paper's: fine-tuned shadows, Grubbs test) or lira (likelihood ratio:
    shadows trained from scratch, with error rates)."""
    auditor: AuditConfig = AuditConfig()
    """TrajAuditor's settings."""
    lira: LiraConfig = LiraConfig()
    """The likelihood-ratio test's settings (--test lira)."""
    canaries: int = 0
    """With --test lira: plant this many canary trajectories in a copy of the dataset (written to the run
    directory, ids in result.json) and train one agent from scratch on it; the test must find them there and not
    in the audited agent (0: none; canaries the dataset's metadata lists are always checked)."""
    device: str = "cpu"
    """Torch device of the agents: cpu or cuda."""
    threads: int | None = None
    """Torch CPU threads (default: torch's choice)."""
    overwrite: bool = False
    """Replace a run (finished or interrupted) already in `out`."""
    progress: bool = True
    """Show a progress bar of the in-process shadows' updates on stderr, on a terminal."""


def load_audit_config(preset: str, **overrides: Any) -> AuditRunConfig:
    """AuditRunConfig from configs/audit/<preset>.yaml with command-line values on top."""
    return load_nested_preset(AuditRunConfig, "audit", preset, overrides)


def run(config: AuditRunConfig) -> dict[str, Any]:
    """Audit, write the run directory, return result.json's content."""
    from trajlab.algos.base import start_from_checkpoint

    check_device(config.device)
    set_threads(config.threads)
    checkpoint = agent_checkpoint(config.agent)
    agent = start_from_checkpoint(checkpoint, device=config.device)
    dataset = TransitionDataset.load(config.dataset)
    ids = _audited_ids(config, dataset)
    check_dataset_matches(agent, dataset)
    certificate = _certificate(checkpoint)
    original, original_path = _original(config, checkpoint, agent, certificate)
    out = _output(config, checkpoint)
    check_test(config.test, config.lira, config.canaries)
    if config.test == "lira":
        return _run_lira(config, checkpoint, agent, dataset, ids, certificate, (original, original_path), out)
    reference = _reference(config, dataset, ids, certificate)
    check_audit_config(config.auditor)
    for who in (agent, original):
        require(who, ValueEstimator, needed_by="TrajAuditor")
    run_dir = RunDirectory.create(out, config, command="audit", overwrite=config.overwrite)
    auditor_config = with_shadow_steps(config.auditor, _unlearning_updates(certificate, original))
    with counted_updates_bar("audit: shadow agents", in_process_shadow_updates(auditor_config),
                             enabled=config.progress):
        audit = TrajAuditor(original, reference, auditor_config).audit(agent, dataset, ids)
    from trajlab.report import Report
    from trajlab.report.sections.forgetting import audit_plot, audit_section

    plot = audit_plot(run_dir.plots / "audit.png", audit)
    report = Report("TrajAuditor")
    report.key_values({"audited agent": str(checkpoint), "original agent": original_path,
                       "reference episodes (D_r)": reference.num_episodes})
    audit_section(report, audit)
    if plot is not None:
        report.image(plot, "Grubbs statistic per trajectory")
    report.write(run_dir.path / "report.html")
    result = {**audit.to_dict(), "agent_checkpoint": str(checkpoint.resolve()), "original_checkpoint": original_path,
              "reference_episodes": reference.num_episodes, "run_dir": str(run_dir.path),
              "plots": [str(plot)] if plot else [], "auditor": to_dict(auditor_config)}
    run_dir.write_result(result)
    return result


def _run_lira(config: AuditRunConfig, checkpoint: Path, agent: Any, dataset: TransitionDataset, ids: np.ndarray,
              certificate: dict[str, Any] | None, original: tuple[Any, str], out: Path) -> dict[str, Any]:
    """`--test lira`: check, then write the run directory (result.json, plots, report.html)."""
    if config.reference_dataset is not None:
        raise TrajlabError("--reference-dataset is TrajAuditor's; lira's shadows train on halves of --dataset")
    excluded = np.intersect1d((certificate or {}).get("forgotten_episode_ids", []), dataset.episode_id_list)
    auditor = prepare_lira(original[0], dataset, ids, config.lira, config.canaries)
    run_dir = RunDirectory.create(out, config, command="audit", overwrite=config.overwrite)
    audit = lira_audit(auditor, agent, dataset, ids, excluded=excluded, run_path=run_dir.path,
                       progress=config.progress)
    from trajlab.report import Report
    from trajlab.report.sections.membership import lira_section, roc_plot, score_plot

    plots = [roc_plot(run_dir.plots / "lira_roc.png", audit), score_plot(run_dir.plots / "lira_scores.png", audit)]
    report = Report("Membership test (likelihood ratio)")
    report.key_values({"audited agent": str(checkpoint), "original agent": original[1],
                       "population (trajectories)": auditor.dataset.num_episodes})
    lira_section(report, audit)
    for plot, caption in zip(plots, ("ROC curve (log scale)", "membership scores")):
        report.image(plot, caption)
    report.write(run_dir.path / "report.html")
    result = {**audit.to_dict(), "agent_checkpoint": str(checkpoint.resolve()), "original_checkpoint": original[1],
              "reference_episodes": auditor.dataset.num_episodes, "run_dir": str(run_dir.path),
              "plots": [str(plot) for plot in plots], "auditor": to_dict(config.lira)}
    run_dir.write_result(result)
    return result


def _audited_ids(config: AuditRunConfig, dataset: TransitionDataset) -> np.ndarray:
    if (config.episodes is None) == (config.episodes_file is None):
        raise TrajlabError("give exactly one of --episodes and --episodes-file")
    requested = read_episodes_file(config.episodes_file) if config.episodes_file else \
        parse_episode_ids(list(config.episodes))
    ids = forget_ids_array(requested)
    if ids.size == 0:
        raise TrajlabError("no episodes to audit")
    unknown = np.setdiff1d(ids, dataset.episode_id_list)
    if unknown.size:
        raise TrajlabError(f"unknown episode id(s) {', '.join(str(int(i)) for i in unknown[:5])} in {config.dataset}")
    return ids


def _unlearning_updates(certificate: dict[str, Any] | None, original: Any) -> int | None:
    """Updates of the unlearning run that made the audited agent, as its certificate records them. Certificates
    written before they recorded it are read through the built-in methods' update counts."""
    if certificate is None:
        return None
    if "unlearning_updates" in certificate:
        return certificate["unlearning_updates"]
    try:
        return method_updates(certificate["method"], certificate["method_config"],
                              updates_of(original))
    except (KeyError, TypeError, ValueError):
        raise TrajlabError("the run's certificate.json lacks its method or method_config") from None


def _certificate(checkpoint: Path) -> dict[str, Any] | None:
    path = checkpoint.resolve().parent.parent / "certificate.json"
    if checkpoint.resolve().parent.name != "checkpoints" or not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise TrajlabError(f"{path}: not valid JSON") from None


def _original(config: AuditRunConfig, checkpoint: Path, agent: Any,
              certificate: dict[str, Any] | None) -> tuple[Any, str]:
    from trajlab.algos.base import start_from_checkpoint

    if config.original is not None:
        path = agent_checkpoint(config.original)
    elif certificate is not None:
        path = Path(certificate["original_checkpoint"])
        if not path.is_file():
            raise TrajlabError(f"the certificate's original agent {path} is gone; pass --original")
        if sha256_file(path) != certificate.get("original_checkpoint_sha256"):
            raise TrajlabError(f"{path} changed since the certificate was issued (sha256 differs); pass --original")
    else:
        return agent, str(checkpoint.resolve())
    original = start_from_checkpoint(path, device=config.device)
    if original.name != getattr(agent, "name", None) or original.spec != agent.spec:
        raise TrajlabError(f"the original agent {path} ({original.name}) is not the audited agent's algorithm/spaces")
    return original, str(path.resolve())


def _reference(config: AuditRunConfig, dataset: TransitionDataset, ids: np.ndarray,
               certificate: dict[str, Any] | None) -> TransitionDataset:
    if config.reference_dataset is not None:
        reference = TransitionDataset.load(config.reference_dataset)
        overlap = np.intersect1d(reference.episode_id_list, ids)
        if overlap.size and _same_episodes(reference, dataset, overlap):
            raise TrajlabError(f"--reference-dataset holds audited episode(s) {overlap[:5].tolist()}; shadows must "
                               "not train on the trajectories they are the reference for")
        return reference
    excluded = np.union1d(ids, (certificate or {}).get("forgotten_episode_ids", []))
    excluded = np.intersect1d(excluded, dataset.episode_id_list)
    if excluded.size == dataset.num_episodes:
        raise TrajlabError("no episodes left for the shadows to train on; give --reference-dataset")
    return dataset.without(excluded)


def _same_episodes(first: TransitionDataset, second: TransitionDataset, ids: np.ndarray) -> bool:
    from trajlab.data.ids import trajectory_hash

    return any(trajectory_hash(first.episode(int(i))) == trajectory_hash(second.episode(int(i))) for i in ids)


def _output(config: AuditRunConfig, checkpoint: Path) -> Path:
    source = checkpoint.resolve()
    run_name = source.parent.parent.name if source.parent.name == "checkpoints" else source.stem
    out = Path(config.out) if config.out is not None else Path("runs") / f"audit_{run_name}"
    resolved = out.resolve()
    agent_run = source.parent.parent if source.parent.name == "checkpoints" else source.parent
    if resolved == agent_run or agent_run in resolved.parents or resolved in source.parents:
        raise TrajlabError(f"--out {out}: inside the audited agent's run; give another --out")
    if Path(config.dataset).resolve().is_relative_to(resolved):
        raise TrajlabError(f"--out {out} holds the dataset; give another --out")
    if resolved.is_dir() and any(resolved.iterdir()) and not config.overwrite:
        raise TrajlabError(f"--out {out}: already holds files (use --overwrite or another --out)")
    return out
