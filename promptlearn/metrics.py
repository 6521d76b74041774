"""Classification metrics for reports: accuracy, macro-F1, per-class scores, confusion matrix (scikit-learn)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def classification_report(truth: Sequence[int], predicted: Sequence[int], classes: Sequence[str]) -> dict[str, Any]:
    """Metrics as a JSON-ready dict; ``truth`` and ``predicted`` are class indices into ``classes``."""
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


def format_report(report: dict[str, Any]) -> str:
    """A human-readable report: headline metrics, per-class table, confusion matrix (rows: truth)."""
    classes = report["classes"]
    lines = [f"examples: {report.get('n_examples', sum(r['support'] for r in report['per_class'].values()))}"
             + (f" (subset of {report['n_available']}, seed {report['subset_seed']})"
                if report.get("subset_seed") is not None else ""),
             f"accuracy: {100 * report['accuracy']:.2f} %", f"macro-F1: {100 * report['macro_f1']:.2f} %"]
    if report.get("examples_per_second"):
        lines.append(f"speed:    {report['examples_per_second']} examples/s ({report['seconds']} s)")
    width = max(len(c) for c in classes) + 2
    lines += ["", f"{'class':<{width}}precision  recall     f1  support"]
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
