"""Classification metrics for reports: accuracy, macro-F1, per-class scores, confusion matrix (scikit-learn,
imported when a report is computed: a command line that only scores does not wait ~2 s for it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def classification_report(truth: Sequence[int], predicted: Sequence[int], classes: Sequence[str]) -> dict[str, Any]:
    """Metrics as a JSON-ready dict; ``truth`` and ``predicted`` are class indices into ``classes``."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    labels = list(range(len(classes)))
    truth, predicted = np.asarray(truth, dtype=int), np.asarray(predicted, dtype=int)
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    return {
        "accuracy": float(accuracy_score(truth, predicted)) if len(truth) else float("nan"),
        "macro_f1": float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        "classes": list(classes),
        "per_class": {c: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
                      for c, p, r, f, s in zip(classes, precision, recall, f1, support)},
        "confusion_matrix": confusion_matrix(truth, predicted, labels=labels).tolist(),
    }


def format_probabilities(probabilities: dict[str, float]) -> str:
    """Class probabilities on one line: ``negative 0.120, positive 0.880``."""
    return ", ".join(f"{c} {p:.3f}" for c, p in probabilities.items())


def format_timing(n_examples: int, seconds: float, load_seconds: float | None = None) -> str:
    """``loaded in 21.3 s; scored 872 examples in 40.1 s (21.7 ex/s)``: loading the model is never counted
    in the speed (it is the same whatever the number of examples)."""
    speed = f" ({n_examples / seconds:.1f} ex/s)" if seconds > 0 and n_examples else ""
    scored = f"scored {n_examples} examples in {seconds:.1f} s{speed}"
    return scored if load_seconds is None else f"loaded in {load_seconds:.1f} s; {scored}"


def format_report(report: dict[str, Any]) -> str:
    """A human-readable report: headline metrics, per-class table, confusion matrix (rows: truth).

    Optional keys: ``variants`` (name -> a report of other predictions of the same examples, e.g. raw and
    calibrated) with ``variant`` (which of them the top-level metrics are): the others' accuracy and macro-F1
    follow the headline figures; ``content_free_prior`` (class -> probability); ``seconds`` (scoring) and
    ``load_seconds`` (model loading), printed apart by :func:`format_timing`."""
    classes = report["classes"]
    variant = report.get("variant")
    others = {name: other for name, other in (report.get("variants") or {}).items() if name != variant and other}

    def also(key: str) -> str:  # " (raw; calibrated 61.00 %)"
        figures = "".join(f"; {name} {100 * other[key]:.2f} %" for name, other in others.items())
        return f" ({variant}{figures})" if others else ""

    lines = [f"examples: {report.get('n_examples', sum(r['support'] for r in report['per_class'].values()))}"
             + (f" (subset of {report['n_available']}, seed {report['subset_seed']})"
                if report.get("subset_seed") is not None else ""),
             f"accuracy: {100 * report['accuracy']:.2f} %{also('accuracy')}",
             f"macro-F1: {100 * report['macro_f1']:.2f} %{also('macro_f1')}"]
    if report.get("content_free_prior"):
        lines.append(f"content-free prior: {format_probabilities(report['content_free_prior'])}")
    if report.get("seconds") is not None:
        lines.append("time:     " + format_timing(report.get("n_examples", 0), report["seconds"],
                                                  report.get("load_seconds")))
    width = max(len(c) for c in classes) + 2
    lines += [""] + ([f"tables below: {variant} predictions"] if others else [])
    lines += [f"{'class':<{width}}precision  recall     f1  support"]
    for c in classes:
        row = report["per_class"][c]
        lines.append(f"{c:<{width}}{row['precision']:9.3f} {row['recall']:7.3f} {row['f1']:6.3f} {row['support']:8d}")
    cell = max(7, max(len(str(v)) for r in report["confusion_matrix"] for v in r) + 2, max(len(c) for c in classes) + 2)
    short = classes
    lines += ["", "confusion matrix (rows: true class, columns: predicted)",
              " " * width + "".join(f"{s:>{cell}}" for s in short)]
    for c, row in zip(classes, report["confusion_matrix"]):
        lines.append(f"{c:<{width}}" + "".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)
