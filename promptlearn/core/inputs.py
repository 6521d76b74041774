"""Examples and targets as the estimators take them: input normalisation in one place.

``as_examples`` turns what a user passes as ``X`` (strings, dicts, a pandas DataFrame, a ``datasets.Dataset``)
into a list of dicts; ``soft_targets`` tells soft targets (class probabilities, for distillation) from hard
labels. Torch-free.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .errors import DataError


def as_examples(X: Any, fields: Iterable[str]) -> list[dict[str, Any]]:
    """Examples as dicts from strings, dicts, a pandas DataFrame or a ``datasets.Dataset``.

    A plain string fills the template's only field; templates with several fields need dicts.
    """
    if isinstance(X, (str, Mapping)):
        X = [X]
    if hasattr(X, "to_dict") and hasattr(X, "columns"):  # pandas DataFrame
        return X.to_dict(orient="records")
    if hasattr(X, "column_names") and hasattr(X, "to_list"):  # datasets.Dataset
        return list(X.to_list())
    fields = sorted(fields)
    examples = []
    for position, item in enumerate(X):
        if isinstance(item, Mapping):
            examples.append(dict(item))
        elif isinstance(item, str):
            if len(fields) != 1:
                raise DataError(f"item {position} is a plain string, but the template uses the fields {fields}; "
                                "pass dicts (or a DataFrame) with those keys")
            examples.append({fields[0]: item})
        else:
            raise DataError(f"item {position} is a {type(item).__name__}; pass strings, dicts, a pandas DataFrame "
                            "or a datasets.Dataset")
    return examples


def soft_targets(y: Any, n_classes: int | None = None) -> np.ndarray | None:
    """``y`` as soft targets (a float array ``[n_examples, n_classes]`` of class probabilities) when it is
    two-dimensional, else ``None`` (``y`` holds hard labels). Used by distillation (``PromptEnsemble.distill``):
    ``fit(X, probabilities)`` trains with cross-entropy against the probabilities."""
    if y is None or isinstance(y, (str, bytes, Mapping)):
        return None
    try:
        if np.ndim(y) != 2:
            return None
        targets = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):  # ragged or non-numeric: not soft targets; the label checks will explain
        return None
    if n_classes is not None and targets.shape[1] != n_classes:
        raise DataError(f"soft targets have {targets.shape[1]} columns but there are {n_classes} classes; "
                        "give one probability per class, in class order")
    if targets.shape[1] < 2:
        raise DataError(f"soft targets need one column per class (at least two), got shape {targets.shape}")
    if not np.isfinite(targets).all() or (targets < 0).any():
        raise DataError("soft targets must be finite, non-negative class probabilities")
    sums = targets.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-4):
        worst = int(np.abs(sums - 1.0).argmax())
        raise DataError(f"soft targets must sum to 1 over the classes; row {worst} sums to {sums[worst]:.6g}")
    return targets / sums[:, None]
