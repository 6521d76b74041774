"""``classify`` and ``evaluate``: a prompt (or a saved classifier) applied to texts, timed apart from loading."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io.artifacts import atomic_write, atomic_write_text
from ..core.errors import PromptlearnError

logger = logging.getLogger(__name__)


def _main_process() -> bool:
    from ..models.distributed import is_main_process

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
    from ..core.resources import shipped_dir
    from ..core.template import _SHIPPED_NAME

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
        from ..io.readers import load_data

        label_column = getattr(args, "label_column", None) or "label"
        pool_x, pool_y = load_data(args.demo_pool, "train", columns=_columns(args.column), label_column=label_column)
        if pool_y is None:
            raise PromptlearnError(f"--demo-pool {args.demo_pool} has no labels (looked for column {label_column!r})")
        options["demo_pool"] = (pool_x, pool_y)
    return options


def _classifier(args: argparse.Namespace, **training: Any) -> Any:
    from ..estimators.classifier import PromptClassifier
    from ..estimators.options import from_flat

    if getattr(args, "model_dir", None):
        from ..estimators.ensemble import PromptEnsemble, saved_class

        saved = saved_class(args.model_dir)
        base = {"model": args.model} if getattr(args, "model", None) else {}  # the caller's model, never a saved path
        base.update(batch_size=args.batch_size, device=args.device, show_progress=_show_progress(args))
        if args.dtype:  # else the dtype the folder was saved with
            base["dtype"] = args.dtype
        demos = _demo_options(args)
        if demos and saved is not PromptClassifier:
            raise PromptlearnError(f"--demos, --demo-pool, --demo-selection, --demo-sets and --chat-template apply to "
                                   f"a single prompt, but {args.model_dir} holds a {saved.__name__}")
        if saved is PromptEnsemble:
            ensemble = PromptEnsemble.load(args.model_dir, **base)
            return ensemble.set_params(calibrate_members=args.calibrate or ensemble.calibrate_members)
        if saved is not PromptClassifier:  # a distilled student (FineTuneClassifier) or a probe
            if args.calibrate:
                raise PromptlearnError(f"--calibrate needs a prompt, but {args.model_dir} holds a {saved.__name__}")
            return saved.load(args.model_dir, **base)
        classifier = PromptClassifier.load(args.model_dir, **base, **demos)  # load() takes the flat names
        return classifier.set_params(calibrate=args.calibrate or classifier.calibrate)
    if not args.template:
        raise PromptlearnError("--template is required (a file, a shipped name such as sst2/it_was, or Jinja text)")
    flat = dict(multi_token=args.multi_token, after_mask=args.after_mask, aggregation=args.aggregation,
                shortenable=args.shorten, batch_size=args.batch_size, max_length=args.max_length, **training,
                **_demo_options(args))  # the CLI's flat option names, folded into the classifier's groups
    return PromptClassifier(
        model=args.model or "smollm2", template=args.template,
        verbalizer=args.verbalizer or default_verbalizer(args.template), calibrate=args.calibrate,
        device=args.device, dtype=args.dtype, gguf_file=args.gguf_file, show_progress=_show_progress(args),
        **from_flat(flat),
    )


def _show_progress(args: argparse.Namespace) -> bool | None:
    """Progress bars: never with -q (--quiet), else on a terminal (None)."""
    return False if getattr(args, "quiet", False) else None


def run_classify(args: argparse.Namespace) -> int:
    """Predictions first (``label``, ``p(<class>)``), then every input column as read: nothing of the input is
    dropped or overwritten. Prediction columns that an input column already names are an error before any
    work (``--prediction-prefix`` renames them); ``--output`` may be ``--input`` (read whole, replaced atomically)."""
    from ..io.readers import read_table

    if args.text and args.input:
        raise PromptlearnError("give texts with --text or a file with --input, not both")
    if not args.text and not args.input:
        raise PromptlearnError("nothing to classify: give texts with --text (repeatable) or a file with --input "
                               "(- for stdin)")
    columns = _columns(args.column)
    output_format = _output_format(args.output)
    start = time.perf_counter()
    classifier = _classifier(args)
    load_seconds = time.perf_counter() - start
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
    load_seconds += _load_models(classifier)
    start = time.perf_counter()
    # several processes: scored in slices, gathered in order ... (calibrated: raw too, from the same scores)
    primary, variants, prior = _score(classifier, examples, both=classifier.calibrate)
    seconds = time.perf_counter() - start
    if not _main_process():  # ... and written once, by the main process
        return 0
    from ..core.metrics import format_timing
    from .diagnostics import collapse_warnings

    collapse_warnings({name: predicted for name, (predicted, _) in variants.items()}, classes, prior=prior,
                      check=[primary])
    probabilities = variants[primary][1]
    timing = format_timing(len(examples), seconds, load_seconds)
    header = [label_column, *prob_columns, *input_header]
    records = []
    for row, probs in zip(rows, probabilities):
        record: dict[str, Any] = {label_column: classes[int(probs.argmax())]}
        record.update({column: round(float(p), 6) for column, p in zip(prob_columns, probs)})
        record.update(row)
        records.append(record)
    if args.output is None:
        _dump(records, sys.stdout, output_format, header)
        logger.info("%s", timing)
    else:
        atomic_write(args.output, lambda handle: _dump(records, handle, output_format, header))
        print(f"wrote {len(records)} predictions to {args.output} ({timing})", file=sys.stderr)
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
    from ..io.tables import to_text

    fieldnames = list(dict.fromkeys(header + [k for r in records for k in r]))
    writer = csv.DictWriter(handle, fieldnames=fieldnames, delimiter="\t" if suffix == ".tsv" else ",",
                            lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for record in records:  # JSON values from a JSONL input (numbers, lists, null) written as text, as read
        writer.writerow({k: v if isinstance(v, (str, float)) else to_text(v) for k, v in record.items()})


def _load_models(classifier: Any) -> float:
    """Load the model(s) of ``classifier`` now (a prompt's load on first use) and return the seconds it took, so
    that the scoring time measured next is scoring alone."""
    start = time.perf_counter()
    for member in getattr(classifier, "members_", None) or getattr(classifier, "members", None) or [classifier]:
        if hasattr(member, "scorer_"):  # a PromptClassifier; baselines load their model in load()
            member.scorer_, member.prompt_
    return time.perf_counter() - start


def _score(classifier: Any, examples: list[dict[str, Any]], *, both: bool) -> tuple[str, dict[str, Any], Any]:
    """Score ``examples`` once: ``(primary, {variant: (predicted class indices, probabilities)}, prior)``.

    ``primary`` is the variant the classifier was asked for (``calibrated`` with --calibrate, else ``raw``).
    With ``both``, a prompt also gives the other variant from the same class scores (calibration only adds
    the content-free inputs; not with demonstrations and no --calibrate, where every demonstration set would
    need content-free prompts of its own). ``prior`` is the content-free prior as ``{class: probability}``
    when a calibrated variant was computed, else None. Ensembles and distilled students give one variant."""
    from ..estimators.classifier import PromptClassifier

    def variant(probabilities: Any) -> tuple[Any, Any]:
        return probabilities.argmax(axis=1), probabilities

    if isinstance(classifier, PromptClassifier):
        primary = "calibrated" if classifier.calibrate else "raw"
        if both and (classifier.calibrate or not classifier.demonstrations.k):
            raw, calibrated = classifier.raw_and_calibrated_log_proba(examples)
            variants = {"raw": variant(np.exp(raw)), "calibrated": variant(np.exp(calibrated))}
        else:
            variants = {primary: variant(classifier.predict_proba(examples))}
        prior = None
        if "calibrated" in variants:
            prior = {c: round(float(p), 6) for c, p in zip(classifier.classes_, classifier.content_free_prior())}
        return primary, variants, prior
    if hasattr(classifier, "predict_with_proba"):  # an ensemble: vote ties are broken by the mean probability
        primary = "calibrated" if getattr(classifier, "calibrate_members", False) else "raw"
        return primary, {primary: classifier.predict_with_proba(examples)}, None
    return "raw", {"raw": variant(classifier.predict_proba(examples))}, None


def _prediction_columns(variants: Sequence[str], classes: Sequence[str]) -> list[str]:
    """evaluate's per-example columns: ``raw_label``, ``raw_p(<class>)``..., then the same for ``calibrated``."""
    return [column for name in variants for column in (f"{name}_label", *(f"{name}_p({c})" for c in classes))]


def _prediction_records(variants: dict[str, Any], classes: Sequence[str], examples: list[dict[str, Any]],
                        label_column: str, labels: Sequence[Any]) -> list[dict[str, Any]]:
    """One record per example: each variant's predicted class and probabilities, then the true label (under the
    data's label column) and the example's fields."""
    records = []
    for position, (example, label) in enumerate(zip(examples, labels)):
        record: dict[str, Any] = {}
        for name, (predicted, probabilities) in variants.items():
            record[f"{name}_label"] = classes[int(predicted[position])]
            record.update({f"{name}_p({c})": round(float(p), 6) for c, p in zip(classes, probabilities[position])})
        record[label_column] = label
        record.update(example)
        records.append(record)
    return records


def _evaluate_output(output: str | None) -> str | None:
    """``--output``'s kind, checked before any work: a .csv / .tsv / .jsonl table of per-example predictions
    (its figures in a ``.metrics.json`` file beside it), else None: one JSON report holding both."""
    _check_output_path(output)
    suffix = Path(output).suffix.lower() if output else ""
    return suffix if suffix in (".csv", ".tsv", ".jsonl") else None


def metrics_path(output: str | os.PathLike) -> Path:
    """Where ``evaluate --output predictions.csv`` writes its figures: ``predictions.metrics.json``."""
    return Path(output).with_suffix(".metrics.json")


def run_evaluate(args: argparse.Namespace) -> int:
    """Score labelled data once and report raw and calibrated figures from the same class scores (a prompt),
    with warnings for collapsed predictions and integer labels read as class indices; ``--output`` gets the
    report with every example's predictions. Model loading is timed apart from scoring."""
    from ..io.readers import load_data
    from ..io.sampling import subsample
    from ..core.metrics import classification_report, format_report
    from .diagnostics import class_counts, collapse_warnings
    from .labels import class_indices, parse_label_map

    columns = _columns(args.column)
    table = _evaluate_output(args.output)
    label_map = parse_label_map(args.label_map)
    start = time.perf_counter()
    classifier = _classifier(args)  # a saved distilled student loads its model here
    load_seconds = time.perf_counter() - start
    from ..estimators.classifier import PromptClassifier

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
    classes = list(classifier.classes_)
    truth, label_mapping = class_indices(labels, classes, label_map, where=str(args.data),
                                         classes_from=(verbalizer.source or "the verbalizer") if prompt
                                         else str(args.model_dir))
    label_column = args.label_column or "label"
    if table:
        taken = sorted(set(_prediction_columns(("raw", "calibrated"), classes)) & {k for e in examples for k in e})
        if taken:
            raise PromptlearnError(f"the data already has column(s) {taken}, where evaluate would write its "
                                   f"predictions; rename them")
    load_seconds += _load_models(classifier)
    start = time.perf_counter()
    primary, variants, prior = _score(classifier, examples, both=True)
    seconds = time.perf_counter() - start
    if not _main_process():  # several processes: scored in slices and gathered; the main process reports
        return 0
    reports = {}
    for name, (predicted, _) in variants.items():
        reports[name] = classification_report(truth, predicted, classes)
        reports[name]["predicted"] = class_counts(predicted, classes)
    warnings = collapse_warnings({name: predicted for name, (predicted, _) in variants.items()}, classes,
                                 truth=truth, prior=prior)
    members = getattr(classifier, "members", [])  # an ensemble's
    report = dict(reports[primary])
    report.update({
        "data": str(args.data), "split": args.split, "n_examples": len(examples), "n_available": total,
        "subset_seed": args.seed if subset else None, "model": args.model_dir or args.model or "smollm2",
        "template": (classifier.template_.source if prompt
                     else [m.template_.source for m in members if hasattr(m, "template_")] or None),
        "verbalizer": (verbalizer.to_dict() if prompt
                       else [m.verbalizer_.to_dict() for m in members if hasattr(m, "verbalizer_")] or None),
        "label_map": label_mapping or None,
        "calibrate": args.calibrate, "variant": primary,
        "variants": {name: {k: v for k, v in r.items() if k != "classes"} for name, r in reports.items()},
        "content_free_prior": prior,
        **({"demos": classifier.demonstrations.k, "demo_selection": classifier.demonstrations.selection,
            "demo_sets": classifier.demonstrations.sets, "chat_template": classifier.scoring.chat_template}
           if prompt and classifier._uses_context() else {}),
        "load_seconds": round(load_seconds, 2), "seconds": round(seconds, 2),
        "examples_per_second": round(len(examples) / seconds, 2) if seconds > 0 else None,
        "warnings": warnings,
    })
    print(format_report(report))
    if args.output:
        records = _prediction_records(variants, classes, examples, label_column, labels)
        if table:
            header = [*_prediction_columns(variants, classes), label_column]
            atomic_write(args.output, lambda handle: _dump(records, handle, table, header))
            atomic_write_text(metrics_path(args.output), json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        else:
            atomic_write_text(args.output, json.dumps({**report, "predictions": records}, indent=2,
                                                      ensure_ascii=False) + "\n")
    return 0
