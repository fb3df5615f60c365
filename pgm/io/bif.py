"""Read and write Bayesian networks in the BIF interchange format (bnlearn repository dialect).

Grammar read here (``//`` and ``/* */`` comments allowed anywhere between tokens)::

    network NAME { property ...; }
    variable NAME { type discrete [ N ] { s_1, ..., s_N }; property ...; }
    probability ( X | P_1, ..., P_k ) {
        ( p_1, ..., p_k ) v_1, ..., v_N;    // one row per parent configuration
        table v_1, ..., v_M;                // all values at once
        default v_1, ..., v_N;              // rows not listed explicitly
        property ...;
    }

Names are any run of characters other than white space and ``{ } ( ) [ ] ; , | "`` (so state
names such as ``<5``, ``12+``, ``>=7.5``, ``a/b``, ``0-3_days`` or ``Transp.`` are accepted);
quoted strings may be used as names too. Properties are read and ignored. A ``table`` list of
a variable with parents is in the pgmpy layout: row-major over (X, P_1, ..., P_k), the variable
varying slowest and the last parent fastest.

The structure is parsed by a small recursive-descent parser over anchored regular expressions;
number lists are cut out up to their ``;`` and converted by numpy in one call per probability
block, so large networks (barley, mildew) read in a fraction of a second.
"""

from __future__ import annotations

import gzip
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pgm.errors import BIFParseError
from pgm.models import BayesianNetwork, TabularCPD

__all__ = ["read_bif", "write_bif", "parse_bif"]

_SKIP = re.compile(r"(?:\s+|//[^\n]*|/\*.*?\*/)*", re.S)
_NAME = re.compile(r'[^\s{}()\[\];,|"]+|"(?:[^"\\\n]|\\.)*"')
_NUMBERS = re.compile(r'[^;{}()"]*')
_PROPERTY_REST = re.compile(r'(?:[^;"{}]|"(?:[^"\\]|\\.)*")*;')
_BARE_NAME = re.compile(r'[^\s{}()\[\];,|"/*]+')
_CONFIG = re.compile(r'\(([^()"/]*)\)')
_ESCAPE = re.compile(r"\\(.)", re.S)


def _unescape(quoted_body: str) -> str:
    return _ESCAPE.sub(r"\1", quoted_body)


@dataclass
class BIFBlock:
    """The plain contents of one ``probability`` block.

    Attributes
    ----------
    variable : str
        The variable X whose conditional distribution this is.
    parents : list of str
        The parents P_1..P_k in the order of the header.
    values : ndarray of float64, shape (N, q)
        ``values[x, j]`` = P(X = x | parent configuration j), q = prod of parent cardinalities,
        the last parent varying fastest (pgmpy ``TabularCPD`` layout); each column divided by
        its sum (see :func:`read_bif`).
    line : int
        Line number (1-based) of the block's ``probability`` keyword.
    """

    variable: str
    parents: list[str]
    values: np.ndarray
    line: int


@dataclass
class BIFNetwork:
    """The plain contents of a BIF text: the result of :func:`parse_bif`.

    Attributes
    ----------
    name : str
        The network's name.
    states : dict of str to list of str
        State names of each variable, in declaration order.
    blocks : dict of str to BIFBlock
        The probability block of each variable, keyed by variable name.
    """

    name: str = "unknown"
    states: dict[str, list[str]] = field(default_factory=dict)
    blocks: dict[str, BIFBlock] = field(default_factory=dict)


class _Parser:
    """Recursive-descent parser over a position in the text; see the module docstring."""

    def __init__(self, text: str, tolerance: float) -> None:
        self.text = text
        self.tolerance = tolerance
        self.pos = 0
        self.net = BIFNetwork()
        self.declared: dict[str, int] = {}  # variable -> offset of its declaration

    # -- low level -------------------------------------------------------------------------
    def line_at(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def fail(self, expected: str, pos: int | None = None) -> BIFParseError:
        pos = self.pos if pos is None else pos
        found = self.text[pos : pos + 20].split("\n", 1)[0] or "end of input"
        line = self.line_at(pos)
        return BIFParseError(f"expected {expected}, found {found!r}", line=line)

    def skip(self) -> int:
        self.pos = _SKIP.match(self.text, self.pos).end()
        return self.pos

    def at(self, literal: str) -> bool:
        self.skip()
        return self.text.startswith(literal, self.pos)

    def expect(self, literal: str) -> None:
        if not self.at(literal):
            raise self.fail(f"{literal!r}")
        self.pos += len(literal)

    def name(self, what: str) -> str:
        self.skip()
        m = _NAME.match(self.text, self.pos)
        if m is None:
            raise self.fail(what)
        self.pos = m.end()
        word = m.group()
        return _unescape(word[1:-1]) if word.startswith('"') else word

    def keyword(self) -> str | None:
        """Return the bare word at the cursor without consuming it (None if there is none)."""
        self.skip()
        m = _BARE_NAME.match(self.text, self.pos)
        return None if m is None else m.group()

    def name_list(self, close: str, what: str) -> list[str]:
        names = []
        if self.at(close):
            return names
        names.append(self.name(what))
        while self.at(","):
            self.pos += 1
            names.append(self.name(what))
        return names

    def configuration(self) -> list[str]:
        """The names of a ``( s_1, ..., s_k )`` row head (bare names in one regex match)."""
        m = _CONFIG.match(self.text, self.pos)
        if m is not None:
            names = [name.strip() for name in m.group(1).split(",")]
            if all(_NAME.fullmatch(name) for name in names):
                self.pos = m.end()
                return names
        self.pos += 1
        names = self.name_list(")", "a parent state")
        self.expect(")")
        return names

    def numbers(self) -> tuple[list[str], int]:
        """Cut out the number list before the next ``;``; return its items and start offset."""
        start = self.skip()
        m = _NUMBERS.match(self.text, start)
        self.pos = m.end()
        self.expect(";")
        body = m.group()
        items = body.split(",") if "," in body else body.split()
        return items, start

    def properties_until_close(self, what: str) -> None:
        """Skip ``property ...;`` entries up to and including the closing brace."""
        while not self.at("}"):
            if self.keyword() != "property":
                raise self.fail(f"'property' or '}}' in {what}")
            self.skip_property()
        self.pos += 1

    def skip_property(self) -> None:
        """Consume ``property ...;`` (its text may hold quoted strings) and ignore it."""
        self.pos += len("property")
        m = _PROPERTY_REST.match(self.text, self.pos)
        if m is None:
            raise self.fail("';' ending the property")
        self.pos = m.end()

    # -- blocks ----------------------------------------------------------------------------
    def parse(self) -> BIFNetwork:
        seen_any = False
        while self.skip() < len(self.text):
            word = self.keyword()
            start = self.pos
            if word == "network":
                self.pos += len(word)
                self.net.name = self.name("a network name")
                self.expect("{")
                self.properties_until_close("the network block")
            elif word == "variable":
                self.pos += len(word)
                self.variable(start)
            elif word == "probability":
                self.pos += len(word)
                self.probability(start)
            else:
                raise self.fail("'network', 'variable' or 'probability'")
            seen_any = True
        if not seen_any:
            raise self.fail("a BIF network")
        for var, pos in self.declared.items():
            if var not in self.net.blocks:
                line = self.line_at(pos)
                raise BIFParseError(f"variable {var!r} has no probability block", line=line)
        return self.net

    def variable(self, start: int) -> None:
        name = self.name("a variable name")
        if name in self.net.states:
            raise self.fail(f"a new variable name ({name!r} is declared twice)", start)
        self.expect("{")
        states = None
        while not self.at("}"):
            word = self.keyword()
            if word == "type":
                self.pos += len(word)
                if self.keyword() != "discrete":
                    raise self.fail("'discrete' (only discrete variables are supported)")
                self.pos += len("discrete")
                self.expect("[")
                count_pos = self.skip()
                count = self.name("the number of states")
                self.expect("]")
                self.expect("{")
                states = self.name_list("}", "a state name")
                self.expect("}")
                self.expect(";")
                if not count.isdigit() or int(count) != len(states):
                    raise self.fail(f"[ {len(states)} ] for the {len(states)} states", count_pos)
                if len(set(states)) != len(states):
                    raise self.fail(f"distinct state names for {name!r}", count_pos)
            elif word == "property":
                self.skip_property()
            else:
                raise self.fail(f"'type', 'property' or '}}' in variable {name!r}")
        self.pos += 1
        if not states:
            raise self.fail(f"a 'type discrete' declaration in variable {name!r}", start)
        self.net.states[name] = states
        self.declared[name] = start

    def known(self, name: str, pos: int) -> list[str]:
        states = self.net.states.get(name)
        if states is None:
            raise self.fail(f"a declared variable (not {name!r})", pos)
        return states

    def probability(self, start: int) -> None:
        self.expect("(")
        var_pos = self.skip()
        var = self.name("a variable name")
        var_states = self.known(var, var_pos)
        if var in self.net.blocks:
            raise self.fail(f"one probability block per variable ({var!r} has two)", start)
        parents = []
        if self.at("|"):
            self.pos += 1
            parents = self.name_list(")", "a parent name")
        parents_pos = self.pos
        self.expect(")")
        parent_states = [self.known(p, parents_pos) for p in parents]
        if len(set(parents)) != len(parents) or var in parents:
            raise self.fail("distinct parents different from the variable", parents_pos)
        index = [{s: i for i, s in enumerate(states)} for states in parent_states]
        cards = [len(s) for s in parent_states]
        self.expect("{")

        entries: list[tuple[str, int, list[str], int]] = []  # kind, column, items, offset
        while not self.at("}"):
            entry_pos = self.pos
            if self.at("("):
                config = self.configuration()
                if len(config) != len(parents):
                    raise self.fail(f"{len(parents)} parent states, got {len(config)}", entry_pos)
                col = 0
                for name, states, card in zip(config, index, cards, strict=True):
                    if name not in states:
                        raise self.fail(f"a state of the parent (not {name!r})", entry_pos)
                    col = col * card + states[name]
                entries.append(("row", col, *self.numbers()))
                continue
            word = self.keyword()
            if word in ("table", "default"):
                self.pos += len(word)
                entries.append((word, -1, *self.numbers()))
            elif word == "property":
                self.skip_property()
            else:
                raise self.fail("'(', 'table', 'default', 'property' or '}'")
        self.pos += 1
        values = self.assemble(var, len(var_states), parent_states, entries, start)
        self.net.blocks[var] = BIFBlock(var, parents, values, self.line_at(start))

    # -- numbers ---------------------------------------------------------------------------
    def to_floats(self, entries: list[tuple[str, int, list[str], int]]) -> np.ndarray:
        """All number items of a block as one float64 array (an error names the bad item)."""
        try:
            return np.array([item for entry in entries for item in entry[2]], dtype=np.float64)
        except ValueError:
            for _, _, items, offset in entries:
                for item in items:
                    try:
                        float(item)
                    except ValueError:
                        where = self.text.find(item.strip() or ";", offset)
                        raise self.fail("a number", where) from None
            raise

    def assemble(self, var, card, parent_states, entries, start) -> np.ndarray:
        """The ``(card, q)`` table of a block from its entries, checked and column-normalised."""
        cards = [len(s) for s in parent_states]
        n_cols = int(np.prod(cards, dtype=np.int64))
        flat = self.to_floats(entries)
        kinds = np.array([e[0] for e in entries], dtype=object)
        lengths = np.array([len(e[2]) for e in entries], dtype=np.int64)
        want = np.where(kinds == "table", card * n_cols, card)
        bad = np.flatnonzero(lengths != want)
        if bad.size:
            i = int(bad[0])
            raise self.fail(
                f"{want[i]} probabilities for {var!r}, got {lengths[i]}", entries[i][3]
            )
        bad_value = ~np.isfinite(flat) | (flat < 0)
        if bad_value.any():
            i = int(np.searchsorted(np.cumsum(lengths), np.flatnonzero(bad_value)[0], "right"))
            raise self.fail(f"finite non-negative probabilities for {var!r}", entries[i][3])
        values = np.full((card, n_cols), np.nan)
        is_row = kinds == "row"
        cols = np.array([e[1] for e in entries], dtype=np.int64)[is_row]
        seen = np.zeros(n_cols, dtype=bool)
        for i in np.flatnonzero(kinds != "row"):  # at most a table and a default
            begin = int(lengths[:i].sum())
            block = flat[begin : begin + lengths[i]]
            if kinds[i] == "table":
                values = block.reshape(card, n_cols).copy()
                seen[:] = True
            else:
                values[:, ~seen] = block[:, None]
        if cols.size:
            if np.unique(cols).size != cols.size:
                again = [k for k, c in enumerate(cols.tolist()) if c in cols[:k]][0]
                offset = [e for e in entries if e[0] == "row"][again][3]
                raise self.fail(f"each parent configuration of {var!r} once", offset)
            rows = flat[np.repeat(is_row, lengths)].reshape(-1, card)
            values[:, cols] = rows.T
        missing = np.flatnonzero(np.isnan(values[0]))
        if missing.size:
            config = np.unravel_index(int(missing[0]), cards)
            names = ", ".join(states[k] for states, k in zip(parent_states, config, strict=True))
            raise self.fail(f"a row for the parent configuration ({names}) of {var!r}", start)
        sums = values.sum(axis=0)
        bad = np.abs(sums - 1.0) > self.tolerance
        if bad.any():
            col = int(np.flatnonzero(bad)[0])
            raise self.fail(
                f"probabilities of {var!r} summing to 1, column {col} sums to {sums[col]:.6g}",
                start,
            )
        return values / sums


# -- public API --------------------------------------------------------------------------------
def parse_bif(text: str, tolerance: float = 1e-3) -> BIFNetwork:
    """Parse BIF text into plain data (no model objects).

    Parameters
    ----------
    text : str
        The BIF source.
    tolerance : float, default 1e-3
        Largest accepted ``|column sum - 1|`` of a table; columns are divided by their sums.

    Returns
    -------
    BIFNetwork
        Name, state names and one :class:`BIFBlock` per variable.

    Raises
    ------
    BIFParseError
        With ``.line`` and a message saying what was expected and what was found.
    """
    return _Parser(text, tolerance).parse()


def _load_text(source: str | os.PathLike) -> str:
    if isinstance(source, str) and ("\n" in source or "{" in source):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"read_bif expects a path or BIF text, got {type(source).__name__}")
    raw = Path(source).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def read_bif(path_or_text: str | os.PathLike, tolerance: float = 1e-3) -> BayesianNetwork:
    """Read a Bayesian network from a BIF file (plain or gzip) or from BIF text.

    Parameters
    ----------
    path_or_text : str or os.PathLike
        A path (``.bif`` or ``.bif.gz``; gzip is recognised by its magic bytes), or the BIF text
        itself: a ``str`` holding a newline or a ``{`` is taken as text.
    tolerance : float, default 1e-3
        Largest accepted ``|column sum - 1|`` of a probability table (see Notes).

    Returns
    -------
    BayesianNetwork
        Nodes in declaration order, edges parent -> child, one :class:`TabularCPD` per node whose
        state names are the declared ones. The model passes ``check_model()``.

    Raises
    ------
    BIFParseError
        On a syntax error, an undeclared variable or state, a missing or duplicated table row,
        a wrong number of values, or a column whose sum is further than ``tolerance`` from 1;
        the message names the line and what was expected.

    Notes
    -----
    Published networks round their probabilities (the bnlearn files here sum to 1 within
    3e-7, hand-made files often only within ~1e-4), while :class:`TabularCPD` accepts columns
    within 1e-6 of 1; every column is therefore divided by its sum. Columns already summing to
    1 change by at most a rounding error, so :func:`write_bif` followed by :func:`read_bif`
    gives back the same numbers.
    """
    net = parse_bif(_load_text(path_or_text), tolerance)
    model = BayesianNetwork()
    model.add_nodes_from(list(net.states))
    model.add_edges_from([(p, var) for var, block in net.blocks.items() for p in block.parents])
    cpds = []
    for var, block in net.blocks.items():
        names = {v: net.states[v] for v in (var, *block.parents)}
        cpds.append(
            TabularCPD(
                var,
                len(net.states[var]),
                block.values,
                evidence=block.parents or None,
                evidence_card=[len(net.states[p]) for p in block.parents] or None,
                state_names=names,
            )
        )
    model.add_cpds(*cpds)
    model.check_model()
    return model


def _quote(name) -> str:
    """A name as a BIF token: bare when the reader reads it back unchanged, else quoted."""
    name = str(name)
    if (
        _NAME.fullmatch(name)
        and not name.startswith('"')
        and "//" not in name
        and "/*" not in name
    ):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _format_values(values: np.ndarray) -> str:
    return ", ".join(map(repr, values.tolist()))


def format_bif(model: BayesianNetwork, name: str = "unknown") -> str:
    """Return the BIF text of a model (see :func:`write_bif`)."""
    model.check_model()
    out = [f"network {_quote(name)} {{\n}}\n"]
    for var in model.nodes():
        states = ", ".join(_quote(s) for s in model.states(var))
        out.append(
            f"variable {_quote(var)} {{\n"
            f"  type discrete [ {len(model.states(var))} ] {{ {states} }};\n}}\n"
        )
    for var in model.nodes():
        cpd = model.get_cpds(var)
        values = np.asarray(cpd.get_values(), dtype=np.float64)
        if not cpd.evidence:
            out.append(
                f"probability ( {_quote(var)} ) {{\n  table {_format_values(values[:, 0])};\n}}\n"
            )
            continue
        parents = ", ".join(_quote(p) for p in cpd.evidence)
        out.append(f"probability ( {_quote(var)} | {parents} ) {{\n")
        grids = np.meshgrid(*[np.arange(c) for c in cpd.evidence_card], indexing="ij")
        configs = np.stack([g.ravel() for g in grids], axis=1)
        labels = [[_quote(s) for s in cpd.state_names[p]] for p in cpd.evidence]
        for col, config in enumerate(configs.tolist()):
            head = ", ".join(labels[k][i] for k, i in enumerate(config))
            out.append(f"  ({head}) {_format_values(values[:, col])};\n")
        out.append("}\n")
    return "".join(out)


def write_bif(model: BayesianNetwork, path: str | os.PathLike, name: str = "unknown") -> None:
    """Write a model as a BIF file that :func:`read_bif` reads back to the same numbers.

    Parameters
    ----------
    model : BayesianNetwork
        A model that passes ``check_model()``. Every variable name and state name is written
        bare when possible and as a quoted string otherwise.
    path : str or os.PathLike
        Target file; gzip-compressed when it ends with ``.gz``. The file is written to a
        temporary file in the same directory and moved into place with ``os.replace``, so
        readers never see a partial file.
    name : str, default "unknown"
        The network name written in the ``network`` block.

    Notes
    -----
    Probabilities are written with ``repr`` (shortest text that parses to the same float64);
    a table row is written for every parent configuration, the last parent varying fastest.
    """
    data = format_bif(model, name).encode("utf-8")
    path = Path(path)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644  # not mkstemp's 0o600
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
