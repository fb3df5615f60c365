"""Probabilistic graphical models: factors, Bayesian and Markov networks, exact inference."""

from pgm.blanket import markov_blanket, markov_blanket_posteriors
from pgm.elimination import VariableElimination
from pgm.errors import (
    BIFParseError,
    CPDError,
    CycleError,
    InferenceError,
    ModelError,
    PGMError,
    TableSizeError,
    UnknownStateError,
    UnknownVariableError,
    ZeroProbabilityError,
)
from pgm.factor import Factor, assert_factors_close
from pgm.io import read_bif, write_bif
from pgm.learning import (
    chow_liu_tree,
    estimate_parameters,
    hill_climb,
    structure_score,
    update_parameters,
)
from pgm.models import BayesianNetwork, MarkovNetwork, TabularCPD
from pgm.plans import Plan
from pgm.retraction import leave_one_out

__all__ = [
    "markov_blanket",
    "markov_blanket_posteriors",
    "leave_one_out",
    "chow_liu_tree",
    "estimate_parameters",
    "hill_climb",
    "read_bif",
    "structure_score",
    "update_parameters",
    "write_bif",
    "BIFParseError",
    "BayesianNetwork",
    "CPDError",
    "CycleError",
    "Factor",
    "InferenceError",
    "MarkovNetwork",
    "ModelError",
    "PGMError",
    "Plan",
    "TableSizeError",
    "TabularCPD",
    "UnknownStateError",
    "UnknownVariableError",
    "VariableElimination",
    "ZeroProbabilityError",
    "assert_factors_close",
]
