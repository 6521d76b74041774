"""Batch inference on Ray Data with a saved classifier: :class:`ClassifierPredictor`, a callable class for
``ray.data.Dataset.map_batches``. Each Ray actor loads the classifier once and adds the prediction columns to
every batch it is given::

    import ray
    from promptlearn.integrations.ray import ClassifierPredictor

    ds = ray.data.read_parquet("reviews.parquet")
    scored = ds.map_batches(ClassifierPredictor, fn_constructor_kwargs={"model_dir": "runs/sst2"},
                            concurrency=2, batch_size=64, batch_format="pandas")    # num_gpus=1: one GPU each

The prediction columns are ``label`` and ``p(<class>)`` per class (``prediction_prefix`` goes before them), the
probabilities exactly as ``predict_proba`` gives them in one process; every input column is kept. A batch is a
pandas DataFrame, a dict of numpy arrays or a pyarrow Table, and comes back as the same kind. Inside a Ray actor
torch uses as many threads as the CPUs Ray gave the actor, and the actor's GPU when it was given one.

Importing this module does not import ray (a predictor can also be called on a DataFrame directly); running it on
a Dataset needs ``pip install 'promptlearn[ray]'``. ``promptlearn classify --engine ray`` runs on it
(:mod:`promptlearn.cli.ray_engine`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..core.errors import DataError, PromptlearnError
from ..io.tables import to_text

__all__ = ["ClassifierPredictor", "RAY_INSTALL", "load_saved", "predict_with_proba", "ray_resources", "require_ray"]

#: How to install what this module needs to run on a Ray Dataset.
RAY_INSTALL = "pip install 'promptlearn[ray]'"


def require_ray(what: str) -> Any:
    """The ``ray`` module (with Ray Data), or a one-line :class:`PromptlearnError` saying that ``what`` needs it
    and how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is a separate part of the ray package
    except ImportError:
        raise PromptlearnError(f"{what} needs Ray Data, which is not installed: {RAY_INSTALL}") from None
    return ray


def ray_resources() -> dict[str, float]:
    """The resources Ray gave the task or actor this code runs in (e.g. ``{"CPU": 1.0, "GPU": 1.0}``); ``{}``
    outside one (no ray, no Ray session, or the driver)."""
    try:
        import ray
    except ImportError:
        return {}
    if not ray.is_initialized():
        return {}
    try:
        resources = ray.get_runtime_context().get_assigned_resources()
    except AssertionError:  # the driver: "only available when the process is a worker"
        return {}
    return {name: float(amount) for name, amount in resources.items()}


def load_saved(model_dir: str | os.PathLike, *, model: Any = None, device: str | None = None,
               batch_size: int | None = None, dtype: str | None = None, calibrate: bool = False,
               show_progress: bool | None = False) -> Any:
    """The classifier saved in ``model_dir`` (a prompt, an ensemble, a distilled student or a probe, told by its
    ``config.json``), loaded as ``promptlearn classify --model-dir`` loads it: ``model`` replaces the saved base
    model (needed when the folder names it by a local path, which loading never follows); ``device``,
    ``batch_size`` and ``dtype`` replace the saved ones when given; ``calibrate`` switches contextual calibration
    on (a prompt, or an ensemble's members) when the folder has it off."""
    from ..estimators.classifier import PromptClassifier
    from ..estimators.ensemble import PromptEnsemble, saved_class

    saved = saved_class(model_dir)
    overrides: dict[str, Any] = {"show_progress": show_progress}
    given = {"model": model, "device": device, "batch_size": batch_size, "dtype": dtype}
    overrides.update({name: value for name, value in given.items() if value is not None})
    classifier = saved.load(model_dir, **overrides)
    if calibrate:
        if saved is PromptClassifier:
            classifier.set_params(calibrate=True)
        elif saved is PromptEnsemble:
            classifier.set_params(calibrate_members=True)
        else:
            raise PromptlearnError(f"calibration needs a prompt, but {model_dir} holds a {saved.__name__}")
    return classifier


def predict_with_proba(classifier: Any, examples: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """``(predicted class indices, probabilities)`` from one pass: an ensemble's own (under ``vote`` the
    indices carry its tie-break), else the most probable class of ``predict_proba``."""
    if hasattr(classifier, "predict_with_proba"):
        predicted, probabilities = classifier.predict_with_proba(examples)
        return np.asarray(predicted), np.asarray(probabilities)
    probabilities = np.asarray(classifier.predict_proba(examples))
    return probabilities.argmax(axis=1), probabilities


def _cell_text(value: Any) -> str:
    """A cell as the text a template sees, as the CLI reads files: strings as they are, a missing value
    (None, NaN) as ""."""
    if isinstance(value, str):
        return value
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return to_text(value)


class _Batch:
    """One batch of ``map_batches`` as columns, whatever its kind: a pandas DataFrame, a dict of numpy arrays or
    a pyarrow Table."""

    def __init__(self, batch: Any) -> None:
        self.batch = batch
        if isinstance(batch, Mapping):
            self.kind, self.names = "numpy", [str(name) for name in batch]
            self.rows = len(next(iter(batch.values()))) if batch else 0
        elif hasattr(batch, "columns") and hasattr(batch, "assign"):
            self.kind, self.names, self.rows = "pandas", [str(name) for name in batch.columns], len(batch)
        elif hasattr(batch, "column_names") and hasattr(batch, "append_column"):
            self.kind, self.names, self.rows = "pyarrow", list(batch.column_names), batch.num_rows
        else:
            raise DataError(f"ClassifierPredictor takes a pandas DataFrame, a dict of numpy arrays or a pyarrow "
                            f"Table, got a {type(batch).__name__}; pass batch_format='pandas' to map_batches")

    def values(self, name: str) -> list[Any]:
        """The column ``name`` as a list of Python values."""
        if self.kind == "numpy":
            return np.asarray(self.batch[name]).tolist()
        if self.kind == "pandas":
            return self.batch[name].tolist()
        return self.batch.column(name).to_pylist()

    def with_columns(self, columns: dict[str, np.ndarray]) -> Any:
        """The batch, of the same kind, with ``columns`` added after its own (the input is not changed)."""
        if self.kind == "numpy":
            return {**self.batch, **columns}
        if self.kind == "pandas":
            return self.batch.assign(**columns)
        import pyarrow as pa

        table = self.batch
        for name, values in columns.items():
            table = table.append_column(name, pa.array(values))
        return table


class ClassifierPredictor:
    """A saved classifier as a callable class for ``ray.data.Dataset.map_batches``: loaded once per actor in
    ``__init__``, then ``predictor(batch)`` returns the batch with the prediction columns added.

    Parameters
    ----------
    model_dir: a folder saved by ``save()`` or ``promptlearn train`` (any saved classifier; see :func:`load_saved`).
        On a cluster every node must see it at this path (a shared file system).
    model: the base model, replacing the saved one (needed when the folder names it by a local path).
    columns: the template's fields as ``{field: column}`` (``{"text": "review"}``); default: every column is a
        field of the same name, as ``promptlearn classify`` reads a file.
    prediction_prefix: put before the prediction columns' names (``label``, ``p(<class>)``); a batch that already
        has one of those columns is an error.
    device: where the model runs; default in a Ray actor: ``cuda`` when Ray gave it a GPU (``num_gpus``), else
        ``cpu``; outside Ray the classifier's default.
    batch_size, dtype: replace the saved scoring batch size (examples per forward pass) and weights' dtype.
    calibrate: contextual calibration, when the folder has it off.
    threads: torch's CPU threads; default in a Ray actor: the CPUs Ray gave it (at least 1), so that actors
        sharing a node do not oversubscribe its cores; outside Ray torch's own choice.
    """

    def __init__(self, model_dir: str | os.PathLike, *, model: Any = None, columns: Mapping[str, str] | None = None,
                 prediction_prefix: str = "", device: str | None = None, batch_size: int | None = None,
                 dtype: str | None = None, calibrate: bool = False, threads: int | None = None) -> None:
        resources = ray_resources()
        if threads is None and resources.get("CPU"):
            threads = max(1, int(resources["CPU"]))
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        if device is None and resources:
            device = "cuda" if resources.get("GPU", 0) > 0 else "cpu"
        self.threads, self.device = threads, device
        self.columns = dict(columns) if columns else None
        self.classifier = load_saved(model_dir, model=model, device=device, batch_size=batch_size, dtype=dtype,
                                     calibrate=calibrate, show_progress=False)
        self.classes = list(self.classifier.classes_)
        self.label_column = f"{prediction_prefix}label"
        self.probability_columns = [f"{prediction_prefix}p({c})" for c in self.classes]

    @property
    def prediction_columns(self) -> list[str]:
        """The columns added to every batch: the label, then one probability per class."""
        return [self.label_column, *self.probability_columns]

    def __call__(self, batch: Any) -> Any:
        columns = _Batch(batch)
        taken = sorted(set(columns.names) & set(self.prediction_columns))
        if taken:
            raise DataError(f"the batch already has column(s) {taken}, where ClassifierPredictor writes its "
                            f"predictions; pass prediction_prefix= (e.g. 'predicted_') or rename those columns")
        examples = self.examples(columns.names, columns.values)
        if examples:
            predicted, probabilities = predict_with_proba(self.classifier, examples)
        else:
            predicted, probabilities = np.zeros(0, dtype=int), np.zeros((0, len(self.classes)))
        added = {self.label_column: np.array([self.classes[int(i)] for i in predicted], dtype=object)}
        added.update({name: probabilities[:, k].astype(np.float64)
                      for k, name in enumerate(self.probability_columns)})
        return columns.with_columns(added)

    def examples(self, names: list[str], values: Callable[[str], list[Any]]) -> list[dict[str, str]]:
        """The examples of a batch with the columns ``names`` (``values(name)``: a column's values): the
        ``columns`` mapping's fields, else every column, as text."""
        mapping = self.columns or {name: name for name in names}
        missing = [column for column in mapping.values() if column not in names]
        if missing:
            raise DataError(f"the batch has no column(s) {missing} (columns={self.columns}); its columns: "
                            f"{', '.join(names)}")
        fields = list(mapping)
        texts = [[_cell_text(value) for value in values(mapping[field])] for field in fields]
        return [dict(zip(fields, row)) for row in zip(*texts)]
