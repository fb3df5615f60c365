"""Learning discrete Bayesian networks from complete data: parameters and structure.

Notation: ``n`` rows, ``d`` variables; variable ``i`` has ``r_i`` states and, in a family
(``i`` with its parents), ``q_i`` parent configurations; ``N_ijk`` counts the rows where the
parents are in configuration ``j`` and ``i`` is in state ``k``, ``N_ij = sum_k N_ijk``.

Data are a :class:`pandas.DataFrame` (one column per variable, values state names or integers;
a categorical column declares its states by its categories) or a 2-D integer ndarray of state
indices whose column names and states come from ``state_names`` (a dict, in column order; the
columns are named ``"0" .. "d-1"`` without it). Unless ``state_names`` says otherwise, the states
of a column are its distinct values, sorted, as strings (``0/1`` columns get ``["0", "1"]``).
Missing values are an error. Counting is vectorised: one ``np.bincount`` over mixed-radix codes
per family.
"""

from pgm.learning.climbing import ClimbTrace, hill_climb
from pgm.learning.parameters import estimate_parameters, update_parameters
from pgm.learning.scores import structure_score
from pgm.learning.trees import chow_liu_tree, mutual_information_matrix

__all__ = [
    "ClimbTrace",
    "chow_liu_tree",
    "estimate_parameters",
    "hill_climb",
    "mutual_information_matrix",
    "structure_score",
    "update_parameters",
]
