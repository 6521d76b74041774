"""The options several ``promptlearn`` subcommands share (model and prompt, data, chunks, label maps) and the
argument types the parser checks values with."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..core.errors import PromptlearnError

from ..models.loader import DTYPES

DTYPE_HELP = ("the model's weights: float32, bfloat16 (half the memory; on CPU too), float16 (scoring only) or "
              "auto (the checkpoint's own); default float32. Scores stay float32")


def add_prompt_options(parser: argparse.ArgumentParser, *, template_required: bool = True,
                        repeatable: bool = False, model_dir: str | None = None) -> None:
    """The model and prompt options; ``model_dir`` (its help) offers --model-dir instead of --template (one of the
    two is required)."""
    group = parser.add_argument_group("model and prompt")
    prompt: Any = group
    if model_dir:
        prompt = group.add_mutually_exclusive_group(required=True)
        prompt.add_argument("--model-dir", help=model_dir)
        template_required = False
    group.add_argument("--model", default="smollm2",
                       help="hub id, local folder, .gguf file, or short name: smollm2 (default, packaged), "
                            "gemma3-270m (optional package)")
    group.add_argument("--gguf-file", help="GGUF file inside --model's folder")
    prompt.add_argument("--template", required=template_required, action="append" if repeatable else "store",
                       help="template file (.j2), shipped name task/name (e.g. sst2/it_was; see `promptlearn "
                            "templates`), or Jinja text containing [MASK]"
                            + ("" if template_required else " (required unless --model-dir)")
                            + ("; repeat it for an ensemble" if repeatable else ""))
    group.add_argument("--verbalizer", action="append" if repeatable else "store",
                       help="verbalizer file (.json or 'label: word, word' text), shipped name (e.g. sst2), or "
                            "inline JSON such as '{\"0\": [\"No\"], \"1\": [\"Yes\"]}'; default for a shipped "
                            "template task/name: task_name, else task"
                            + ("; with several --template: one for all, or one per template in the same order"
                               if repeatable else ""))
    group.add_argument("--shorten", action="append", metavar="FIELD",
                       help="field that truncation may shorten (repeatable; default: every field)")
    scoring = parser.add_argument_group("scoring")
    scoring.add_argument("--calibrate", action="store_true",
                         help="contextual calibration (content-free inputs); evaluate reports raw and calibrated "
                              "figures from one pass either way, --calibrate puts the calibrated ones first")
    scoring.add_argument("--multi-token", choices=("parallel", "left_to_right"), default="parallel",
                         help="decoding of multi-token label words with masked LMs (default: parallel)")
    scoring.add_argument("--after-mask", choices=("drop", "score"), default="drop",
                         help="causal LMs: drop the text after [MASK] or score it with each word (default: drop)")
    scoring.add_argument("--aggregation", choices=("mean", "max", "sum"), default="mean",
                         help="how several label words of one class combine (default: mean probability)")
    scoring.add_argument("--batch-size", type=positive_int, default=16, help="examples per forward pass (default 16)")
    scoring.add_argument("--max-length", type=positive_int, help="token budget of one prompt (default: model window)")
    scoring.add_argument("--device", help="cpu, cuda, cuda:1, mps ... (default: cuda if available)")
    scoring.add_argument("--dtype", choices=DTYPES, help=DTYPE_HELP)
    demos = parser.add_argument_group("in-context demonstrations")
    demos.add_argument("--demos", type=non_negative_int, metavar="K",
                       help="K labelled demonstrations per class in every prompt, rendered with the template and "
                            "their label word: after the example for masked LMs (LM-BFF), before it for causal LMs "
                            "(a k-shot prompt); default 0")
    demos.add_argument("--demo-pool", metavar="FILE",
                       help="labelled examples to draw demonstrations from: a CSV / TSV / JSONL file (label column "
                            "'label' or --label-column; --column maps fields) or an LM-BFF folder (its train split)"
                            + ("; default for train: the training data" if repeatable else ""))
    demos.add_argument("--demo-selection", choices=("random", "balanced", "similar"),
                       help="random (default), balanced (equal per class; causal LMs), or similar (nearest by "
                            "all-MiniLM-L6-v2 sentence embeddings, drawn from the top half per class, as LM-BFF)")
    demos.add_argument("--demo-encoder", metavar="MODEL",
                       help="sentence encoder of --demo-selection similar: a sentence-transformers / BERT folder or "
                            "hub id, mean-pooled (default: minilm, the packaged all-MiniLM-L6-v2)")
    demos.add_argument("--demo-sets", type=positive_int, metavar="N",
                       help="ensemble N demonstration sets drawn with different seeds (default 1)")
    demos.add_argument("--chat-template", action="store_true",
                       help="causal instruct models: wrap demonstrations and example as a user message in the "
                            "tokenizer's chat template; the label word starts the assistant's reply")


def add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("input data")
    group.add_argument("--column", action="append", default=[], metavar="FIELD=COLUMN",
                       help="map a template field to a file column, e.g. text=review (repeatable)")
    group.add_argument("--format", dest="fmt", choices=("csv", "tsv", "json", "jsonl", "parquet"),
                       help="format of --input/--data when the extension does not say (stdin is sniffed "
                            "otherwise); json: an array of records or an object of records or columns")
    group.add_argument("--head", type=non_negative_int, metavar="N",
                       help="read only the first N rows (in file order) of each file or split read; --limit "
                            "(evaluate) draws a seeded random subset instead")


def add_chunk_options(group: Any) -> None:
    """--chunk-rows and --chunk-bytes: how much of the input classify / evaluate hold at a time."""
    from ..io.streaming import DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS

    group.add_argument("--chunk-rows", type=positive_int, default=DEFAULT_MAX_ROWS, metavar="N",
                       help=f"read, score and write at most N rows at a time (default {DEFAULT_MAX_ROWS})")
    group.add_argument("--chunk-bytes", type=positive_int, default=DEFAULT_MAX_BYTES, metavar="BYTES",
                       help=f"... and at most this many bytes of input (default {DEFAULT_MAX_BYTES}: wide rows make "
                            "smaller chunks)")


def add_label_map(group: Any, *, search: bool = False) -> None:
    """--label-map, the same for evaluate, train and search (read by :func:`.labels.class_indices`)."""
    group.add_argument("--label-map", action="append", metavar="RAW=CLASS,...",
                       help="which class each label of the data stands for, e.g. 0=positive,1=negative (default: "
                            "class names as they are; integer labels as indices in the classes' order, with a "
                            "warning; required when integer labels do not include 0)"
                            + ("; without --verbalizer the map's classes become the classes searched for"
                               if search else ""))


def non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return number


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return number


def checkpoint_interval(value: str) -> tuple[str, float]:
    """--checkpoint-every: a number of steps (``50``), or a time with its unit (``90s``, ``10m``, ``1.5h``), as
    ``("steps", N)`` or ``("minutes", M)``."""
    text = value.strip().lower()
    if text.isdigit() and int(text) > 0:
        return "steps", int(text)
    units = {"s": 1 / 60, "m": 1.0, "min": 1.0, "h": 60.0}
    for unit, minutes in sorted(units.items(), key=lambda item: -len(item[0])):
        number = text[:-len(unit)].strip()
        if text.endswith(unit) and number:
            try:
                amount = float(number) * minutes
            except ValueError:
                break
            if amount > 0:
                return "minutes", amount
            break
    raise argparse.ArgumentTypeError(f"must be a number of steps (e.g. 50) or a time (e.g. 90s, 10m, 1.5h), "
                                     f"got {value!r}")


def keep_margin(value: str) -> float | str:
    if value == "auto":
        return value
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"must be auto or a number from 0 to 1, got {value}")
    return number


def column_mapping(pairs: Sequence[str]) -> dict[str, str] | None:
    """``--column FIELD=COLUMN`` values (repeatable) as ``{field: column}``; None when none was given."""
    mapping = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field or not column:
            raise PromptlearnError(f"--column expects FIELD=COLUMN (e.g. text=review), got {pair!r}")
        mapping[field] = column
    return mapping or None


def output_suffix(output: str | None) -> str:
    """The format of an --output file from its extension (checked before any work is done)."""
    suffix = Path(output).suffix.lower() if output else ".tsv"
    if suffix not in (".csv", ".tsv", ".jsonl", ".parquet"):
        raise PromptlearnError(f"--output must end in .csv, .tsv or .jsonl (text) or .parquet, got {output}")
    check_output_path(output)
    return suffix


def check_output_path(output: str | None) -> None:
    """Fail before the long work when --output cannot be written: a folder, or under a file."""
    if not output:
        return
    path = Path(output)
    if path.is_dir():
        raise PromptlearnError(f"--output {output} is a folder; name a file")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise PromptlearnError(f"cannot write {output}: {parent} is a file, not a folder")
