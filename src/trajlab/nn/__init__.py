"""Network building blocks shared by every algorithm: MLPs, vectorised ensembles, policies, normalisers."""

from trajlab.nn.ensemble import EnsembleLinear, EnsembleMLP
from trajlab.nn.mlp import mlp
from trajlab.nn.normalizer import Normalizer
from trajlab.nn.policies import DeterministicPolicy, GaussianPolicy, TanhGaussianPolicy

__all__ = [
    "DeterministicPolicy",
    "EnsembleLinear",
    "EnsembleMLP",
    "GaussianPolicy",
    "Normalizer",
    "TanhGaussianPolicy",
    "mlp",
]
