"""Hugging Face ``datasets`` as tables: ``hf:NAME[:CONFIG[:SPLIT]]`` loads from the Hub (``hf:imdb``,
``hf:glue:sst2``, ``hf:glue:sst2:validation``, ``hf:imdb::test``; ``NAME`` may be ``owner/name``), and a folder
written by ``save_to_disk`` (a ``Dataset`` or a ``DatasetDict``) is recognised by its files. The ``hf:`` prefix
always means the Hub, never a path (write ``./hf:x`` for such a file). datasets is imported only then. Either
becomes a :class:`~promptlearn.io.tables.Table`, its ClassLabel columns read as their class names.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.errors import DataError
from .tables import Table, columns_table, first_line, split_aliases

__all__ = [
    "HF_PREFIX",
    "is_saved_dataset",
    "parse_hub_spec",
    "read_hub",
    "read_saved_dataset",
]

#: The prefix of a Hugging Face Hub dataset: ``hf:NAME[:CONFIG[:SPLIT]]``.
HF_PREFIX = "hf:"


def _datasets(where: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError(f"reading {where} needs the Hugging Face datasets package, which is not installed: "
                        "pip install datasets") from None
    return datasets


def is_saved_dataset(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` was written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    folder = Path(folder)
    return (folder / "dataset_dict.json").is_file() or (
        (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file())


def _pick_split(splits: Sequence[str], split: str | None, where: str, how: str) -> str:
    if split is None:
        if len(splits) == 1:
            return splits[0]
        raise DataError(f"{where} holds the splits {', '.join(splits)}; name one ({how})")
    found = next((s for s in split_aliases(split) if s in splits), None)
    if found is None:
        raise DataError(f"split {split!r} is not in {where}; splits there: {', '.join(splits) or 'none'} ({how})")
    return found


def _dataset_table(dataset: Any, where: str) -> Table:
    """A ``datasets.Dataset`` as a table; ClassLabel columns read as their class names."""
    header = list(dataset.column_names)
    class_names: dict[str, list[str]] = {}
    for col, feature in (getattr(dataset, "features", None) or {}).items():
        if type(feature).__name__ == "ClassLabel" and getattr(feature, "names", None):
            class_names[col] = list(feature.names)
    rows = dataset.to_list()
    table = columns_table(header, rows, where, class_names)
    # a label column of -1s only (e.g. GLUE's test splits) holds no labels: leave it out of the text view
    unlabelled = [col for col in class_names if rows and all(row.get(col) in (-1, None) for row in rows)]
    return table.without(unlabelled)


def read_saved_dataset(folder: str | os.PathLike, split: str | None = None) -> Table:
    """A folder written by ``save_to_disk``: a Dataset, or one split of a DatasetDict (``split``; aliases such as
    dev/validation accepted; ``None`` takes the only one)."""
    folder = Path(folder)
    datasets = _datasets(str(folder))
    try:
        loaded = datasets.load_from_disk(str(folder))
    except Exception as exc:  # noqa: BLE001 - any failure of a third-party loader becomes one line
        raise DataError(f"cannot read the saved dataset {folder} ({first_line(exc)})") from None
    if hasattr(loaded, "column_names") and not isinstance(loaded.column_names, dict):
        return _dataset_table(loaded, str(folder))
    name = _pick_split(list(loaded.keys()), split, str(folder), "--split, or the split's subfolder")
    return _dataset_table(loaded[name], f"{folder} [{name}]")


def parse_hub_spec(spec: str) -> tuple[str, str | None, str | None]:
    """``hf:NAME[:CONFIG[:SPLIT]]`` -> (name, config or None, split or None); ``hf:NAME::SPLIT`` skips the config."""
    if not spec.startswith(HF_PREFIX):
        raise DataError(f"{spec!r} is not a Hugging Face dataset spec (hf:NAME[:CONFIG[:SPLIT]])")
    parts = spec[len(HF_PREFIX):].split(":")
    if len(parts) > 3 or not parts[0].strip():
        raise DataError(f"{spec!r}: a Hugging Face dataset is hf:NAME[:CONFIG[:SPLIT]], e.g. hf:imdb, hf:glue:sst2, "
                        "hf:glue:sst2:validation or hf:imdb::test")
    name, config, split = (parts + [None, None])[:3]
    return name.strip(), (config or None), (split or None)


def read_hub(spec: str, split: str | None = None) -> Table:
    """A dataset from the Hugging Face Hub (or its cache), named ``hf:NAME[:CONFIG[:SPLIT]]``; a split in the
    spec wins over ``split`` (aliases such as dev/validation accepted; ``None`` takes the only split)."""
    name, config, spec_split = parse_hub_spec(spec)
    datasets = _datasets(spec)
    try:
        if spec_split is not None:
            loaded = datasets.load_dataset(name, config, split=spec_split)
        else:
            loaded = datasets.load_dataset(name, config)
    except Exception as exc:  # noqa: BLE001 - network, missing dataset or config: one line
        raise DataError(f"cannot load {spec} from the Hugging Face Hub ({first_line(exc)}); check the name and "
                        "config (hf:NAME[:CONFIG[:SPLIT]]), or save it with save_to_disk and pass that folder"
                        ) from None
    if spec_split is not None or not hasattr(loaded, "keys"):
        return _dataset_table(loaded, spec)
    chosen = _pick_split(list(loaded.keys()), split, spec, "hf:NAME:CONFIG:SPLIT, or --split")
    return _dataset_table(loaded[chosen], f"{spec} [{chosen}]")
