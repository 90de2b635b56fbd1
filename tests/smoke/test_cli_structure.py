"""The CLI's shape: small modules, option help read from the config fields' docstrings, a fast import, --version,
and a root help that describes only what exists."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import trajlab
import trajlab.cli
from trajlab.cli import app, main
from trajlab.cli.options import PRESET_FILE_HELP
from trajlab.core.config import field_docs

COMMAND_CONFIGS = {
    # command -> its config class, and the options whose field is not named after the option
    "train": ("trajlab.training.offline:TrainConfig", {"--env": "env_id"}),
    "train-online": ("trajlab.training.online:OnlineTrainConfig",
                     {"--threads": "num_threads", "--env": "env_id", "--steps": "total_steps", "--utd": "utd_ratio"}),
    "forget": ("trajlab.commands.forget:ForgetConfig", {"--retrain": "compare_retrain"}),
    "audit": ("trajlab.commands.audit:AuditRunConfig", {}),
    "poison": ("trajlab.commands.poison:PoisonRunConfig", {}),
    "quickstart": ("trajlab.commands.quickstart:QuickstartConfig", {}),
    "data generate": ("trajlab.commands.generate:GenerateConfig", {"--threads": "num_threads", "--env": "env_id"}),
    "data import": ("trajlab.commands.datasets:ImportConfig", {"--env": "env_id"}),
    "data export": ("trajlab.commands.datasets:ExportConfig", {}),
    "data subset": ("trajlab.commands.datasets:SubsetConfig", {}),
    "synth pretrain": ("trajlab.commands.synth:PretrainConfig", {}),
    "synth finetune": ("trajlab.commands.synth:FinetuneConfig", {"--dp": "private_training"}),
    "synth sample": ("trajlab.commands.synth:SampleConfig", {"--n": "num"}),
    "synth evaluate": ("trajlab.commands.synth:EvaluateConfig", {}),
    "synth attack": ("trajlab.commands.synth:AttackRunConfig", {}),
    "synth downstream": ("trajlab.commands.synth_downstream:DownstreamConfig", {"--env": "env_id"}),
    "synth baseline": ("trajlab.commands.synth:BaselineConfig", {"--n": "num"}),
    "safe train-unsafe": ("trajlab.commands.safe:SafeTrainConfig", {"--env": "env_id", "--threads": "num_threads",
                                                                    "--set": "overrides"}),
    "safe train-oracle": ("trajlab.commands.safe:SafeTrainConfig", {"--env": "env_id", "--threads": "num_threads",
                                                                    "--set": "overrides"}),
    "safe unlearn": ("trajlab.commands.safe:SafeUnlearnConfig", {"--forget": "forget_episode_ids",
                                                                 "--threads": "num_threads", "--set": "overrides"}),
    "safe eval": ("trajlab.commands.safe:SafeEvalConfig", {"--set": "overrides"}),
    "safe relearn": ("trajlab.commands.safe:SafeRelearnConfig", {"--set": "overrides"}),
    "safe probe": ("trajlab.commands.safe:SafeProbeConfig", {"--set": "overrides"}),
    "critical data": ("trajlab.commands.critical:DataConfig", {}),
    "critical train": ("trajlab.commands.critical:TrainConfig", {}),
    "critical evaluate": ("trajlab.commands.critical:EvaluateConfig", {}),
    "critical explain": ("trajlab.commands.critical:ExplainConfig", {}),
    "critical attack": ("trajlab.commands.critical:AttackRunConfig", {}),
    "critical improve": ("trajlab.commands.critical:ImproveConfig", {}),
    "influence train": ("trajlab.commands.influence:InfluenceTrainConfig",
                        {"--env": "env_id", "--members": "ensemble_size", "--threads": "num_threads"}),
    "influence estimate": ("trajlab.commands.influence:InfluenceEstimateConfig", {}),
    "influence amend": ("trajlab.commands.influence:InfluenceAmendConfig", {}),
    "influence loo": ("trajlab.commands.influence:InfluenceLooConfig", {}),
}
WITHOUT_CONFIG = {"eval", "data info"}  # they call a function with plain arguments
SHARED = ("--device", "--threads", "--seed", "--preset", "--out", "--overwrite", "--resume")
RUN_ARGUMENTS = {("train-online", "--out"), ("train-online", "--resume"), ("train-online", "--overwrite"),
                 ("influence train", "--out"), ("influence train", "--resume"), ("influence train", "--overwrite")}
"""Shared options that are keyword arguments of the command's run(), not fields of its config."""
APPENDED = {"--preset": PRESET_FILE_HELP}
"""Options whose help is the field's docstring followed by a sentence shared by every command."""


def commands() -> dict[str, typer.core.TyperCommand]:
    """Every command by its full name ("train", "data generate")."""
    root = typer.main.get_command(app)
    found = {}
    for name, command in root.commands.items():
        for sub_name, sub in getattr(command, "commands", {}).items():
            found[f"{name} {sub_name}"] = sub
        if not hasattr(command, "commands"):
            found[name] = command
    return found


def options_of(command) -> dict[str, str]:
    return {param.opts[0]: param.help for param in command.params if param.param_type_name == "option"}


def config_docs(path: str) -> dict[str, str]:
    module, _, name = path.partition(":")
    return field_docs(getattr(importlib.import_module(module), name))


def test_every_command_is_accounted_for():
    assert set(commands()) == set(COMMAND_CONFIGS) | WITHOUT_CONFIG


@pytest.mark.parametrize("name", sorted(COMMAND_CONFIGS))
def test_option_help_is_the_config_fields_docstring(name):
    config, renamed = COMMAND_CONFIGS[name]
    docs = config_docs(config)
    for flag, help_text in options_of(commands()[name]).items():
        field = renamed.get(flag, flag[2:].replace("-", "_"))
        if field in docs:
            assert help_text == docs[field] + APPENDED.get(flag, ""), f"{name} {flag}"
        elif flag in SHARED:
            assert (name, flag) in RUN_ARGUMENTS, f"{name} {flag}: no field {field} to take its help from"


def test_every_command_has_the_same_json_option():
    helps = {name: options_of(command).get("--json") for name, command in commands().items()}
    assert None not in helps.values() and len(set(helps.values())) == 1, helps


def test_no_cli_module_exceeds_300_lines():
    sizes = {path.name: len(path.read_text().splitlines()) for path in Path(trajlab.cli.__file__).parent.glob("*.py")}
    assert len(sizes) >= 5 and max(sizes.values()) <= 300, sizes


def test_importing_the_cli_and_asking_for_help_does_not_import_torch():
    script = ("import sys; from trajlab.cli import main\n"
              "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
              "print(sorted(m for m in ('torch', 'numpy', 'h5py') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.splitlines()[-1] == "[]"


def test_version(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
        raise SystemExit(0)
    assert stopped.value.code in (0, None)
    assert capsys.readouterr().out == f"trajlab {trajlab.__version__}\n"


def test_root_help_describes_only_what_exists(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
        raise SystemExit(0)
    text = " ".join(capsys.readouterr().out.lower().split())
    for command in ("data", "train", "eval", "train-online", "forget", "audit", "poison", "quickstart", "synth",
                    "influence", "safe", "critical"):
        assert f" {command} " in text
    assert "attribut" not in text
