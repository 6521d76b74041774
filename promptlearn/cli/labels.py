"""How the labels of a data file become classes: ``--label-map``, and integer labels read as class indices.

A label that names a class is that class. An integer label, when no class name is an integer, is read as an
index in the classes' order (``0 -> negative, 1 -> positive`` for the ``sst2`` verbalizer): the mapping used
is logged as a one-line warning, since a data set whose 0 means "positive" would otherwise be scored inverted
without a sign. When the integer labels never use 0 they may well count from 1 (star ratings 1..5): that is
refused until ``--label-map`` says which class each stands for. ``--label-map 0=positive,1=negative`` gives
the mapping explicitly (every label must then be a key of the map or a class name) and silences the note.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..core.errors import PromptlearnError, UnknownLabelError
from ..core.verbalizer import index_labels, is_int, label_indices

logger = logging.getLogger(__name__)


def parse_label_map(values: Sequence[str] | None) -> dict[str, str] | None:
    """``--label-map`` values (``RAW=CLASS`` pairs, comma-separated and/or repeated) as a dict, None if absent."""
    if not values:
        return None
    mapping: dict[str, str] = {}
    for value in values:
        for pair in value.split(","):
            raw, sep, name = (part.strip() for part in pair.partition("="))
            if not sep or not raw or not name:
                raise PromptlearnError(f"--label-map expects RAW=CLASS pairs such as 0=negative,1=positive, "
                                       f"got {pair.strip()!r}")
            if raw in mapping and mapping[raw] != name:
                raise PromptlearnError(f"--label-map maps {raw!r} twice ({mapping[raw]!r} and {name!r})")
            mapping[raw] = name
    return mapping


def class_indices(labels: Sequence[Any], classes: Sequence[str], label_map: dict[str, str] | None,
                  *, where: str, classes_from: str) -> tuple[list[int], dict[str, str]]:
    """Class index of each label, and the mapping from raw labels to classes that was not plain names (the
    ``--label-map`` given, else the integer labels read as indices; empty when every label is a class name).

    ``where`` names the data and ``classes_from`` where the classes come from (a verbalizer...) in messages.
    Errors: a ``--label-map`` class that is no class, a label neither in the map nor a class, integer labels
    without 0 (they may count from 1) and no map, an unknown label."""
    classes = [str(c) for c in classes]
    if label_map is not None:
        unknown = sorted({name for name in label_map.values() if name not in classes})
        if unknown:
            raise PromptlearnError(f"--label-map names {unknown}, which are not classes; classes: {classes}")
        missing = sorted({str(label) for label in labels} - set(label_map) - set(classes))
        if missing:
            raise PromptlearnError(f"{where}: label(s) {_shorten(missing)} are neither in --label-map nor class "
                                   f"names; classes: {classes}")
        names = [label_map.get(str(label), str(label)) for label in labels]
        return label_indices(names, classes, where=classes_from), dict(label_map)
    integers = sorted({int(label) for label in labels if str(label) not in classes and is_int(label)})
    if integers and min(integers) > 0 and not any(is_int(c) for c in classes):
        example = ",".join(f"{number}={name}" for number, name in zip(integers, classes))
        raise PromptlearnError(f"{where}: the labels are integers ({_shorten([str(i) for i in integers])}) but the "
                               f"classes are names {classes}, and no label is 0, so they may count from 1; say "
                               f"which class each stands for, e.g. --label-map {example}")
    try:
        indices = label_indices(labels, classes, where=classes_from)
    except UnknownLabelError as exc:
        raise UnknownLabelError(f"{where}: {exc}; --label-map RAW=CLASS,... maps other labels onto the classes"
                                ) from None
    used = index_labels(labels, classes)
    if used:
        logger.warning("%s: integer labels read as class indices in the classes' order: %s (pass --label-map "
                       "RAW=CLASS,... if they mean otherwise)", where,
                       ", ".join(f"{raw} -> {name}" for raw, name in used.items()))
    return indices, used


def _shorten(values: Sequence[str], limit: int = 8) -> str:
    """``a, b, c`` for a short list, ``a, b, ... (12 in all)`` for a long one."""
    shown = ", ".join(values[:limit])
    return shown if len(values) <= limit else f"{shown}, ... ({len(values)} in all)"
