"""Errors raised by :mod:`pgm`; all derive from :class:`PGMError`, a ``ValueError``."""

from __future__ import annotations


class PGMError(ValueError):
    """Base class of every error raised by :mod:`pgm` on bad models, data or queries."""


class UnknownVariableError(PGMError, KeyError):
    """A variable name that the model or factor does not have (also a ``KeyError``)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownStateError(PGMError, KeyError):
    """A state name or index that a variable does not have (also a ``KeyError``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CycleError(PGMError):
    """An edge would close a directed cycle; the message spells the cycle ``A -> B -> A``."""


class CPDError(PGMError):
    """A conditional probability table with a bad shape, bad values or a column off 1."""


class ModelError(PGMError):
    """A model that fails :meth:`check_model` (missing CPD, parents or cardinalities disagree)."""


class InferenceError(PGMError):
    """A query that cannot be answered as asked."""


class ZeroProbabilityError(InferenceError):
    """Evidence with probability zero; ``case`` is the batch row (``None`` for a single query)."""

    def __init__(self, message: str, case: int | None = None) -> None:
        super().__init__(message)
        self.case = case


class TableSizeError(InferenceError):
    """An elimination step would build a table larger than the allowed ``max_table_size``."""


class BIFParseError(PGMError):
    """A BIF file that cannot be parsed; ``line`` is the 1-based line number of the problem."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line
