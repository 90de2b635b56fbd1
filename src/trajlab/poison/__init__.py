"""Poisoning experiments: plant a backdoor in some trajectories, train on them, and unlearn them again."""

from trajlab.poison.poison import (
    PoisonConfig,
    TriggeredAgent,
    TriggerObservations,
    poison_dataset,
    poison_metadata,
    trigger_offsets,
)

__all__ = ["PoisonConfig", "TriggerObservations", "TriggeredAgent", "poison_dataset", "poison_metadata",
           "trigger_offsets"]
