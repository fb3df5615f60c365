"""bundlerec: product-bundle recommendation on a hand-written deep-learning core and a PGM engine.

Subpackages: :mod:`bundlerec.data` (loading and validation), :mod:`bundlerec.prep` (cleaning,
encoding, splits), :mod:`bundlerec.cases` (evaluation cases), :mod:`bundlerec.datasets` (the
built-in synthetic shop).
"""

__version__ = "0.1.0"
