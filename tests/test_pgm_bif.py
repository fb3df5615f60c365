"""BIF reading and writing: the networks of ``tests/networks`` (and, where present, the shared
bnlearn networks), round trips, odd names, bad input."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pgm.errors import BIFParseError, ModelError
from pgm.io import read_bif, write_bif
from pgm.io.bif import format_bif, parse_bif
from pgm.models import BayesianNetwork, TabularCPD

NETWORKS = Path(__file__).resolve().parent / "networks"
# name -> (nodes, edges) of the networks of tests/networks (hand-written or generated)
OURS = {"clinic": (9, 13), "hub45": (45, 109)}
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "bif"
# name -> (nodes, edges) of the bnlearn networks (optional: not in a clone of the repo alone)
BNLEARN = {
    "asia": (8, 8),
    "cancer": (5, 4),
    "earthquake": (5, 4),
    "sachs": (11, 17),
    "survey": (6, 6),
    "child": (20, 25),
    "insurance": (27, 52),
    "alarm": (37, 46),
    "water": (32, 66),
    "barley": (48, 84),
    "mildew": (35, 46),
}


def shared(name: str) -> Path:
    path = SHARED / f"{name}.bif.gz"
    if not path.exists():
        pytest.skip(f"optional: the shared bnlearn network {path} is absent")
    return path


def assert_same_model(actual: BayesianNetwork, expected: BayesianNetwork, atol: float) -> None:
    assert actual.nodes() == expected.nodes(), "node lists differ"
    assert set(actual.edges()) == set(expected.edges()), (
        f"edges differ: {set(actual.edges()) ^ set(expected.edges())}"
    )
    for node in expected.nodes():
        a, e = actual.get_cpds(node), expected.get_cpds(node)
        assert a.evidence == e.evidence, f"{node}: parents {a.evidence} != {e.evidence}"
        assert a.state_names == e.state_names, f"{node}: state names differ"
        diff = np.abs(a.get_values() - e.get_values()).max()
        assert diff <= atol, f"{node}: CPT values differ by {diff:.3g} > {atol}"


def round_trip(model: BayesianNetwork, target: Path) -> None:
    """Write ``model`` to ``target`` (gzip by suffix), read it back, compare."""
    write_bif(model, target)
    assert target.read_bytes()[:2] == b"\x1f\x8b" if target.suffix == ".gz" else True
    assert_same_model(read_bif(target), model, atol=1e-12)
    assert [p.name for p in target.parent.iterdir()] == [target.name], "temporary file left"


@pytest.mark.parametrize("name", list(OURS))
@pytest.mark.parametrize("suffix", [".bif", ".bif.gz"])
def test_network_reads_and_round_trips(name, suffix, tmp_path):
    model = read_bif(NETWORKS / f"{name}.bif")
    model.check_model()
    assert (len(model.nodes()), len(model.edges())) == OURS[name]
    round_trip(model, tmp_path / f"{name}{suffix}")


def test_hand_written_network_reads_as_written():
    """Odd state names, a quoted variable name, rows out of order, default rows and a table."""
    model = read_bif(NETWORKS / "clinic.bif")
    assert model.states("Age") == ["<30", "30-59", "60+"]
    assert model.states("XRay") == ["clear", "Transp.", "opaque"]
    assert model.states("Clinic visits") == ["<5", "5-11", "12+"]
    smoker = model.get_cpds("Smoker")
    assert np.allclose(smoker.get_values(), [[0.35, 0.3, 0.2], [0.65, 0.7, 0.8]])
    infection = model.get_cpds("Infection").values  # (Infection, Exposure, Age)
    assert np.allclose(infection[:, 2, 2], [0.6, 0.4])
    assert np.allclose(infection[:, 1, 0], [0.2, 0.8])
    visits = model.get_cpds("Clinic visits").values  # (visits, Cough, Fever)
    assert np.allclose(visits[:, 0, 1], [0.7, 0.2, 0.1]), visits[:, 0, 1]
    admit = model.get_cpds("Admit").values  # (Admit, XRay, Fever, Age)
    assert np.allclose(admit[:, 2, 2, 2], [0.8, 0.2])
    assert np.allclose(admit[:, 0, 1, 1], [0.05, 0.95])


@pytest.mark.parametrize("name", list(BNLEARN))
def test_shared_network_reads_and_round_trips(name, tmp_path):
    """Optional: the bnlearn networks of ``../shared/data/bif`` (real-world BIF files)."""
    model = read_bif(shared(name))
    model.check_model()
    assert (len(model.nodes()), len(model.edges())) == BNLEARN[name]
    round_trip(model, tmp_path / (f"{name}.bif.gz" if len(name) % 2 else f"{name}.bif"))


def test_conditional_rows_are_placed_by_state_name():
    # rows listed out of order; columns: (lung, tub) with tub varying fastest
    text = """
    network test { }
    variable lung { type discrete [ 2 ] { yes, no }; }
    variable tub { type discrete [ 2 ] { yes, no }; }
    variable either { type discrete [ 2 ] { yes, no }; }
    probability ( lung ) { table 0.3, 0.7; }
    probability ( tub ) { table 0.2, 0.8; }
    probability ( either | lung, tub ) {
      (no, no) 0.4, 0.6;
      (yes, yes) 0.1, 0.9;
      (no, yes) 0.3, 0.7;
      (yes, no) 0.2, 0.8;
    }
    """
    model = read_bif(text)
    cpd = model.get_cpds("either")
    assert cpd.evidence == ["lung", "tub"]
    np.testing.assert_allclose(cpd.get_values()[0], [0.1, 0.2, 0.3, 0.4], atol=1e-15)
    np.testing.assert_allclose(model.get_cpds("lung").get_values()[:, 0], [0.3, 0.7])


def test_odd_names_comments_properties_default_and_table():
    text = """// a comment
    network "two words" { property "author = someone; with {braces}" ; }
    variable Age { type discrete [ 4 ] { <5, 5-12, 12+, >=7.5 };
                   property position = (1, 2) ; }
    variable Kind { type discrete [ 3 ] { a/b, 0-3_days, Transp. }; }  /* block
    comment */
    variable "odd name" { type discrete [ 2 ] { "x y", "q\\"uote" }; }
    probability ( Age ) { table 0.1, 0.2, 0.3, 0.4; property p = 1 ; }
    probability ( Kind | Age ) {
      default 0.2, 0.3, 0.5;
      (12+) 1.0, 0.0, 0.0;
    }
    probability ( "odd name" | Kind ) {
      table 0.1, 0.2, 0.3, 0.9, 0.8, 0.7;
    }
    """
    model = read_bif(text)
    assert model.states("Age") == ["<5", "5-12", "12+", ">=7.5"]
    assert model.states("Kind") == ["a/b", "0-3_days", "Transp."]
    assert model.states("odd name") == ["x y", 'q"uote']
    kind = model.get_cpds("Kind").get_values()
    np.testing.assert_allclose(kind[:, 2], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(kind[:, [0, 1, 3]], np.tile([[0.2], [0.3], [0.5]], 3))
    # `table` with parents: the variable varies slowest (pgmpy layout)
    odd = model.get_cpds("odd name").get_values()
    np.testing.assert_allclose(odd, [[0.1, 0.2, 0.3], [0.9, 0.8, 0.7]])
    assert_same_model(read_bif(format_bif(model)), model, atol=1e-15)


def test_columns_are_normalised_within_tolerance():
    text = """network n { }
    variable A { type discrete [ 2 ] { a, b }; }
    probability ( A ) { table 0.33335, 0.66670; }
    """
    values = read_bif(text).get_cpds("A").get_values()[:, 0]
    np.testing.assert_allclose(values, np.array([0.33335, 0.6667]) / 1.00005, rtol=1e-14)
    with pytest.raises(BIFParseError, match="summing to 1") as info:
        read_bif(text, tolerance=1e-5)
    assert info.value.line == 3


BAD = {
    "missing semicolon": (
        "network n { }\nvariable A { type discrete [ 2 ] { a, b } }\n",
        2,
        "';'",
    ),
    "state count": ("variable A {\n type discrete [ 3 ] { a, b };\n}\n", 2, "[ 2 ]"),
    "unknown keyword": ("network n { }\nvariabel A { }\n", 2, "'variable'"),
    "undeclared variable": (
        "variable A { type discrete [ 2 ] { a, b }; }\n\nprobability ( B ) { table 1, 0; }\n",
        3,
        "declared variable",
    ),
    "unknown parent": (
        "variable A { type discrete [ 2 ] { a, b }; }\n"
        "probability ( A | Z ) {\n (a) 0.5, 0.5; }\n",
        2,
        "declared variable",
    ),
    "unknown parent state": (
        "variable A { type discrete [ 2 ] { a, b }; }\n"
        "variable B { type discrete [ 2 ] { a, b }; }\n"
        "probability ( A ) { table 0.5, 0.5; }\n"
        "probability ( B | A ) {\n (a) 0.5, 0.5;\n (c) 0.5, 0.5;\n}\n",
        6,
        "not 'c'",
    ),
    "wrong value count": (
        "variable A { type discrete [ 2 ] { a, b }; }\n"
        "probability ( A ) {\n table 0.2, 0.3, 0.5; }\n",
        3,
        "2 probabilities",
    ),
    "bad number": (
        "variable A { type discrete [ 2 ] { a, b }; }\n"
        "probability ( A ) {\n\n table 0.2, 0.x8; }\n",
        4,
        "a number",
    ),
    "empty list item": (
        "variable A { type discrete [ 2 ] { a, b }; }\nprobability ( A ) {\n table 0.2,, 0.8; }\n",
        3,
        "a number",
    ),
    "missing row": (
        "variable A { type discrete [ 2 ] { a, b }; }\n"
        "variable B { type discrete [ 2 ] { a, b }; }\n"
        "probability ( A ) { table 0.5, 0.5; }\n"
        "probability ( B | A ) {\n (a) 0.5, 0.5;\n}\n",
        4,
        "parent configuration (b)",
    ),
    "duplicate row": (
        "variable A { type discrete [ 2 ] { a, b }; }\n"
        "variable B { type discrete [ 2 ] { a, b }; }\n"
        "probability ( A ) { table 0.5, 0.5; }\n"
        "probability ( B | A ) {\n (a) 0.5, 0.5;\n (b) 0.5, 0.5;\n (a) 0.5, 0.5;\n}\n",
        7,
        "once",
    ),
    "negative": (
        "variable A { type discrete [ 2 ] { a, b }; }\nprobability ( A ) { table -0.5, 1.5; }\n",
        2,
        "non-negative",
    ),
    "no probability block": (
        "variable A { type discrete [ 2 ] { a, b }; }\n"
        "variable B { type discrete [ 2 ] { a, b }; }\n"
        "probability ( A ) { table 0.5, 0.5; }\n",
        2,
        "no probability block",
    ),
    "end of input": (
        "variable A { type discrete [ 2 ] { a, b }; }\nprobability ( A ) {\n",
        3,
        "end of input",
    ),
    "empty": ("\n  // nothing\n", 3, "a BIF network"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_malformed_input_names_the_line(case):
    text, line, fragment = BAD[case]
    with pytest.raises(BIFParseError) as info:
        parse_bif(text)
    assert info.value.line == line, f"{case}: reported line {info.value.line}, expected {line}"
    assert fragment in str(info.value), f"{case}: message {str(info.value)!r} lacks {fragment!r}"
    assert str(info.value).startswith(f"line {line}:")


def test_cycle_in_file_is_rejected():
    text = """variable A { type discrete [ 2 ] { a, b }; }
    variable B { type discrete [ 2 ] { a, b }; }
    probability ( A | B ) { (a) 0.5, 0.5; (b) 0.5, 0.5; }
    probability ( B | A ) { (a) 0.5, 0.5; (b) 0.5, 0.5; }
    """
    with pytest.raises(ValueError, match="cycle"):
        read_bif(text)


def test_paths_text_and_gzip_are_told_apart(tmp_path):
    text = "network n { }\nvariable A { type discrete [ 2 ] { a, b }; }\n" + (
        "probability ( A ) { table 0.25, 0.75; }\n"
    )
    plain, packed = tmp_path / "n.bif", tmp_path / "n.bif.gz"
    plain.write_text(text)
    packed.write_bytes(gzip.compress(text.encode()))
    expected = read_bif(text)
    for source in (plain, str(plain), packed, str(packed)):
        assert_same_model(read_bif(source), expected, atol=0.0)
    with pytest.raises(FileNotFoundError):
        read_bif(tmp_path / "absent.bif")
    with pytest.raises(TypeError, match="path or BIF text"):
        read_bif(42)


def test_failed_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "m.bif"
    target.write_text("old")
    broken = BayesianNetwork([("A", "B")])
    broken.add_cpds(TabularCPD("A", 2, [[0.5], [0.5]]))
    with pytest.raises(ModelError):
        write_bif(broken, target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.bif"]


NAME_CHARS = st.text(alphabet="ab<>=+-_./ \"'\\|;,(){}#", min_size=1, max_size=6)


@st.composite
def random_networks(draw):
    """A random DAG of 1-5 nodes (edges only from lower to higher index) with odd names."""
    n = draw(st.integers(1, 5))
    names = draw(st.lists(NAME_CHARS, min_size=n, max_size=n, unique=True))
    cards = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    states = [draw(st.lists(NAME_CHARS, min_size=c, max_size=c, unique=True)) for c in cards]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    model = BayesianNetwork()
    model.add_nodes_from(names)
    cpds = []
    for i, name in enumerate(names):
        parents = [j for j in range(i) if draw(st.booleans())]
        model.add_edges_from([(names[j], name) for j in parents])
        q = int(np.prod([cards[j] for j in parents]))
        cpds.append(
            TabularCPD(
                name,
                cards[i],
                rng.dirichlet(np.full(cards[i], 0.5), size=q).T,
                evidence=[names[j] for j in parents] or None,
                evidence_card=[cards[j] for j in parents] or None,
                state_names={names[k]: states[k] for k in [i, *parents]},
            )
        )
    model.add_cpds(*cpds)
    return model


@given(random_networks())
def test_random_networks_round_trip_through_text(model):
    assert_same_model(read_bif(format_bif(model)), model, atol=1e-15)


def test_matches_pyagrum_on_alarm():
    gum = pytest.importorskip("pyagrum", reason="pyAgrum is not installed (optional oracle)")
    path = shared("alarm")
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "alarm.bif"
        plain.write_bytes(gzip.decompress(path.read_bytes()))
        bn = gum.loadBN(str(plain))
    model = read_bif(path)
    for node in model.nodes():
        cpt, cpd = bn.cpt(node), model.get_cpds(node)
        names = list(cpt.names)[::-1]  # toarray() puts the first name on the last axis
        order = [cpd.variable, *cpd.evidence]
        table = np.transpose(cpt.toarray(), [names.index(v) for v in order])
        for axis, var in enumerate(order):
            labels = list(bn.variable(var).labels())
            table = np.take(table, [labels.index(s) for s in cpd.state_names[var]], axis=axis)
        diff = np.abs(table - cpd.values).max()
        assert diff < 1e-6, f"{node}: differs from pyAgrum by {diff:.3g}"
