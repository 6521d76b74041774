"""``classify`` and ``evaluate``: a prompt (or a saved classifier) applied to texts, timed apart from loading."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io.artifacts import atomic_write_text
from ..core.errors import PromptlearnError
from .options import check_output_path, column_mapping, output_suffix

logger = logging.getLogger(__name__)


def _main_process() -> bool:
    from ..models.distributed import is_main_process

    return is_main_process()


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
        pool_x, pool_y = load_data(args.demo_pool, "train", columns=column_mapping(args.column), label_column=label_column)
        if pool_y is None:
            raise PromptlearnError(f"--demo-pool {args.demo_pool} has no labels (looked for column {label_column!r})")
        options["demo_pool"] = (pool_x, pool_y)
    return options


def _classifier(args: argparse.Namespace, *, show_progress: bool | None = None, **training: Any) -> Any:
    """The classifier the options name; ``show_progress`` False turns its own progress bars off (else -q's)."""
    if getattr(args, "model_dir", None) and Path(args.model_dir, "onnx_config.json").is_file():
        from ..onnx.runtime import OnnxClassifier  # an exported folder (promptlearn export): served without torch

        return OnnxClassifier.load(args.model_dir, batch_size=args.batch_size, calibrate=args.calibrate or None)
    from ..estimators.classifier import PromptClassifier
    from ..estimators.options import from_flat

    progress = False if show_progress is False else _show_progress(args)

    if getattr(args, "model_dir", None):
        from ..estimators.ensemble import PromptEnsemble, saved_class

        saved = saved_class(args.model_dir)
        base = {"model": args.model} if getattr(args, "model", None) else {}  # the caller's model, never a saved path
        base.update(batch_size=args.batch_size, device=args.device, show_progress=progress)
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
        device=args.device, dtype=args.dtype, gguf_file=args.gguf_file, show_progress=progress,
        **from_flat(flat),
    )


def _show_progress(args: argparse.Namespace) -> bool | None:
    """Progress bars: never with -q (--quiet), else on a terminal (None)."""
    return False if getattr(args, "quiet", False) else None


def run_classify(args: argparse.Namespace) -> int:
    """Predictions first (``label``, ``p(<class>)``), then every input column as read: nothing of the input is
    dropped or overwritten. Prediction columns that an input column already names are an error before any
    work (``--prediction-prefix`` renames them); ``--output`` may be ``--input`` (replaced at the end).

    The input is read in chunks (``--chunk-rows``, ``--chunk-bytes``), each scored and written before the next
    is read: memory stays flat however long the input. A file output is kept in parts beside it until the end,
    so that ``--resume`` continues a killed run (see :mod:`.streaming`)."""
    from .ray_engine import ray_requested, run_ray_classify

    if ray_requested(args):  # --engine ray (or its options): Ray Data workers score the file (ray_engine.py)
        return run_ray_classify(args)
    from ..io.streaming import iter_chunks
    from .streaming import ChunkedOutput, Progress, check_resume, manifest, score_chunks

    if not args.template and not getattr(args, "model_dir", None):
        raise PromptlearnError("--template is required (a file, a shipped name such as sst2/it_was, or Jinja text), "
                               "or --model-dir with a classifier saved by `promptlearn train`")
    if args.text and args.input:
        raise PromptlearnError("give texts with --text or a file with --input, not both")
    if not args.text and not args.input:
        raise PromptlearnError("nothing to classify: give texts with --text (repeatable) or a file with --input "
                               "(- for stdin)")
    columns = column_mapping(args.column)
    suffix = output_suffix(args.output)
    check_resume(args)
    start = time.perf_counter()
    classifier = _classifier(args, show_progress=False)  # one bar over the chunks instead (Progress)
    load_seconds = time.perf_counter() - start
    template = classifier.template_
    classifier.verbalizer_  # validate before loading the model
    if args.text:
        if len(template.fields) != 1:
            raise PromptlearnError(f"--text fills one field, but the template uses {sorted(template.fields)}; "
                                   "use --input with those columns")
        (field,) = template.fields
        chunks: Any = iter([_text_chunk(field, args.text)])
    else:
        chunks = iter_chunks(args.input, fmt=args.fmt, columns=columns, max_rows=args.chunk_rows,
                             max_bytes=args.chunk_bytes)
    first = next(chunks)
    classes = list(classifier.classes_)
    prefix = getattr(args, "prediction_prefix", "") or ""
    label_column = f"{prefix}label"
    prob_columns = [f"{prefix}p({c})" for c in classes]
    taken = sorted(set(first.header) & {label_column, *prob_columns})
    if taken:
        raise PromptlearnError(
            f"the input already has column(s) {taken}, where classify would write its predictions; keep both with "
            f"--prediction-prefix (e.g. --prediction-prefix predicted_ writes predicted_label, predicted_p(...)) "
            f"or rename those columns")
    header = [label_column, *prob_columns, *first.header]
    schema = None
    if suffix == ".parquet" and first.schema is not None:  # a Parquet input's column types, kept
        import pyarrow as pa

        schema = pa.schema([pa.field(label_column, pa.string()), *(pa.field(c, pa.float64()) for c in prob_columns),
                            *first.schema])
    load_seconds += _load_models(classifier)
    output = ChunkedOutput(args.output, suffix, manifest(args, "classify", suffix),
                           resume=getattr(args, "resume", False), main_process=_main_process())

    def records(chunk: Any, variants: dict[str, Any], primary: str) -> list[dict[str, Any]]:
        rows = []
        for row, probs in zip(chunk.rows, variants[primary][1] if variants else []):
            record: dict[str, Any] = {label_column: classes[int(probs.argmax())]}
            record.update({column: round(float(p), 6) for column, p in zip(prob_columns, probs)})
            record.update(row)
            rows.append(record)
        return rows

    # several processes: each chunk scored in slices, gathered in order, written once by the main process
    run = score_chunks(_chained(first, chunks), lambda examples: _score(classifier, examples,
                                                                         both=classifier.calibrate),
                       records, output, Progress(_show_progress(args)), header, schema)
    if not _main_process():
        return 0
    from ..core.metrics import format_timing
    from .diagnostics import collapse_warnings

    collapse_warnings(run.predicted, classes, prior=run.prior, check=[run.primary])
    timing = format_timing(run.scored, run.seconds, load_seconds) + (
        f"; {run.resumed} read from the interrupted run's parts" if run.resumed else "")
    if args.output is None:
        logger.info("%s", timing)
    else:
        print(f"wrote {run.written} predictions to {args.output} ({timing})", file=sys.stderr)
    return 0


def _text_chunk(field: str, texts: Sequence[str]) -> Any:
    """``--text``'s texts as one chunk of the template's one field."""
    from ..io.streaming import Chunk

    rows = [{field: text} for text in texts]
    return Chunk(0, 0, [dict(r) for r in rows], rows, [field], len(rows), len(rows))


def _chained(first: Any, rest: Any) -> Any:
    yield first
    yield from rest


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


def _variant_names(classifier: Any, *, both: bool) -> list[str]:
    """The variants :func:`_score` gives for ``classifier``, in its order, known before any scoring."""
    from ..estimators.classifier import PromptClassifier

    if isinstance(classifier, PromptClassifier):
        if both and (classifier.calibrate or not classifier.demonstrations.k):
            return ["raw", "calibrated"]
        return ["calibrated" if classifier.calibrate else "raw"]
    if hasattr(classifier, "predict_with_proba"):
        return ["calibrated" if getattr(classifier, "calibrate_members", False) else "raw"]
    return ["raw"]


def _predictioncolumn_mapping(variants: Sequence[str], classes: Sequence[str]) -> list[str]:
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
    check_output_path(output)
    suffix = Path(output).suffix.lower() if output else ""
    return suffix if suffix in (".csv", ".tsv", ".jsonl", ".parquet") else None


def metrics_path(output: str | os.PathLike) -> Path:
    """Where ``evaluate --output predictions.csv`` writes its figures: ``predictions.metrics.json``."""
    return Path(output).with_suffix(".metrics.json")


def run_evaluate(args: argparse.Namespace) -> int:
    """Score labelled data once and report raw and calibrated figures from the same class scores (a prompt),
    with warnings for collapsed predictions and integer labels read as class indices; ``--output`` gets the
    report with every example's predictions. Model loading is timed apart from scoring.

    A data file (CSV, TSV, JSON Lines, Parquet; no ``--limit``) is read in chunks, twice: its labels first (all
    that the figures need is kept: one class index per example), then the examples, scored a chunk at a time; a
    per-example table (``--output`` .csv / .tsv / .jsonl / .parquet) is written as it comes, in resumable parts as
    classify's. Other data (folders, task names, datasets, stdin, ``--limit``) is read whole, then scored in the
    same chunks."""
    from ..core.metrics import classification_report, format_report
    from .diagnostics import class_counts, collapse_warnings
    from .labels import class_indices, parse_label_map
    from .streaming import ChunkedOutput, Progress, check_resume, labelled_chunks, manifest, score_chunks

    columns = column_mapping(args.column)
    table = _evaluate_output(args.output)
    if getattr(args, "resume", False) and not table:
        raise PromptlearnError("--resume continues evaluate's per-example table: give --output a .csv, .tsv, .jsonl "
                               "or .parquet file")
    check_resume(args)
    if getattr(args, "update_card", False) and not args.model_dir:
        raise PromptlearnError("--update-card records the figures in a saved folder: give it with --model-dir")
    label_map = parse_label_map(args.label_map)
    start = time.perf_counter()
    classifier = _classifier(args, show_progress=False)  # a saved distilled student loads its model here
    load_seconds = time.perf_counter() - start
    from ..estimators.classifier import PromptClassifier

    prompt = isinstance(classifier, PromptClassifier)  # else a saved ensemble or distilled student (--model-dir)
    if prompt:
        classifier.template_
        verbalizer = classifier.verbalizer_
    label_column = args.label_column or "label"
    data = labelled_chunks(args, columns, label_column)
    classes = list(classifier.classes_)
    truth, label_mapping = class_indices(data.labels, classes, label_map, where=str(args.data),
                                         classes_from=(verbalizer.source or "the verbalizer") if prompt
                                         else str(args.model_dir))
    data.labels = []  # the class indices are what the figures need
    names = _variant_names(classifier, both=True)
    if table:
        taken = sorted(set(_predictioncolumn_mapping(("raw", "calibrated"), classes)) & set(data.fields))
        if taken:
            raise PromptlearnError(f"the data already has column(s) {taken}, where evaluate would write its "
                                   f"predictions; rename them")
    header = [*_predictioncolumn_mapping(names, classes), label_column, *(f for f in data.fields if f != label_column)]
    load_seconds += _load_models(classifier)
    kept: list[dict[str, Any]] = []  # a JSON report's predictions (one document, held until written)
    output = ChunkedOutput(args.output if table else None, table, manifest(args, "evaluate", table or "json"),
                           resume=getattr(args, "resume", False), main_process=_main_process())

    def records(chunk: Any, variants: dict[str, Any], primary: str) -> list[dict[str, Any]]:
        if not args.output or not _main_process():
            return []
        labels = [row[label_column] for row in chunk.rows]
        made = _prediction_records(variants, classes, chunk.examples, label_column, labels)
        if not table:
            kept.extend(made)
        return made

    run = score_chunks(data.chunks(), lambda examples: _score(classifier, examples, both=True), records, output,
                       Progress(_show_progress(args)), header)
    if not _main_process():  # several processes: scored in slices and gathered; the main process reports
        return 0
    primary, prior, seconds, n = run.primary, run.prior, run.seconds, len(truth)
    reports = {}
    for name, predicted in run.predicted.items():
        reports[name] = classification_report(truth, predicted, classes)
        reports[name]["predicted"] = class_counts(predicted, classes)
    warnings = collapse_warnings(run.predicted, classes, truth=truth, prior=prior)
    members = getattr(classifier, "members", [])  # an ensemble's
    report = dict(reports[primary])
    report.update({
        "data": str(args.data), "split": args.split, "n_examples": n, "n_available": data.available,
        "subset_seed": args.seed if data.subset else None, "model": args.model_dir or args.model or "smollm2",
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
        "examples_per_second": round(run.scored / seconds, 2) if seconds > 0 else None,
        "warnings": warnings,
    })
    if run.resumed:
        report["resumed_examples"] = run.resumed
    print(format_report(report))
    if args.output:
        if table:
            atomic_write_text(metrics_path(args.output), json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        else:
            atomic_write_text(args.output, json.dumps({**report, "predictions": kept}, indent=2,
                                                      ensure_ascii=False) + "\n")
    if getattr(args, "update_card", False):
        from ..estimators.model_card import record_evaluation

        split = f"{args.split} ({n} of {data.available}, seed {args.seed})" if data.subset else args.split
        print(f"recorded the figures in {record_evaluation(args.model_dir, report, split=split)}", file=sys.stderr)
    return 0
