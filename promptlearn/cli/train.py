"""``train`` (a prompt, continuous prompts, ensembles), ``adapt`` (masked-LM training of an encoder) and
``search`` (prompt search)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core.errors import PromptlearnError
from ..io.artifacts import recover_directory
from ..models.distributed import is_main_process
from .options import column_mapping
from .predict import _classifier, _show_progress, default_verbalizer

# --source options: flag -> (the sources it applies to, the source option it sets)
def run_train(args: argparse.Namespace) -> int:
    from ..io.readers import load_data, read_examples

    output = Path(args.output)
    recover_directory(output)  # a final save killed between its renames: it finished, and counts as finished
    finished = (output / "config.json").exists()
    if finished and args.resume and not args.overwrite:
        raise PromptlearnError(f"--output {output} holds a finished run (its config.json); there is nothing to "
                               f"resume: evaluate it with --model-dir {output}, or pass --overwrite to train again")
    if output.exists() and not args.overwrite and (finished or not args.resume):
        hint = "" if finished else " (it holds an unfinished run: add --resume to continue it)"
        raise PromptlearnError(f"--output {output} already exists{hint}; pass --overwrite to replace it")
    if output.exists() and not output.is_dir():
        raise PromptlearnError(f"--output {output} is a file, not a folder")
    if bool(args.data) == bool(args.train):
        raise PromptlearnError("give the training data with --data (an LM-BFF folder or task) or --train FILE")
    prompts = _ensemble_prompts(args)  # None: one prompt (args.template / args.verbalizer become plain strings)
    columns = column_mapping(args.column)
    options = dict(columns=columns, label_column=args.label_column, fmt=args.fmt)
    if args.data:
        train_x, train_y = load_data(args.data, "train", **options)
        dev_x, dev_y = load_data(args.dev, "test", **options) if args.dev else load_data(args.data, "dev", **options)
    else:
        train_x, train_y = load_data(args.train, "train", **options)
        dev_x, dev_y = load_data(args.dev, "test", **options) if args.dev else (None, None)
    if train_y is None or (dev_x is not None and dev_y is None):
        raise PromptlearnError(f"the training and dev data need labels (column {args.label_column!r})")
    train_x, train_y = _k_per_class(args, train_x, train_y)
    unlabeled = read_examples(args.unlabeled, columns=columns, label_column=None, fmt=args.fmt)[0] \
        if args.unlabeled else None
    if prompts is not None:
        return _train_ensemble(args, prompts, output, (train_x, train_y),
                               (dev_x, dev_y) if dev_x is not None else None, unlabeled)
    classifier = _classifier(args, checkpoint_dir=str(output), **_training_options(args), **_progress_options(args))
    classifier.template_, classifier.verbalizer_  # validate before loading the model
    train_y, dev_y = _read_labels(args, list(classifier.classes_), train_y, dev_y,
                                  classes_from=classifier.verbalizer_.source or "the verbalizer")
    start = time.perf_counter()
    from ..pipeline.training import TrainingInterrupted

    try:
        with progress_log(getattr(args, "quiet", False)):
            classifier.fit(train_x, train_y, unlabeled=unlabeled,
                           dev=(dev_x, dev_y) if dev_x is not None else None, resume=args.resume)
    except TrainingInterrupted as exc:
        if is_main_process():
            print(f"promptlearn: {interrupted_message(exc)}", file=sys.stderr)
        return exc.exit_status
    seconds = time.perf_counter() - start
    classifier.set_params(training__checkpoint_dir=None)
    if not is_main_process():  # several processes: they hold the same weights; the main process saves them
        return 0
    classifier.save(output, overwrite=True)
    result = classifier.training_result_
    summary = {"output": str(output), "train_examples": len(train_x), "steps": result.steps,
               "seconds": round(seconds, 1), "best_step": result.best_step, "dev_accuracy": result.best_metric,
               "stopped_early": result.stopped_early}
    print(json.dumps(summary))
    return 0


def _k_per_class(args: argparse.Namespace, train_x: list, train_y: list) -> tuple[list, list]:
    """--k: K training examples per class, the draw of `promptlearn sample --k K --seed SEED` (--seed), so that
    both pick the same rows; everything when --k is not given."""
    if not getattr(args, "k", None):
        return train_x, train_y
    from .sample import k_per_class

    picked = k_per_class(train_y, args.k, args.seed, where=_data_names(args)[0], label_column=args.label_column,
                         fix="lower --k (`promptlearn sample --allow-fewer` writes a file with all of their rows)")
    if is_main_process() and not getattr(args, "quiet", False):
        print(f"promptlearn: training on {args.k} examples per class: {len(picked)} of {len(train_y)} rows "
              f"(seed {args.seed})", file=sys.stderr)
    return [train_x[i] for i in picked], [train_y[i] for i in picked]


def _read_labels(args: argparse.Namespace, classes: list[str], train_y: list, dev_y: list | None, *,
                 classes_from: str) -> tuple[list[str], list[str] | None]:
    """The training and dev labels as class names, read as evaluate reads them (:func:`.labels.class_indices`):
    --label-map, else names as they are and integer labels as indices with a one-line warning, refused when
    no label is 0."""
    from .labels import parse_label_map

    label_map = parse_label_map(getattr(args, "label_map", None))
    train_where, dev_where = _data_names(args)
    return (_class_names(train_y, classes, label_map, train_where, classes_from),
            _class_names(dev_y, classes, label_map, dev_where, classes_from) if dev_y is not None else None)


def _data_names(args: argparse.Namespace) -> tuple[str, str]:
    """How messages name the training and the dev data."""
    return args.train or f"{args.data} (train split)", args.dev or f"{args.data} (dev split)"


def _class_names(labels: list, classes: list[str], label_map: dict[str, str] | None, where: str,
                 classes_from: str) -> list[str]:
    from .labels import class_indices

    indices, _ = class_indices(labels, classes, label_map, where=where, classes_from=classes_from)
    return [classes[i] for i in indices]


def interrupted_message(exc: Any) -> str:
    """The one line `promptlearn train` prints when Ctrl-C or SIGTERM stopped training (a TrainingInterrupted)."""
    how = "interrupted" if exc.signal_name == "SIGINT" else f"stopped by {exc.signal_name}"
    if exc.checkpoint is not None:
        return (f"{how} at step {exc.step} of {exc.total}; checkpoint saved in {exc.checkpoint}: rerun the same "
                "command with --resume to continue from it")
    return f"{how} before the first step finished; nothing to save: rerun the same command to start again"


class _ProgressHandler(logging.Handler):
    """Writes log lines to the current stderr, through tqdm so that a progress bar on a terminal is redrawn
    below them instead of being cut."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm.auto import tqdm

            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never stop training
            self.handleError(record)


@contextlib.contextmanager
def progress_log(quiet: bool) -> Iterator[None]:
    """While training: the ``promptlearn.pipeline.training`` logger's lines (plan, estimate, a line every --log-every
    steps, interruptions) on stderr, terminal or not; with ``quiet`` (-q) only its warnings, as for other
    loggers. Only the main process of several writes them. The logger is left as it was afterwards."""
    log = logging.getLogger("promptlearn.pipeline.training")
    if quiet or not is_main_process():
        yield
        return
    handler = _ProgressHandler(logging.INFO)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(min(logging.INFO, log.getEffectiveLevel()))
    log.propagate = False  # with -v the root handler would print every line a second time
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


def _progress_options(args: argparse.Namespace) -> dict[str, Any]:
    """PromptClassifier's logging, checkpoint and memory parameters from --log-every, --checkpoint-every and
    --tokens-per-pass."""
    unit, amount = getattr(args, "checkpoint_every", None) or ("minutes", 10.0)
    options: dict[str, Any] = {"log_every": getattr(args, "log_every", 10),
                               "train_tokens_per_pass": getattr(args, "tokens_per_pass", None),
                               "checkpoint_every": amount if unit == "steps" else None,
                               "checkpoint_minutes": amount if unit == "minutes" else None}
    return options


def _training_options(args: argparse.Namespace) -> dict[str, Any]:
    """PromptClassifier's training options (flat names, as the CLI spells them) and its tuning config (``--source``
    and its flags, ``--learning-rate``: the method's own default when not given)."""
    from .tuning_flags import tuning_from_args

    return dict(epochs=args.epochs, max_steps=args.max_steps, train_batch_size=args.train_batch_size,
                gradient_accumulation_steps=args.gradient_accumulation, warmup_ratio=args.warmup_ratio,
                weight_decay=args.weight_decay, eval_every=args.eval_every, patience=args.patience, seed=args.seed,
                tuning=tuning_from_args(args))


def _ensemble_prompts(args: argparse.Namespace) -> list[tuple[str, str | None]] | None:
    """(template, verbalizer) of every prompt of an ensemble run (several --template, --ensemble, --distill or
    --ipet-generations), checked before any data or model is loaded; None for a single-prompt run, whose
    args.template / args.verbalizer then become the plain strings the other commands use."""
    templates, verbalizers = list(args.template), list(args.verbalizer or [])
    if len(verbalizers) not in (0, 1, len(templates)):
        raise PromptlearnError(f"{len(templates)} --template but {len(verbalizers)} --verbalizer: give one "
                               "verbalizer for every template, or one per template in the same order")
    if not (len(templates) > 1 or args.ensemble or args.distill or args.ipet_generations):
        args.template, args.verbalizer = templates[0], (verbalizers[0] if verbalizers else None)
        return None
    if args.resume:
        raise PromptlearnError("--resume continues a single-prompt run; ensembles, distillation and iPET start "
                               "over (pass --overwrite)")
    if (args.distill or args.ipet_generations) and not args.unlabeled:
        raise PromptlearnError("--distill and --ipet-generations need unlabelled examples: --unlabeled FILE")
    if args.ipet_generations < 0:
        raise PromptlearnError(f"--ipet-generations must be >= 0, got {args.ipet_generations}")
    if args.ipet_generations and len(templates) < 2:
        raise PromptlearnError("iPET needs at least two prompts: repeat --template")
    if not args.temperature > 0:
        raise PromptlearnError(f"--temperature must be > 0, got {args.temperature}")
    if len(verbalizers) <= 1:
        verbalizers = verbalizers * len(templates) or [None] * len(templates)
    return [(t, v or default_verbalizer(t)) for t, v in zip(templates, verbalizers)]


def _train_ensemble(args: argparse.Namespace, prompts: list[tuple[str, str | None]], output: Path,
                    train: tuple[Any, Any], dev: tuple[Any, Any] | None, unlabeled: Any) -> int:
    """PET with several prompts (a PromptEnsemble), optionally iPET, optionally distilled into one student."""
    from ..estimators.ensemble import PromptEnsemble

    def prompt_classifier(template: str, verbalizer: str | None) -> Any:
        member = _classifier(argparse.Namespace(**{**vars(args), "template": template, "verbalizer": verbalizer}),
                             **_training_options(args))
        member.template_, member.verbalizer_  # validate before loading the model
        return member

    members = [prompt_classifier(template, verbalizer) for template, verbalizer in prompts]
    first = members[0].verbalizer_
    train_y, dev_y = _read_labels(args, list(first.classes), train[1], dev[1] if dev is not None else None,
                                  classes_from=first.source or "the verbalizer")
    train, dev = (train[0], train_y), ((dev[0], dev_y) if dev is not None else None)
    if args.weights_from == "dev" and dev is None:
        raise PromptlearnError("--weights-from dev needs dev data: --dev FILE, or an LM-BFF folder with a dev split")
    ensemble = PromptEnsemble(members, combine=args.ensemble or "mean", weights_from=args.weights_from,
                              ipet_generations=args.ipet_generations, seed=args.seed)
    student = None
    if args.distill:
        student = prompt_classifier(*prompts[0]) if args.student == "prompt" else _finetune_student(args)
    start = time.perf_counter()
    ensemble.fit(*train, unlabeled=unlabeled, dev=dev)
    summary: dict[str, Any] = {
        "output": str(output), "train_examples": len(train[0]), "members": len(members), "ensemble": ensemble.combine,
        "weights": [round(float(w), 6) for w in ensemble.weights_],
        "steps": [getattr(getattr(m, "training_result_", None), "steps", None) for m in ensemble.members_],
        "dev_accuracy": ensemble.score(*dev) if dev is not None else None,
    }
    if args.ipet_generations:
        summary["ipet_train_sizes"] = [generation["train_sizes"] for generation in ensemble.ipet_history_]
    if student is not None:
        student = ensemble.distill(unlabeled, student, temperature=args.temperature, dev=dev)
        summary.update(student=type(student).__name__, distilled_examples=len(unlabeled),
                       student_dev_accuracy=student.score(*dev) if dev is not None else None)
    if not is_main_process():  # several processes: the main process saves and reports
        return 0
    (student if student is not None else ensemble).save(output, overwrite=True)
    summary["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(summary))
    return 0


def _candidate_words(value: str | None) -> Any:
    """--candidate-words: a verbalizer file (each class's own candidates) or a comma-separated list (for all)."""
    if value is None:
        return None
    if Path(value).is_file():
        from ..core.verbalizer import Verbalizer

        return Verbalizer.load(value).to_dict()
    words = [w.strip() for w in value.split(",") if w.strip()]
    if not words:
        raise PromptlearnError(f"--candidate-words {value!r} holds no word: give 'word,other words' or a verbalizer file")
    return words


def _finetune_student(args: argparse.Namespace) -> Any:
    """The distilled sequence classifier: --model with a new head, trained with the same hyper-parameters."""
    from ..estimators.finetune import FineTuneClassifier

    options = {k: v for k, v in _training_options(args).items() if k != "tuning"}
    options["learning_rate"] = args.learning_rate if args.learning_rate is not None else 1e-5  # full fine-tuning
    if args.max_length:
        options["max_length"] = args.max_length
    return FineTuneClassifier(args.model, batch_size=args.batch_size, device=args.device, dtype=args.dtype,
                              show_progress=_show_progress(args), **options)


def run_adapt(args: argparse.Namespace) -> int:
    from ..applications.adapt import _subset, adapt, read_texts, shared_unlabelled_texts

    if Path(args.output).exists() and not args.overwrite:
        raise PromptlearnError(f"{args.output} already exists; choose another --output or pass --overwrite")
    if args.texts:
        texts = read_texts(args.texts, column=args.column, max_texts=args.max_texts, seed=args.seed)
        source = " ".join(args.texts)
    else:
        texts = _subset(shared_unlabelled_texts(args.shared_data or None), args.max_texts, args.seed)
        source = "the shared data (train/dev splits, no test split)"
    if is_main_process() and not args.quiet:
        print(f"adapting {args.model} on {len(texts)} texts from {source}", file=sys.stderr)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        summary = adapt(args.model, texts, args.output, head_steps=args.head_steps, steps=args.steps,
                        learning_rate=args.learning_rate, head_learning_rate=args.head_learning_rate,
                        batch_size=args.batch_size, max_length=args.max_length, mlm_probability=args.mlm_probability,
                        checkpoint_every=args.checkpoint_every, seed=args.seed, resume=args.resume,
                        overwrite=args.overwrite, device=args.device, dtype=args.dtype,
                        show_progress=_show_progress(args))
    except KeyboardInterrupt as exc:  # a TrainingInterrupted (Ctrl-C or SIGTERM) saved the current step first
        print(f"promptlearn: interrupted; the checkpoints are in {args.output}.partial: rerun the same command with "
              "--resume to continue", file=sys.stderr)
        return getattr(exc, "exit_status", 130)
    phases = [f"{label}: {summary[count]} steps, loss {summary[f'{key}_first_loss']} -> {summary[f'{key}_loss']} "
              f"({summary[f'{key}_seconds']} s)"
              for key, count, label in (("head", "head_steps", "head"), ("full", "steps", "all weights"))
              if summary[count]]
    if is_main_process():
        print(f"wrote {args.output}: {'; '.join(phases)}; {summary['seconds']} s in all", file=sys.stderr)
    return 0


def _search_task_name(args: argparse.Namespace) -> str:
    import re

    from ..io.tasks import task_id

    if args.task_name:
        return args.task_name
    if args.data:
        path = Path(args.data)
        for candidate in ((path.parent.name, path.name) if path.is_dir() else (args.data.split(":")[0],)):
            try:
                return task_id(candidate)
            except PromptlearnError:
                continue
        return re.sub(r"[^A-Za-z0-9_\-]+", "_", path.name) or "task"
    return "task"


def _search_labels(args: argparse.Namespace, train_y: list, dev_y: list) -> tuple[list[str], list[str]]:
    """search's labels read as evaluate and train read them (:func:`.labels.class_indices`): with --verbalizer,
    onto its classes (--label-map, else names, else integer labels as indices with a warning; refused when no
    label is 0); without, --label-map's classes are the classes searched for, and without either the labels
    themselves are."""
    from .labels import parse_label_map

    label_map = parse_label_map(args.label_map)
    if args.verbalizer is not None:
        from ..core.verbalizer import Verbalizer

        verbalizer = Verbalizer.load(args.verbalizer)
        classes, classes_from = list(verbalizer.classes), verbalizer.source or "--verbalizer"
    elif label_map is not None:
        classes, classes_from = list(dict.fromkeys(label_map.values())), "--label-map"
    else:
        return train_y, dev_y
    train_where, dev_where = _data_names(args)
    return (_class_names(train_y, classes, label_map, train_where, classes_from),
            _class_names(dev_y, classes, label_map, dev_where, classes_from))


def run_search(args: argparse.Namespace) -> int:
    from ..io.readers import load_data
    from ..applications.search import PromptSearch
    from ..applications.search.results import check_task_name

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PromptlearnError(f"--out {out} is a file, not a folder")
    if (out / "report.json").exists() and not args.overwrite:
        raise PromptlearnError(f"--out {out} already holds a search report; pass --overwrite to replace it")
    if bool(args.data) == bool(args.train):
        raise PromptlearnError("give the labelled examples with --data (an LM-BFF folder or task) or --train FILE")
    if args.train and not args.dev:
        raise PromptlearnError("--dev FILE is required with --train: the search scores its candidates on it")
    if args.budget_minutes < 0:
        raise PromptlearnError(f"--budget-minutes must be >= 0, got {args.budget_minutes}")
    task = check_task_name(_search_task_name(args))
    options = dict(columns=column_mapping(args.column), label_column=args.label_column, fmt=args.fmt)
    train_x, train_y = load_data(args.data or args.train, "train", **options)
    dev_x, dev_y = load_data(args.dev, "test", **options) if args.dev else load_data(args.data, "dev", **options)
    if train_y is None or dev_y is None:
        raise PromptlearnError(f"the training and dev data need labels (column {args.label_column!r})")
    train_y, dev_y = _search_labels(args, train_y, dev_y)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    search = PromptSearch(
        model=args.model, gguf_file=args.gguf_file, device=args.device, dtype=args.dtype, batch_size=args.batch_size,
        max_length=args.max_length, method=args.method, template=args.template, verbalizer=args.verbalizer,
        n_templates=args.n_templates, budget_minutes=args.budget_minutes, seed=args.seed,
        top_k_words=args.top_k_words, words_per_class=args.words_per_class,
        candidate_words=_candidate_words(args.candidate_words), n_triggers=args.triggers,
        autoprompt_iterations=args.autoprompt_iterations,
        train_steps=args.train_steps, learning_rate=args.learning_rate, keep_margin=args.keep_margin,
        show_progress=_show_progress(args))
    if not args.quiet:
        print(f"searching prompts ({args.method}) for {task} with {args.model} on {len(train_x)} training and "
              f"{len(dev_x)} dev examples, budget {args.budget_minutes:g} min", file=sys.stderr)
    search.fit(train_x, train_y, dev=(dev_x, dev_y))
    search.write(out, task_name=task, overwrite=args.overwrite)
    result = search.result_
    print(f"{len(result.candidates)} candidates scored in {result.seconds:.1f} s; best {args.n_templates} in {out}:")
    for rank, candidate in enumerate(result.best(args.n_templates), start=1):
        trained = f"  trained {100 * candidate.trained:.1f}" if candidate.trained is not None else ""
        words = "; ".join(f"{c}: {', '.join(w)}" for c, w in candidate.label_words.items())
        print(f"{rank}. zero-shot {100 * candidate.zero_shot:.1f}  calibrated {100 * candidate.calibrated:.1f}"
              f"{trained}  {json.dumps(candidate.template, ensure_ascii=False)}  ({words})")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0
