"""Network building blocks shared by every algorithm: MLPs, vectorised ensembles, policies, normalisers."""

from trajlab.nn.ensemble import DiscreteEnsembleCritic, EnsembleCritic, EnsembleLinear, EnsembleMLP
from trajlab.nn.mlp import mlp
from trajlab.nn.normalizer import Normalizer
from trajlab.nn.policies import CategoricalPolicy, DeterministicPolicy, GaussianPolicy, TanhGaussianPolicy

__all__ = [
    "CategoricalPolicy",
    "DeterministicPolicy",
    "DiscreteEnsembleCritic",
    "EnsembleCritic",
    "EnsembleLinear",
    "EnsembleMLP",
    "GaussianPolicy",
    "Normalizer",
    "TanhGaussianPolicy",
    "mlp",
]
