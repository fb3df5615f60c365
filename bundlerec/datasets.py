"""A built-in synthetic shop with known structure, for demos and tests.

:func:`synthetic_shop` simulates users who buy baskets over a number of days in a shop of 30
categories, 10 chains of three complements each (:data:`CHAINS`); :data:`COMPLEMENTS` is the
category-level complement graph (``pasta -> pasta sauce -> cheese``, ``phone -> phone case ->
charger``, ...). The generative story, per user:

1. Segment: an age band (:data:`AGE_BANDS`) and a region (:data:`REGIONS`). Department weights are
   1, multiplied by the factors of :data:`AGE_TASTE` and :data:`REGION_TASTE`, then by a
   Gamma(4, 1/4) draw per user and department (personal taste).
2. ``1 + Poisson(3)`` shopping trips on distinct random days among ``n_days``, each at a random
   time between 08:00 and 22:00 UTC (days start 2024-01-01).
3. A trip's first category is, with probability :data:`P_FOLLOW`, a complement of the last
   category the user bought on the previous trip (the sequential signal); otherwise a department
   is drawn by the user's weights, a chain of it uniformly, and a position in the chain with
   probabilities (0.6, 0.25, 0.15).
4. The basket has ``1 + Binomial(4, 0.35)`` items (1-5). Each next item's category is, with
   probability :data:`P_COMPLEMENT`, a complement of the previous item's category (when it has
   one), else a fresh draw as in 3. Within a category an item is drawn by popularity
   (Zipf weights ``1 / rank**0.8``); an item already in the basket is not added twice.
5. Every purchase is preceded, with probability 0.6, by a ``click`` on the item and, with
   probability 0.5, by a ``cart`` event; with probability 0.5 a trip also starts with a ``view``
   of an item of its first category (drawn by popularity, so it may or may not be bought).
   Purchases are 30-300 s apart, so a 30-minute window recovers the trips. All events of a trip
   share its ``basket_id``; the basket proper is the trip's ``purchase`` rows.

Items: ``n_items`` spread evenly over the categories, a brand among three of the department, a
log-normal price ``median * exp(0.35 * N(0, 1))`` around the category median (:data:`CHAINS`).
Food purchases have quantity ``1 + Poisson(0.3)``, all others 1.

Options for campaigns and new arrivals (all off by default: the default shop is unchanged, draw
for draw; their own draws come from a second generator seeded by ``(seed, 1)``):

- ``titles=True``: each item gets a style (:data:`STYLES`) and a ``title`` and ``description``
  written from its brand, category and two words of its style's vocabulary (plus a model code,
  noise), e.g. ``"Verde organic pasta N-41"`` / ``"natural pasta, farm fresh"``.
- ``style_taste=s > 0``: each shopper has style preferences ``pi_u ~ Dirichlet(0.5)``, and
  within a category an item is drawn with weight ``popularity * pi_u[style] ** s``, so the
  style words of the text say what a shopper picks within a category.
- ``new_share=q > 0``: a share ``q`` of each category's items (never its first) arrives on a
  day drawn uniformly in the second half of the period and cannot be bought before; the items
  table then has an ``arrival`` column (epoch seconds of that day, 0 for items there from the
  start).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bundlerec.data import EVENT_TYPES

__all__ = [
    "AGE_BANDS",
    "AGE_TASTE",
    "CATEGORIES",
    "CHAINS",
    "COMPLEMENTS",
    "DEPARTMENT_OF",
    "P_COMPLEMENT",
    "P_FOLLOW",
    "REGIONS",
    "REGION_TASTE",
    "STYLES",
    "synthetic_shop",
]

CHAINS: dict[str, tuple[tuple[str, float], ...]] = {
    "food": (
        (("pasta", 2.0), ("pasta sauce", 3.0), ("cheese", 5.0)),
        (("bread", 2.5), ("butter", 3.0), ("jam", 3.5)),
        (("coffee", 8.0), ("milk", 1.5), ("biscuits", 2.5)),
    ),
    "electronics": (
        (("phone", 400.0), ("phone case", 20.0), ("charger", 25.0)),
        (("laptop", 900.0), ("mouse", 25.0), ("laptop bag", 45.0)),
        (("camera", 500.0), ("memory card", 20.0), ("tripod", 40.0)),
    ),
    "diy": ((("paint", 30.0), ("paint brush", 8.0), ("masking tape", 4.0)),),
    "garden": ((("plant", 15.0), ("plant pot", 12.0), ("potting soil", 8.0)),),
    "sport": ((("running shoes", 90.0), ("sports socks", 10.0), ("water bottle", 15.0)),),
    "pets": ((("dog food", 25.0), ("dog treats", 6.0), ("dog leash", 18.0)),),
}
"""Department -> chains of (category, median price); each chain lists complements in order."""

CATEGORIES: tuple[str, ...] = tuple(
    c for chains in CHAINS.values() for ch in chains for c, _ in ch
)
"""The 30 categories, chain by chain."""

DEPARTMENT_OF: dict[str, str] = {
    c: dept for dept, chains in CHAINS.items() for ch in chains for c, _ in ch
}
"""Category -> department."""

COMPLEMENTS: dict[str, tuple[str, ...]] = {
    category: tuple(c for c, _ in chain[k + 1 : k + 2])
    for chains in CHAINS.values()
    for chain in chains
    for k, (category, _) in enumerate(chain)
}
"""The complement graph: category -> the categories bought after it (the next in its chain;
the last of a chain has none)."""

AGE_BANDS: tuple[str, ...] = ("18-29", "30-44", "45-64", "65+")
REGIONS: tuple[str, ...] = ("north", "south", "east", "west")
AGE_TASTE: dict[str, dict[str, float]] = {
    "18-29": {"electronics": 3.0, "sport": 2.0},
    "30-44": {"food": 2.0, "diy": 2.0},
    "45-64": {"garden": 3.0, "diy": 2.0},
    "65+": {"food": 2.0, "garden": 2.0, "pets": 2.0},
}
"""Age band -> department weight factors."""
REGION_TASTE: dict[str, dict[str, float]] = {
    "north": {"pets": 2.0},
    "south": {"garden": 2.0},
    "east": {"electronics": 2.0},
    "west": {"sport": 2.0},
}
"""Region -> department weight factors."""

STYLES: dict[str, tuple[str, ...]] = {
    "organic": ("organic", "natural", "farm", "fresh", "green"),
    "premium": ("premium", "deluxe", "luxury", "signature", "finest"),
    "budget": ("value", "basic", "saver", "everyday", "essential"),
    "sporty": ("active", "pro", "performance", "power", "extreme"),
    "classic": ("classic", "traditional", "heritage", "original", "vintage"),
}
"""Item styles and the words their titles and descriptions are written with."""
_BRAND_NAMES = ("Verde", "Nordik", "Solano", "Brightway", "Kessler", "Aurum", "Mavi", "Tallis")

P_FOLLOW = 0.5
"""Probability that a trip starts with a complement of the previous trip's last category."""
P_COMPLEMENT = 0.7
"""Probability that the next item of a basket is a complement of the previous one."""

_START = 1_704_067_200  # 2024-01-01T00:00:00Z
_DEPARTMENTS = tuple(CHAINS)
_CHAIN_POSITION = np.array([0.6, 0.25, 0.15])


class _Shop:
    """Lookup tables for the simulation (categories as indices into CATEGORIES)."""

    def __init__(self, n_items: int, rng: np.random.Generator) -> None:
        median = {c: p for chains in CHAINS.values() for ch in chains for c, p in ch}
        self.category = np.arange(n_items) % len(CATEGORIES)
        self.members = [np.flatnonzero(self.category == c) for c in range(len(CATEGORIES))]
        self.popularity = []
        for members in self.members:
            weights = 1.0 / np.arange(1, len(members) + 1) ** 0.8
            weights = rng.permutation(weights)
            self.popularity.append(weights / weights.sum())
        medians = np.array([median[CATEGORIES[c]] for c in self.category])
        self.price = np.round(medians * np.exp(0.35 * rng.standard_normal(n_items)), 2)
        self.brand = np.array(
            [
                f"{DEPARTMENT_OF[CATEGORIES[c]]}-brand-{b}"
                for c, b in zip(self.category, rng.integers(0, 3, n_items), strict=True)
            ]
        )
        index = {c: k for k, c in enumerate(CATEGORIES)}
        self.complement = [[index[c] for c in COMPLEMENTS[name]] for name in CATEGORIES]
        self.chains = [
            [[index[c] for c, _ in chain] for chain in CHAINS[dept]] for dept in _DEPARTMENTS
        ]

    def fresh_category(self, weights: np.ndarray, rng: np.random.Generator) -> int:
        chains = self.chains[rng.choice(len(_DEPARTMENTS), p=weights)]
        chain = chains[rng.integers(len(chains))]
        return chain[rng.choice(3, p=_CHAIN_POSITION)]

    def item_of(
        self,
        category: int,
        rng: np.random.Generator,
        day: int = 0,
        taste: np.ndarray | None = None,
    ) -> int:
        """An item of ``category`` by popularity, among those arrived by ``day``, weighed by the
        shopper's style ``taste`` (with ``style_taste``); one draw of ``rng`` either way."""
        p = self.popularity[category]
        arrived = self.arrival_day[self.members[category]] <= day
        if taste is not None or not arrived.all():
            p = p * arrived
            if taste is not None:
                p = p * taste[self.style[self.members[category]]]
            p = p / p.sum()
        return int(rng.choice(self.members[category], p=p))


def _taste(age: str, region: str, rng: np.random.Generator) -> np.ndarray:
    weights = np.array(
        [AGE_TASTE[age].get(d, 1.0) * REGION_TASTE[region].get(d, 1.0) for d in _DEPARTMENTS]
    )
    weights = weights * rng.gamma(4.0, 0.25, len(_DEPARTMENTS))
    return weights / weights.sum()


def _extras(shop: _Shop, n_days: int, new_share: float, rng: np.random.Generator) -> None:
    """Draw the styles, titles and arrival days of ``shop``'s items with ``rng``."""
    n = shop.category.size
    names = list(STYLES)
    shop.style = rng.integers(0, len(names), n)
    shop.arrival_day = np.zeros(n, dtype=np.int64)
    for members in shop.members:
        late = members[1:][rng.random(members.size - 1) < new_share]
        shop.arrival_day[late] = rng.integers(n_days // 2, max(n_days, n_days // 2 + 1), late.size)
    brand_name = {
        b: _BRAND_NAMES[k % len(_BRAND_NAMES)] for k, b in enumerate(sorted(set(shop.brand)))
    }
    titles, descriptions = [], []
    for i in range(n):
        words = STYLES[names[shop.style[i]]]
        a, b = rng.choice(len(words), 2, replace=False)
        category = CATEGORIES[shop.category[i]]
        titles.append(
            f"{brand_name[shop.brand[i]]} {words[a]} {category} N-{rng.integers(10, 100)}"
        )
        descriptions.append(f"{words[b]} {category}, {DEPARTMENT_OF[category]}")
    shop.title, shop.description = titles, descriptions


def synthetic_shop(
    n_users: int = 2000,
    n_items: int = 300,
    n_days: int = 90,
    seed: int = 0,
    *,
    titles: bool = False,
    style_taste: float = 0.0,
    new_share: float = 0.0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Simulate a shop (see the module docstring for the generative story).

    Parameters
    ----------
    n_users : int
        Number of users (>= 1).
    n_items : int
        Number of items (>= 30: at least one per category).
    n_days : int
        Length of the period in days (>= 1).
    seed : int
        Seed of the ``numpy.random.Generator`` used; equal seeds give equal frames.
    titles : bool
        Give the items a ``title`` and a ``description`` (see the module docstring).
    style_taste : float
        ``s >= 0``: how much shoppers pick items of the styles they prefer (0: not at all).
    new_share : float
        Share in ``[0, 1)`` of each category's items that arrive during the second half of
        the period (0: all there from the start).

    Returns
    -------
    events : pandas.DataFrame
        Canonical events (``bundlerec.data`` schema) with ``basket_id``, ``quantity`` and
        ``price``, sorted by timestamp; about 22 events per user.
    items : pandas.DataFrame, shape (n_items, 4 to 7)
        ``item_id`` (``"i0000"`` ...), ``category``, ``brand``, ``price``; ``title`` and
        ``description`` with ``titles``; ``arrival`` with ``new_share``.
    users : pandas.DataFrame, shape (n_users, 3)
        ``user_id`` (``"u00000"`` ...), ``age_band``, ``region``.
    """
    if n_users < 1 or n_days < 1 or n_items < len(CATEGORIES):
        raise ValueError(
            f"need n_users >= 1, n_days >= 1, n_items >= {len(CATEGORIES)}; "
            f"got {n_users}, {n_days}, {n_items}"
        )
    if style_taste < 0 or not 0 <= new_share < 1:
        raise ValueError(
            f"need style_taste >= 0 and 0 <= new_share < 1; got {style_taste}, {new_share}"
        )
    rng = np.random.default_rng(seed)
    shop = _Shop(n_items, rng)
    extra = np.random.default_rng([seed, 1])
    _extras(shop, n_days, new_share, extra)
    prefs = extra.dirichlet(np.full(len(STYLES), 0.5), size=n_users) ** style_taste
    ages = rng.choice(len(AGE_BANDS), size=n_users, p=[0.25, 0.3, 0.3, 0.15])
    regions = rng.integers(0, len(REGIONS), n_users)
    food = {k for k, c in enumerate(CATEGORIES) if DEPARTMENT_OF[c] == "food"}
    rows: list[tuple[int, int, int, int, int, int]] = []  # user, item, time, event, trip, qty
    trip = 0
    for user in range(n_users):
        weights = _taste(AGE_BANDS[ages[user]], REGIONS[regions[user]], rng)
        taste = prefs[user] if style_taste > 0 else None
        n_trips = min(1 + rng.poisson(3.0), n_days)
        days = np.sort(rng.choice(n_days, size=n_trips, replace=False))
        last = -1
        for day in days:
            clock = _START + int(day) * 86_400 + int(rng.integers(8 * 3600, 22 * 3600))
            if last >= 0 and shop.complement[last] and rng.random() < P_FOLLOW:
                category = shop.complement[last][0]
            else:
                category = shop.fresh_category(weights, rng)
            if rng.random() < 0.5:
                seen = shop.item_of(category, rng, day, taste)
                rows.append((user, seen, clock - 600, 0, trip, 1))
            basket: list[int] = []
            for _ in range(1 + rng.binomial(4, 0.35)):
                if basket:
                    following = shop.complement[category]
                    if following and rng.random() < P_COMPLEMENT:
                        category = following[0]
                    else:
                        category = shop.fresh_category(weights, rng)
                item = shop.item_of(category, rng, day, taste)
                if item in basket:
                    continue
                basket.append(item)
                clock += int(rng.integers(30, 301))
                if rng.random() < 0.6:
                    rows.append((user, item, clock - 20, 1, trip, 1))
                if rng.random() < 0.5:
                    rows.append((user, item, clock - 5, 2, trip, 1))
                quantity = 1 + rng.poisson(0.3) if category in food else 1
                rows.append((user, item, clock, 3, trip, quantity))
                last = category
            trip += 1
    table = np.array(rows, dtype=np.int64).reshape(-1, 6)
    table = table[np.lexsort((np.arange(len(table)), table[:, 2]))]
    item_ids = np.array([f"i{k:04d}" for k in range(n_items)], dtype=object)
    user_ids = np.array([f"u{k:05d}" for k in range(n_users)], dtype=object)
    events = pd.DataFrame(
        {
            "user_id": pd.Series(user_ids[table[:, 0]], dtype=str),
            "item_id": pd.Series(item_ids[table[:, 1]], dtype=str),
            "timestamp": table[:, 2],
            "event": pd.Categorical.from_codes(table[:, 3], categories=EVENT_TYPES),
            "basket_id": pd.Series([f"t{k:06d}" for k in table[:, 4]], dtype=str),
            "quantity": table[:, 5],
            "price": shop.price[table[:, 1]],
        }
    )
    items = pd.DataFrame(
        {
            "item_id": pd.Series(item_ids, dtype=str),
            "category": pd.Series(np.asarray(CATEGORIES)[shop.category], dtype=str),
            "brand": pd.Series(shop.brand, dtype=str),
            "price": shop.price,
        }
    )
    if titles:
        items["title"] = pd.Series(shop.title, dtype=str)
        items["description"] = pd.Series(shop.description, dtype=str)
    if new_share > 0:
        arrival = np.where(shop.arrival_day > 0, _START + shop.arrival_day * 86_400, 0)
        items["arrival"] = arrival.astype(np.int64)
    users = pd.DataFrame(
        {
            "user_id": pd.Series(user_ids, dtype=str),
            "age_band": pd.Series(np.asarray(AGE_BANDS)[ages], dtype=str),
            "region": pd.Series(np.asarray(REGIONS)[regions], dtype=str),
        }
    )
    return events, items, users
