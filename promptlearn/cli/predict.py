"""``classify``, ``evaluate`` and ``list``: a prompt (or a saved classifier) applied to texts."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..artifacts import atomic_write, atomic_write_text
from ..errors import PromptlearnError


def _main_process() -> bool:
    from ..distributed import is_main_process

    return is_main_process()


def _columns(pairs: Sequence[str]) -> dict[str, str] | None:
    mapping = {}
    for pair in pairs:
        field, sep, column = pair.partition("=")
        if not sep or not field or not column:
            raise PromptlearnError(f"--column expects FIELD=COLUMN (e.g. text=review), got {pair!r}")
        mapping[field] = column
    return mapping or None


def default_verbalizer(template: str) -> str:
    """For a shipped template ``task/name``: the verbalizer ``task_name`` if shipped, else ``task``."""
    from ..resources import shipped_dir
    from ..template import _SHIPPED_NAME

    if not _SHIPPED_NAME.match(template) or Path(template).is_file():
        raise PromptlearnError("--verbalizer is required unless --template is a shipped name such as sst2/it_was")
    task, name = template.split("/")
    name = name.removesuffix(".j2")
    folder = shipped_dir("verbalizers")
    return f"{task}_{name}" if (folder / f"{task}_{name}.json").is_file() else task


def _demo_options(args: argparse.Namespace) -> dict[str, Any]:
    """PromptClassifier's demonstration parameters from the options given (--demo-pool read here)."""
    options: dict[str, Any] = {}
    for name in ("demos", "demo_selection", "demo_sets", "demo_encoder"):  # option and parameter share the name
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    if getattr(args, "chat_template", False):
        options["chat_template"] = True
    if getattr(args, "demo_pool", None):
        from ..data import load_data

        label_column = getattr(args, "label_column", None) or "label"
        pool_x, pool_y = load_data(args.demo_pool, "train", columns=_columns(args.column), label_column=label_column)
        if pool_y is None:
            raise PromptlearnError(f"--demo-pool {args.demo_pool} has no labels (looked for column {label_column!r})")
        options["demo_pool"] = (pool_x, pool_y)
    return options


def _classifier(args: argparse.Namespace, **training: Any) -> Any:
    from ..classifier import PromptClassifier

    if getattr(args, "model_dir", None):
        from ..ensemble import PromptEnsemble, saved_class

        saved = saved_class(args.model_dir)
        base = {"model": args.model} if getattr(args, "model", None) else {}  # the caller's model, never a saved path
        demos = _demo_options(args)
        if demos and saved is not PromptClassifier:
            raise PromptlearnError(f"--demos, --demo-pool, --demo-selection, --demo-sets and --chat-template apply to "
                                   f"a single prompt, but {args.model_dir} holds a {saved.__name__}")
        if saved is PromptEnsemble:
            ensemble = PromptEnsemble.load(args.model_dir, batch_size=args.batch_size, device=args.device,
                                           show_progress=None, **base)
            return ensemble.set_params(calibrate_members=args.calibrate or ensemble.calibrate_members)
        if saved is not PromptClassifier:  # a distilled student (FineTuneClassifier) or a probe
            if args.calibrate:
                raise PromptlearnError(f"--calibrate needs a prompt, but {args.model_dir} holds a {saved.__name__}")
            return saved.load(args.model_dir, batch_size=args.batch_size, device=args.device, show_progress=None,
                              **base)
        classifier = PromptClassifier.load(args.model_dir, batch_size=args.batch_size, device=args.device,
                                           show_progress=None, **base)
        return classifier.set_params(calibrate=args.calibrate or classifier.calibrate, **demos)
    if not args.template:
        raise PromptlearnError("--template is required (a file, a shipped name such as sst2/it_was, or Jinja text)")
    return PromptClassifier(
        model=args.model or "smollm2", template=args.template,
        verbalizer=args.verbalizer or default_verbalizer(args.template),
        calibrate=args.calibrate, multi_token=args.multi_token, after_mask=args.after_mask,
        aggregation=args.aggregation, shortenable=args.shorten, batch_size=args.batch_size,
        max_length=args.max_length, device=args.device, gguf_file=args.gguf_file,
        show_progress=None, **training, **_demo_options(args),
    )


def run_classify(args: argparse.Namespace) -> int:
    """Predictions first (``label``, ``p(<class>)``), then every input column as read: nothing of the input is
    dropped or overwritten. Prediction columns that an input column already names are an error before any
    work (``--prediction-prefix`` renames them); ``--output`` may be ``--input`` (read whole, replaced atomically)."""
    from ..data import read_table

    if args.text and args.input:
        raise PromptlearnError("give texts with --text or a file with --input, not both")
    if not args.text and not args.input:
        raise PromptlearnError("nothing to classify: give texts with --text (repeatable) or a file with --input "
                               "(- for stdin)")
    columns = _columns(args.column)
    output_format = _output_format(args.output)
    classifier = _classifier(args)
    template = classifier.template_
    classifier.verbalizer_  # validate before loading the model
    if args.text:
        if len(template.fields) != 1:
            raise PromptlearnError(f"--text fills one field, but the template uses {sorted(template.fields)}; "
                                   "use --input with those columns")
        (field,) = template.fields
        examples = [{field: text} for text in args.text]
        input_header, rows = [field], [dict(e) for e in examples]
    else:
        examples, input_header, rows = read_table(args.input, columns=columns, fmt=args.fmt)
    classes = list(classifier.classes_)
    prefix = getattr(args, "prediction_prefix", "") or ""
    label_column = f"{prefix}label"
    prob_columns = [f"{prefix}p({c})" for c in classes]
    taken = sorted(set(input_header) & {label_column, *prob_columns})
    if taken:
        raise PromptlearnError(
            f"the input already has column(s) {taken}, where classify would write its predictions; keep both with "
            f"--prediction-prefix (e.g. --prediction-prefix predicted_ writes predicted_label, predicted_p(...)) "
            f"or rename those columns")
    probabilities = classifier.predict_proba(examples)  # several processes: scored in slices, gathered in order
    if not _main_process():  # ... and written once, by the main process
        return 0
    header = [label_column, *prob_columns, *input_header]
    records = []
    for row, probs in zip(rows, probabilities):
        record: dict[str, Any] = {label_column: classes[int(probs.argmax())]}
        record.update({column: round(float(p), 6) for column, p in zip(prob_columns, probs)})
        record.update(row)
        records.append(record)
    if args.output is None:
        _dump(records, sys.stdout, output_format, header)
    else:
        atomic_write(args.output, lambda handle: _dump(records, handle, output_format, header))
        print(f"wrote {len(records)} predictions to {args.output}", file=sys.stderr)
    return 0


def _output_format(output: str | None) -> str:
    """The format of an --output file from its extension (checked before any work is done)."""
    suffix = Path(output).suffix.lower() if output else ".tsv"
    if suffix not in (".csv", ".tsv", ".jsonl"):
        raise PromptlearnError(f"--output must end in .csv, .tsv or .jsonl, got {output}")
    _check_output_path(output)
    return suffix


def _check_output_path(output: str | None) -> None:
    """Fail before the long work when --output cannot be written: a folder, or under a file."""
    if not output:
        return
    path = Path(output)
    if path.is_dir():
        raise PromptlearnError(f"--output {output} is a folder; name a file")
    parent = next((p for p in path.parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise PromptlearnError(f"cannot write {output}: {parent} is a file, not a folder")


def _dump(records: list[dict[str, Any]], handle: Any, suffix: str, header: list[str]) -> None:
    if suffix == ".jsonl":
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    from ..data import _to_text

    fieldnames = list(dict.fromkeys(header + [k for r in records for k in r]))
    writer = csv.DictWriter(handle, fieldnames=fieldnames, delimiter="\t" if suffix == ".tsv" else ",",
                            lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for record in records:  # JSON values from a JSONL input (numbers, lists, null) written as text, as read
        writer.writerow({k: v if isinstance(v, (str, float)) else _to_text(v) for k, v in record.items()})


def run_evaluate(args: argparse.Namespace) -> int:
    from ..data import load_data, subsample
    from ..metrics import classification_report, format_report

    columns = _columns(args.column)
    _check_output_path(args.output)
    classifier = _classifier(args)
    from ..classifier import PromptClassifier

    prompt = isinstance(classifier, PromptClassifier)  # else a saved ensemble or distilled student (--model-dir)
    if prompt:
        classifier.template_
        verbalizer = classifier.verbalizer_
    examples, labels = load_data(args.data, args.split, columns=columns, label_column=args.label_column, fmt=args.fmt)
    if labels is None:
        raise PromptlearnError(f"{args.data} has no labels (looked for column {args.label_column!r}); "
                               "pass --label-column")
    if not examples:
        raise PromptlearnError(f"{args.data} has no examples to evaluate")
    total = len(examples)
    subset = bool(args.limit) and args.limit < total
    if subset:
        examples, labels = subsample(examples, labels, args.limit, args.seed)
    if prompt:
        truth = verbalizer.label_indices(labels)
    else:
        truth = (classifier.label_indices(labels) if hasattr(classifier, "label_indices")
                 else classifier._label_indices(labels))
    start = time.perf_counter()
    if hasattr(classifier, "predict_with_proba"):  # an ensemble: vote ties are broken by the mean probability
        predicted, probabilities = classifier.predict_with_proba(examples)
    else:
        probabilities = classifier.predict_proba(examples)
        predicted = probabilities.argmax(axis=1)
    seconds = time.perf_counter() - start
    if not _main_process():  # several processes: scored in slices and gathered; the main process reports
        return 0
    report = classification_report(truth, predicted, list(classifier.classes_))
    members = getattr(classifier, "members", [])  # an ensemble's
    report.update({
        "data": str(args.data), "split": args.split, "n_examples": len(examples), "n_available": total,
        "subset_seed": args.seed if subset else None, "model": args.model_dir or args.model or "smollm2",
        "template": (classifier.template_.source if prompt
                     else [m.template_.source for m in members if hasattr(m, "template_")] or None),
        "verbalizer": (verbalizer.to_dict() if prompt
                       else [m.verbalizer_.to_dict() for m in members if hasattr(m, "verbalizer_")] or None),
        "calibrate": args.calibrate, "seconds": round(seconds, 2),
        **({"demos": classifier.demos, "demo_selection": classifier.demo_selection, "demo_sets": classifier.demo_sets,
            "chat_template": classifier.chat_template} if prompt and classifier._uses_context() else {}),
        "examples_per_second": round(len(examples) / seconds, 2) if seconds > 0 else None,
    })
    print(format_report(report))
    if args.output:
        atomic_write_text(args.output, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ..template import list_shipped as templates
    from ..verbalizer import list_shipped as verbalizers

    print("templates:   " + " ".join(templates()))
    print("verbalizers: " + " ".join(verbalizers()))
    return 0
