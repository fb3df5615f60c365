"""Explanations against their definition: one posterior query per evidence set."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given

from bundlerec.explain import MIN_RATIO, explain_bundle
from bundlerec.models.copurchase import CoPurchaseNetwork, item_node, user_node
from bundlerec.prep import Encoder, Interactions

N_ITEMS, N_USERS = 14, 60


def random_baskets(rng: np.random.Generator) -> Interactions:
    """Baskets of correlated items: each basket draws around one of a few themes."""
    themes = rng.dirichlet(np.full(N_ITEMS, 0.3), size=4)
    users, items, baskets = [], [], []
    for b in range(400):
        user = int(rng.integers(N_USERS))
        chosen = rng.choice(N_ITEMS, size=int(rng.integers(1, 5)), replace=False, p=themes[b % 4])
        users += [user] * chosen.size
        items += chosen.tolist()
        baskets += [b] * chosen.size
    order = np.argsort(users, kind="stable")
    n = len(users)
    return Interactions(
        np.asarray(users)[order],
        np.asarray(items)[order],
        np.asarray(baskets)[order],
        np.zeros(n, np.int64),
        np.full(n, 3, np.int8),
        N_USERS,
        N_ITEMS,
    )


@pytest.fixture(scope="module", params=["chow-liu", "hill-climb"])
def setting(request):
    rng = np.random.default_rng(7)
    features = {"age": rng.integers(0, 3, N_USERS), "region": rng.integers(0, 2, N_USERS)}
    features["age"][:5] = -1  # unknown for a few shoppers: no attribute evidence
    known = {name: np.maximum(codes, 0) for name, codes in features.items()}
    net = CoPurchaseNetwork(n_top=10, structure=request.param).fit(random_baskets(rng), known)
    net.set_user_features(features)
    items = Encoder().fit([f"p{j:02d}" for j in range(N_ITEMS)])
    user_state = {name: {"classes": ["a", "b", "c"]} for name in features}
    return net, items, user_state


def definition(net, items, user_state, bundle, user, context, anchors):
    """``[(label, ratio) or None]`` per non-anchor bundle item in the network: the piece of
    evidence whose removal lowers ``P(item | evidence)`` most, by 1 + |E| single queries."""
    out = []
    for j in bundle:
        if j in anchors or j not in net.index:
            continue
        evidence = {}
        for c in context:
            if c not in bundle and c in net.index:
                evidence[item_node(c)] = ("1", f"in cart: {items.classes_[c]}")
        for name in net.attributes:
            code = int(net.user_features[name][user]) if user >= 0 else -1
            if code >= 0:
                value = user_state[name]["classes"][code]
                evidence[user_node(name)] = (str(code), f"shopper {name} = {value}")
        for o in bundle:
            if o != j and o in net.index:
                evidence[item_node(o)] = ("1", f"bundled with {items.classes_[o]}")

        node = item_node(j)

        def p(given, node=node):
            posterior = net.engine.query([node], evidence=given or None)
            return float(posterior.get_value(**{node: "1"}))

        states = {v: s for v, (s, _) in evidence.items()}
        full = p(states)
        ratios = [full / p({u: s for u, s in states.items() if u != v}) for v in states]
        best = int(np.argmax(ratios)) if ratios else None
        if best is None or ratios[best] < MIN_RATIO:
            out.append(None)
        else:
            out.append((list(evidence.values())[best][1], ratios[best]))
    return out


@given(data=st.data())
def test_explanations_equal_the_per_subset_definition(setting, data):
    net, items, user_state = setting
    bundle = tuple(data.draw(st.permutations(range(N_ITEMS)))[: data.draw(st.integers(1, 4))])
    anchors = list(bundle[: data.draw(st.integers(0, len(bundle) - 1))])
    cart = data.draw(st.lists(st.integers(0, N_ITEMS - 1), max_size=4, unique=True))
    user = data.draw(st.integers(-1, N_USERS - 1))
    got = explain_bundle(net, items, user_state, bundle, user, [*cart, *anchors], anchors)
    assert [r["item_id"] for r in got] == [str(items.classes_[j]) for j in bundle]
    explained = [r for j, r in zip(bundle, got) if j not in anchors and j in net.index]
    for record, expected in zip(
        explained,
        definition(net, items, user_state, bundle, user, [*cart, *anchors], anchors),
        strict=True,
    ):
        if expected is None:
            assert record["because"] is None and record["note"] == "popular choice"
        else:
            assert record["because"] == expected[0]
            assert record["ratio"] == pytest.approx(expected[1], rel=1e-9)
    for j, record in zip(bundle, got):
        if j in anchors:
            assert record["note"] == "anchor"
        elif j not in net.index:
            assert record["note"] == "not in the co-purchase network"
