"""Seeded sampling of examples: ``k`` per class (:func:`sample_k_shot`, :func:`k_shot_indices`) and a fixed subset
(:func:`subsample`), with a numpy Generator so a seed always gives the same picks, in the original order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..core.errors import DataError
from .tasks import Examples, Labels

__all__ = [
    "k_shot_indices",
    "sample_k_shot",
    "subsample",
]


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------


def k_shot_indices(labels: Sequence[str], k: int, seed: int, *, strict: bool = True) -> list[int]:
    """The positions of ``k`` examples per class, drawn with a seeded numpy Generator, in original order
    (ascending). A class with fewer than ``k`` examples is an error unless ``strict=False`` (take all)."""
    if k < 1:
        raise DataError(f"k must be at least 1, got {k}")
    counts: dict[str, int] = {}
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
    short = {c: n for c, n in counts.items() if n < k}
    if short and strict:
        raise DataError(f"fewer than k={k} examples for class(es) {short}; pass strict=False to take them all")
    rng = np.random.default_rng(seed)
    taken: dict[str, int] = {c: 0 for c in counts}
    chosen: list[int] = []
    for i in rng.permutation(len(labels)).tolist():
        lab = labels[i]
        if taken[lab] < k:
            taken[lab] += 1
            chosen.append(i)
    chosen.sort()
    return chosen


def sample_k_shot(
    examples: Sequence[Mapping[str, str]],
    labels: Sequence[str] | None,
    k: int,
    seed: int,
    *,
    strict: bool = True,
) -> tuple[Examples, list[str]]:
    """Pick ``k`` examples per class with a seeded numpy Generator; the picks keep their original
    order. A class with fewer than ``k`` examples is an error unless ``strict=False`` (take all).
    (:func:`k_shot_indices` gives the positions.)"""
    if labels is None:
        raise DataError("sample_k_shot needs labels")
    if len(examples) != len(labels):
        raise DataError(f"{len(examples)} examples but {len(labels)} labels")
    chosen = k_shot_indices(labels, k, seed, strict=strict)
    return [dict(examples[i]) for i in chosen], [labels[i] for i in chosen]


def subsample(
    examples: Sequence[Mapping[str, str]],
    labels: Sequence[str] | None,
    n: int,
    seed: int,
) -> tuple[Examples, Labels]:
    """A fixed seeded subset of ``n`` examples in original order (a prefix of one seeded
    permutation, so smaller n with the same seed gives a subset); n >= len returns all."""
    if labels is not None and len(examples) != len(labels):
        raise DataError(f"{len(examples)} examples but {len(labels)} labels")
    if n < 0:
        raise DataError(f"n must be non-negative, got {n}")
    if n >= len(examples):
        return [dict(e) for e in examples], (list(labels) if labels is not None else None)
    idx = sorted(np.random.default_rng(seed).permutation(len(examples))[:n].tolist())
    return [dict(examples[i]) for i in idx], ([labels[i] for i in idx] if labels is not None else None)

