"""Warnings that catch silent failure in predictions: every example put in the same class.

The rule (:func:`collapsed_class`): at least :data:`MIN_PREDICTIONS` predictions, of which at least
:data:`COLLAPSE_SHARE` (95 %) are one class, while the classifier has several. Label words that do not fit the
prompt (digits 1-5 for star ratings: every review rated "1") or a calibration that divides out too much
(every yes/no answer turned into "yes") look like this. On labelled data the warning is left out when the
true labels are themselves that lopsided (the predictions may be right). Each warning is one line, logged
(stderr), with the predicted class distribution; when calibration made the collapse, also the uncalibrated
distribution and the content-free prior that calibration divided out.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from ..core.metrics import format_probabilities

logger = logging.getLogger(__name__)

MIN_PREDICTIONS = 20
COLLAPSE_SHARE = 0.95


def class_counts(predicted: Sequence[int] | np.ndarray, classes: Sequence[str]) -> dict[str, int]:
    """How many predictions each class got, every class listed (in class order)."""
    counts = np.bincount(np.asarray(predicted, dtype=np.int64), minlength=len(classes))
    return {str(c): int(n) for c, n in zip(classes, counts)}


def collapsed_class(predicted: Sequence[int] | np.ndarray, n_classes: int) -> int | None:
    """The class that at least :data:`COLLAPSE_SHARE` of the predictions fall in, when there are at least
    :data:`MIN_PREDICTIONS` of them and more than one class; else None."""
    predicted = np.asarray(predicted, dtype=np.int64)
    if n_classes < 2 or len(predicted) < MIN_PREDICTIONS:
        return None
    counts = np.bincount(predicted, minlength=n_classes)
    top = int(counts.argmax())
    return top if counts[top] >= COLLAPSE_SHARE * len(predicted) else None


def format_counts(counts: Mapping[str, int]) -> str:
    """``negative 38, positive 2``."""
    return ", ".join(f"{c} {n}" for c, n in counts.items())


def collapse_warnings(predictions: Mapping[str, Sequence[int] | np.ndarray], classes: Sequence[str], *,
                      truth: Sequence[int] | None = None, prior: Mapping[str, float] | None = None,
                      check: Sequence[str] | None = None) -> list[str]:
    """Log (as warnings) and return one line per variant of the predictions (``{"raw": [...], "calibrated":
    [...]}``, class indices) that collapsed onto one class; ``check`` limits that to the variants named (the
    others, e.g. the raw predictions behind calibrated ones, only tell whether calibration made the collapse).
    ``truth`` (labelled data) leaves out a collapse onto the class that the true labels themselves hold at least
    :data:`COLLAPSE_SHARE` of; ``prior`` is the content-free prior, shown when the calibrated predictions
    collapse."""
    expected = collapsed_class(truth, len(classes)) if truth is not None else None
    raw = predictions.get("raw")
    messages = []
    for variant, predicted in predictions.items():
        if check is not None and variant not in check:
            continue
        top = collapsed_class(predicted, len(classes))
        if top is None or top == expected:
            continue
        counts = class_counts(predicted, classes)
        n_top = counts[str(classes[top])]
        share = f"{n_top} of {len(predicted)} predictions ({100 * n_top / len(predicted):.0f} %)"
        if variant == "calibrated" and raw is not None and collapsed_class(raw, len(classes)) is None:
            message = (f"calibration collapsed the predictions onto one class: {share} are {classes[top]!r} "
                       f"(calibrated: {format_counts(counts)}; "
                       f"uncalibrated: {format_counts(class_counts(raw, classes))})")
        else:
            label = "the predictions" if len(predictions) == 1 else f"the {variant} predictions"
            message = (f"{label} collapsed onto one class: {share} are {classes[top]!r} ({format_counts(counts)}); "
                       f"the label words may not fit the prompt (`promptlearn templates NAME` shows a shipped "
                       f"template's words)")
        if variant == "calibrated" and prior:
            message += f"; content-free prior: {format_probabilities(dict(prior))}"
        logger.warning("%s", message)
        messages.append(message)
    return messages
