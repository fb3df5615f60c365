"""Bundle composition: every bundle respects size, budget, categories and exclusions."""

from itertools import combinations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bundlerec.compose import compose_bundles


def _problem(seed: int, n: int):
    rng = np.random.default_rng(seed)
    relevance = rng.normal(size=n)
    prices = rng.uniform(1, 50, size=n).round(2)
    categories = rng.integers(0, max(2, n // 3), size=n)
    allowed = rng.random(n) > 0.2
    pair = rng.normal(size=(n, n))
    pair = (pair + pair.T) / 2

    def coherence_one(items):
        return float(sum(pair[a, b] for a, b in combinations(items, 2))) - 0.1 * len(items)

    def coherence(bundles):
        return np.array([coherence_one(b) for b in bundles])

    coherence.one = coherence_one
    return relevance, prices, categories, allowed, coherence


def _feasible(prices, categories, allowed, size, budget, per_cat) -> int:
    """Number of bundles that satisfy every constraint, by enumeration."""
    count = 0
    for items in combinations(np.flatnonzero(allowed).tolist(), size):
        if budget is not None and prices[list(items)].sum() > budget + 1e-9:
            continue
        if np.unique(categories[list(items)], return_counts=True)[1].max() > per_cat:
            continue
        count += 1
    return count


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(3, 25),
    size=st.integers(1, 4),
    k=st.integers(1, 6),
    budget=st.one_of(st.none(), st.floats(5, 150)),
    per_cat=st.integers(1, 2),
)
def test_bundles_respect_every_constraint(seed, n, size, k, budget, per_cat):
    relevance, prices, categories, allowed, coherence = _problem(seed, n)
    bundles = compose_bundles(
        relevance,
        prices,
        categories,
        allowed,
        coherence,
        k=k,
        size=size,
        budget=budget,
        max_per_category=per_cat,
    )
    assert len(bundles) <= k
    feasible = _feasible(prices, categories, allowed, size, budget, per_cat)
    assert (len(bundles) > 0) == (feasible > 0), f"{len(bundles)} bundles, {feasible} feasible"
    seen = set()
    for b in bundles:
        assert len(b.items) == size and len(set(b.items)) == size
        assert all(allowed[j] for j in b.items), "an excluded item was bundled"
        if budget is not None:
            assert b.total_price <= budget + 1e-9
        assert b.total_price == pytest.approx(prices[list(b.items)].sum())
        _, counts = np.unique(categories[list(b.items)], return_counts=True)
        assert counts.max() <= per_cat
        assert b.log_probability == pytest.approx(coherence.one(tuple(sorted(b.items))))
        key = frozenset(b.items)
        assert key not in seen, "the same bundle was returned twice"
        seen.add(key)


def test_exhaustive_optimum_on_a_small_problem():
    """With a beam as wide as all pairs, the best bundle is the brute-force best."""
    relevance, prices, categories, allowed, coherence = _problem(3, 8)
    categories = np.arange(8)
    best = max(
        (c for c in combinations(np.nonzero(allowed)[0].tolist(), 2)),
        key=lambda c: relevance[list(c)].sum() + coherence.one(c),
    )
    bundles = compose_bundles(
        relevance,
        prices,
        categories,
        allowed,
        coherence,
        k=1,
        size=2,
        n_candidates=8,
        beam_width=64,
    )
    assert set(bundles[0].items) == set(best)


def test_infeasible_constraints_give_no_bundle():
    relevance, prices, categories, allowed, coherence = _problem(1, 6)
    assert (
        compose_bundles(relevance, prices, categories, allowed, coherence, size=2, budget=0.5)
        == []
    )
    one_category = np.zeros(6, dtype=int)
    assert compose_bundles(relevance, prices, one_category, allowed, coherence, size=2) == []


def test_bundles_differ_from_each_other():
    relevance, prices, categories, allowed, coherence = _problem(5, 20)
    bundles = compose_bundles(
        relevance,
        prices,
        np.arange(20),
        np.ones(20, bool),
        coherence,
        k=4,
        size=3,
        overlap_penalty=100.0,
    )
    assert len(bundles) == 4
    for a, b in combinations(bundles, 2):
        assert len(set(a.items) & set(b.items)) < 3


def test_bad_arguments_are_named():
    relevance, prices, categories, allowed, coherence = _problem(0, 5)
    with pytest.raises(ValueError, match="prices"):
        compose_bundles(relevance, prices[:3], categories, allowed, coherence)
    with pytest.raises(ValueError, match="size"):
        compose_bundles(relevance, prices, categories, allowed, coherence, size=0)
    with pytest.raises(ValueError, match="budget"):
        compose_bundles(relevance, prices, categories, allowed, coherence, budget=-1)


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(4, 20),
    size=st.integers(2, 4),
    n_fixed=st.integers(1, 2),
    budget=st.one_of(st.none(), st.floats(20, 150)),
)
def test_fixed_items_lead_every_bundle_and_count_in_its_constraints(
    seed, n, size, n_fixed, budget
):
    assume(size > n_fixed)
    relevance, prices, categories, allowed, coherence = _problem(seed, n)
    fixed = tuple(range(n_fixed))
    bundles = compose_bundles(
        relevance,
        prices,
        categories,
        allowed,
        coherence,
        k=3,
        size=size,
        budget=budget,
        max_per_category=2,
        fixed=fixed,
    )
    spare = allowed.copy()
    spare[list(fixed)] = False
    fits = [
        items
        for items in combinations(np.flatnonzero(spare).tolist(), size - n_fixed)
        if (budget is None or prices[list(fixed + items)].sum() <= budget + 1e-9)
        and np.unique(categories[list(fixed + items)], return_counts=True)[1].max() <= 2
    ]
    assert (len(bundles) > 0) == (len(fits) > 0)
    for b in bundles:
        assert b.items[:n_fixed] == fixed and len(set(b.items)) == size
        assert all(allowed[j] for j in b.items[n_fixed:])
        assert b.total_price == pytest.approx(prices[list(b.items)].sum())
        if budget is not None:
            assert b.total_price <= budget + 1e-9
        assert b.log_probability == pytest.approx(coherence.one(tuple(sorted(b.items))))


def test_size_must_leave_room_beside_the_fixed_items():
    relevance, prices, categories, allowed, coherence = _problem(0, 6)
    with pytest.raises(ValueError, match="size counts the fixed"):
        compose_bundles(relevance, prices, categories, allowed, coherence, size=2, fixed=(0, 1))


@given(
    seed=st.integers(0, 1000),
    n_items=st.integers(1, 300),
    n=st.integers(1, 20),
    cap=st.one_of(st.none(), st.integers(1, 3)),
)
def test_top_equals_a_scan_of_the_full_ranking(seed, n_items, n, cap):
    from bundlerec.compose import _top

    rng = np.random.default_rng(seed)
    relevance = rng.integers(0, 6, n_items).astype(float)  # many ties
    categories = rng.integers(0, 5, n_items)
    items = np.flatnonzero(rng.random(n_items) < 0.8)
    ranked = sorted(items.tolist(), key=lambda j: (-relevance[j], j))
    want, seen = [], {}
    for j in ranked:
        if cap is None or seen.get(categories[j], 0) < cap:
            seen[categories[j]] = seen.get(categories[j], 0) + 1
            want.append(j)
    got = _top(relevance, items, n, categories, cap)
    assert got.tolist() == want[:n]


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 40),
    size=st.integers(1, 4),
    k=st.integers(1, 5),
    budget=st.one_of(st.none(), st.floats(5, 150)),
    per_cat=st.integers(1, 2),
    n_candidates=st.integers(1, 8),
    objective=st.sampled_from(["probability", "revenue", "promoted"]),
    share_known=st.floats(0, 1),
)
def test_a_known_prefix_of_the_ranking_gives_the_full_bundles_or_none(
    seed, n, size, k, budget, per_cat, n_candidates, objective, share_known
):
    """``unknown`` items (the tail of the ranking by relevance, ties by code) are never read:
    the bundles are those of the full relevance, or None; never None with nothing unknown."""
    relevance, prices, categories, allowed, coherence = _problem(seed, n)
    rng = np.random.default_rng(seed + 1)
    relevance = rng.integers(0, 4, n).astype(float)  # many ties, also across the cut
    ranking = sorted(range(n), key=lambda j: (-relevance[j], j))
    unknown = np.zeros(n, dtype=bool)
    unknown[ranking[int(round(share_known * n)) :]] = True
    promoted = rng.random(n) < 0.3
    extra = {
        "probability": {},
        "revenue": {"value": np.where(rng.random(n) < 0.1, np.nan, prices)},
        "promoted": {"promoted": promoted, "n_promoted": min(1, size)},
    }[objective]
    if objective == "promoted":
        assume(promoted.any())

    def compose(relevance, **more):
        return compose_bundles(
            relevance,
            prices,
            categories,
            allowed,
            coherence,
            k=k,
            size=size,
            budget=budget,
            max_per_category=per_cat,
            n_candidates=n_candidates,
            **extra,
            **more,
        )

    full = compose(relevance)
    hidden = np.where(unknown, np.nan, relevance)  # read, these would change the bundles
    got = compose(hidden, unknown=unknown)
    assert got is None or got == full, f"{got} != {full}"
    assert compose(relevance, unknown=np.zeros(n, dtype=bool)) == full


def test_a_long_enough_prefix_settles_the_search():
    relevance, prices, categories, allowed, coherence = _problem(7, 400)
    ranking = np.lexsort((np.arange(400), -relevance))
    unknown = np.ones(400, dtype=bool)
    unknown[ranking[:120]] = False
    kwargs = {"k": 3, "size": 3, "budget": 60.0, "max_per_category": 1, "n_candidates": 6}
    full = compose_bundles(relevance, prices, categories, allowed, coherence, **kwargs)
    hidden = np.where(unknown, np.nan, relevance)
    problem = (prices, categories, allowed, coherence)
    got = compose_bundles(hidden, *problem, unknown=unknown, **kwargs)
    assert got is not None and got == full and len(full) == 3
    unknown[ranking[3:]] = True  # too short a prefix: the pool could hold an unknown item
    assert compose_bundles(hidden, *problem, unknown=unknown, **kwargs) is None
    with pytest.raises(ValueError, match="unknown has shape"):
        compose_bundles(relevance, prices, categories, allowed, coherence, unknown=unknown[:3])
    with pytest.raises(ValueError, match="fixed items must be known"):
        compose_bundles(
            relevance, prices, categories, allowed, coherence, fixed=[ranking[-1]], unknown=unknown
        )


def _loop_beam(
    relevance,
    prices,
    categories,
    candidates,
    coherence,
    fixed,
    free,
    budget,
    cap,
    value,
    promoted,
    n_promoted,
    beam_width,
):
    """The beam search one partial bundle and one candidate at a time (the oracle of
    :func:`bundlerec.compose._beam_search`): ``(items, total_price, score, log_p)``."""
    beam = [tuple(fixed)]
    for step in range(free):
        extended = {}
        left = free - step - 1
        for partial in beam:
            for j in candidates.tolist():
                items = partial + (j,)
                cats = [categories[i] for i in items]
                if j in partial or cats.count(categories[j]) > cap:
                    continue
                if budget is not None and sum(prices[i] for i in partial) + prices[j] > budget:
                    continue
                promos = sum(bool(promoted[i]) for i in items[len(fixed) :]) if n_promoted else 0
                if n_promoted and promos + left < n_promoted:
                    continue
                extended.setdefault(tuple(sorted(items)), items)
        if not extended:
            return []
        keys = sorted(extended)
        log_p = np.asarray(coherence(keys), dtype=float)
        scores, kept = [], []
        for i, key in enumerate(keys):
            items = extended[key]
            score = 0.0
            for n, j in enumerate(items):
                score = relevance[j] if n == 0 else score + relevance[j]
            score = score + log_p[i]
            if value is not None:
                total = sum(value[j] for j in items)
                worth = float(np.log(total)) if total > 0 else -np.inf
                score = score + worth
                if step == free - 1 and not np.isfinite(worth):
                    scores.append(score)
                    continue
            scores.append(score)
            kept.append(i)
        kept.sort(key=lambda i: -scores[i])  # stable: equal scores in the order of the keys
        kept = kept[:beam_width]
        beam = [extended[keys[i]] for i in kept]
        if not beam:
            return []
    return [
        (
            extended[keys[i]],
            float(prices[list(extended[keys[i]])].sum()),
            float(scores[i]),
            float(log_p[i]),
        )
        for i in kept
    ]


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 30),
    size=st.integers(1, 4),
    n_fixed=st.integers(0, 2),
    budget=st.one_of(st.none(), st.floats(5, 150)),
    cap=st.integers(1, 2),
    objective=st.sampled_from(["probability", "revenue", "promoted"]),
    ties=st.booleans(),
    beam_width=st.integers(1, 12),
)
def test_beam_search_equals_a_loop_over_partial_bundles_and_candidates(
    seed, n, size, n_fixed, budget, cap, objective, ties, beam_width
):
    from bundlerec.compose import _beam_search

    relevance, prices, categories, allowed, coherence = _problem(seed, n)
    rng = np.random.default_rng(seed + 2)
    if ties:
        relevance = rng.integers(0, 3, n).astype(float)
    assume(size > n_fixed and n > n_fixed)
    fixed = tuple(range(n_fixed))
    candidates = np.flatnonzero(allowed)
    candidates = candidates[candidates >= n_fixed]
    candidates = candidates[np.lexsort((candidates, -relevance[candidates]))]
    value = np.where(rng.random(n) < 0.1, np.nan, prices) if objective == "revenue" else None
    promoted = rng.random(n) < 0.4 if objective == "promoted" else None
    n_promoted = min(1, size - n_fixed) if objective == "promoted" else 0
    args = (
        relevance,
        prices,
        categories,
        candidates,
        coherence,
        fixed,
        size - n_fixed,
        budget,
        cap,
        value,
        promoted,
        n_promoted,
        beam_width,
    )
    got = [(b.items, b.total_price, b.score, b.log_probability) for b in _beam_search(*args)]
    assert got == _loop_beam(*args)


def test_beam_search_keys_item_sets_of_a_catalogue_too_large_for_one_int64_code():
    """Item sets whose mixed-radix code would pass 2^62 are told apart row by row."""
    from bundlerec.compose import _beam_search

    n = 70_000  # 70,000^4 > 2^62
    rng = np.random.default_rng(4)
    relevance = rng.normal(size=n)
    prices = np.ones(n)
    categories = np.arange(n)
    candidates = np.array([69_999, 5, 40_000, 12, 69_998], dtype=np.int64)
    candidates = candidates[np.lexsort((candidates, -relevance[candidates]))]

    def coherence(bundles):
        return np.array([-0.01 * sum(b) / n for b in bundles])

    beam_width = 20  # wide enough to keep every set
    args = (relevance, prices, categories, candidates, coherence, (), 4, None, 1, None, None, 0)
    args = (*args, beam_width)
    got = [(b.items, b.total_price, b.score, b.log_probability) for b in _beam_search(*args)]
    assert got == _loop_beam(*args)
    assert len(got) == 5  # the 5 sets of 4 of the 5 candidates
