"""Scoring models of bundlerec.

Every model implements ``fit(train: Interactions, **side_info) -> self`` and
``score(cases: Cases) -> ndarray (n, n_items) float32`` (higher is better).
:mod:`bundlerec.models.baselines` holds the non-learned baselines: ``Popularity``,
``CoOccurrence``, ``ItemKNN`` and ``Transition``.
"""
