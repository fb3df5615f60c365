"""Scoring models of bundlerec.

Every model implements ``fit(train: Interactions, **side_info) -> self`` and
``score(cases: Cases) -> ndarray (n, n_items) float32`` (higher is better):
:class:`SequenceModel` (two-tower LSTM), :class:`CoPurchaseNetwork` (Bayesian network of baskets),
:class:`Fusion` (calibrated combination), and the baselines ``Popularity``, ``CoOccurrence``,
``ItemKNN`` and ``Transition``.
"""

from bundlerec.models.baselines import CoOccurrence, ItemKNN, Popularity, Transition
from bundlerec.models.copurchase import CoPurchaseNetwork
from bundlerec.models.fusion import Fusion
from bundlerec.models.sequence import SequenceModel

__all__ = [
    "SequenceModel",
    "CoPurchaseNetwork",
    "Fusion",
    "Popularity",
    "CoOccurrence",
    "ItemKNN",
    "Transition",
]
