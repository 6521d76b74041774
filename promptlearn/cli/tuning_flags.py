"""``promptlearn train``'s tuning flags, generated from the tuning methods' configs (:mod:`promptlearn.tuning`).

A config field made with :func:`~promptlearn.tuning.config.cli_option` becomes one option: its flag, its type from
the field (``store_true`` for a bool, a comma-separated list for a list of names), its help prefixed with the
methods that take it. Several methods may share a flag (``--soft-tokens`` for soft and ptuning). A new tuning
method brings its flags with its config; nothing here changes.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ..core.errors import PromptlearnError


def _flags() -> dict[str, list[tuple[str, dataclasses.Field]]]:
    """flag -> [(method, field), ...] over the registered tuning methods, in registration order."""
    from ..tuning import CONFIGS

    flags: dict[str, list[tuple[str, dataclasses.Field]]] = {}
    for method, config in CONFIGS.items():
        for field in dataclasses.fields(config):
            if "flag" in field.metadata:
                flags.setdefault(field.metadata["flag"], []).append((method, field))
    return flags


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _kind(field: dataclasses.Field) -> str:
    """``bool``, ``int``, ``float``, ``names`` (a list of strings) or ``str``, from the field's annotation."""
    annotation = str(field.type)
    for kind in ("bool", "int", "float"):
        if annotation.split(" ")[0] == kind:
            return kind
    return "names" if annotation.startswith("list[") else "str"


def add_tuning_flags(parser: argparse.ArgumentParser, group: Any) -> None:
    """Add ``--source`` and every tuning method's options to ``group`` (an argument group of ``parser``)."""
    from ..tuning import SOURCES

    group.add_argument("--source", default="manual", choices=SOURCES,
                       help="how the prompt is parameterised, i.e. what trains: manual (the model's weights, PET / "
                            "LM-BFF; default), soft (prompt tuning: the template's [SOFT] / [SOFT:n] slots), ptuning "
                            "(those from an LSTM/MLP encoder), deep (P-tuning v2: key/value prefixes at every "
                            "layer), lora / adapter (PEFT), bitfit (biases only)")
    for flag, users in _flags().items():
        method, field = users[0]
        helps = "; ".join(f"{m}: {f.metadata['help']}" for m, f in users)
        options: dict[str, Any] = {"dest": _dest(flag), "default": None, "help": helps}
        kind = _kind(field)
        if kind == "bool":
            options["action"] = "store_true"
        else:
            options["type"] = {"int": int, "float": float}.get(kind, str)
            for key in ("choices", "metavar"):
                if key in field.metadata:
                    options[key] = field.metadata[key]
        group.add_argument(flag, **options)


def tuning_from_args(args: argparse.Namespace) -> Any:
    """The tuning config of ``--source`` with the options given on the command line (and ``--learning-rate``);
    a flag of another method is a one-line error naming the methods it applies to."""
    from ..tuning import tuning_config

    method = getattr(args, "source", "manual")
    options: dict[str, Any] = {}
    implied: dict[str, Any] = {}
    for flag, users in _flags().items():
        value = getattr(args, _dest(flag), None)
        if value is None or value is False:
            continue
        mine = [field for m, field in users if m == method]
        if not mine:
            raise PromptlearnError(f"{flag} applies to --source {' or '.join(m for m, _ in users)}, not {method}")
        field = mine[0]
        if _kind(field) == "names":
            value = [name.strip() for name in value.split(",") if name.strip()]
        options[field.name] = value
        implied.update(field.metadata.get("implies", {}))
    options = {**{k: v for k, v in implied.items() if k not in options}, **options}
    if getattr(args, "learning_rate", None) is not None:
        options["learning_rate"] = args.learning_rate
    return tuning_config(method, options)
