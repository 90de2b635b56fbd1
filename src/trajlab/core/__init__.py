"""Types, protocols, seeding, configs, run directories and checkpoint I/O shared by every part of trajlab."""

from trajlab.core.errors import TrajlabError
from trajlab.core.protocols import Agent, Batch, LossOutput

__all__ = ["Agent", "Batch", "LossOutput", "TrajlabError"]
