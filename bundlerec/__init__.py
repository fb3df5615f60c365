"""bundlerec: product-bundle recommendation on a hand-written deep-learning core and a PGM engine.

The entry point is :class:`Recommender` (fit, recommend_items, recommend_bundles, update, save,
load). Modules: :mod:`bundlerec.data` (loading and validation), :mod:`bundlerec.prep` (cleaning,
encoding, splits), :mod:`bundlerec.cases` (evaluation cases), :mod:`bundlerec.datasets` (the
built-in synthetic shop), :mod:`bundlerec.models` (sequence model, co-purchase network, fusion,
baselines), :mod:`bundlerec.compose` (bundle search), :mod:`bundlerec.metrics` and
:mod:`bundlerec.evaluation`, :mod:`bundlerec.cli`.
"""

from bundlerec.recommender import ModelDirError, Recommender

__version__ = "0.1.0"

__all__ = ["Recommender", "ModelDirError", "__version__"]
