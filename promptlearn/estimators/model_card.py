"""A saved folder's model card: ``README.md`` with the Hugging Face hub's YAML front matter (``library_name``,
``pipeline_tag``, ``base_model``, ``tags``, the fields the user gives, ``metrics`` and ``model-index`` when
evaluated) and a body that says what the folder holds: the template, the verbalizer, the tuning method and its
size, the training data's size and seed, the versions that saved it, the evaluation figures and how to load it.

The card is generated from the folder's ``config.json`` (its ``card`` entry: the user's fields, the versions, the
training data's size), the folder's files and ``eval_results.json`` (:func:`record_evaluation`), on every save
and every recorded evaluation, so it stays true. It is data: loading a folder never reads it.

Evaluation figures belong to one set of weights: ``eval_results.json`` carries the fingerprint of the folder's
content (every file but the card and the figures; ``config.json`` without its ``card`` entry), and a card only
shows figures whose fingerprint is the folder's. A save writes a new folder and keeps the previous figures only
when the content is unchanged (the same weights, template, verbalizer and parameters).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, PromptlearnError, SavedFolderError
from ..io.artifacts import atomic_write_text
from ..models.loader import short_names
from .saved_folders import is_model_name

CARD_FILE = "README.md"
EVAL_FILE = "eval_results.json"
EVAL_FORMAT = "promptlearn.EvalResults"
ENSEMBLE_FORMAT = "promptlearn.PromptEnsemble"
#: The folders that have a card (a probe's or fine-tuned baseline's folder keeps its figures, without a card).
CARD_FORMATS = ("promptlearn.PromptClassifier", ENSEMBLE_FORMAT)
#: Front-matter keys computed from the folder (never given by the user: the card must stay true).
COMPUTED_FIELDS = ("library_name", "pipeline_tag", "metrics", "model-index", "eval_results")
#: Card fields that are not front matter: the card's title and a paragraph under it.
BODY_FIELDS = ("model_name", "description")
_NOT_ARTIFACT = (CARD_FILE, EVAL_FILE)
#: The hub repositories of promptlearn's short model names (``base_model`` must be a hub id).
SHORT_NAME_REPOSITORIES = {"smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct",
                           "minilm": "sentence-transformers/all-MiniLM-L6-v2"}
_TUNING_NAMES = {"manual": "prompt-based fine-tuning of the model's weights (PET / LM-BFF)",
                 "soft": "prompt tuning (trainable soft-prompt embeddings)",
                 "ptuning": "P-tuning (soft-prompt embeddings from a prompt encoder)",
                 "deep": "P-tuning v2 (key/value prefixes at every layer)", "lora": "LoRA (PEFT)",
                 "adapter": "bottleneck adapters (PEFT)", "bitfit": "BitFit (the biases)"}


def hub_base_model(base: Any) -> str | None:
    """The hub id of a saved folder's base model: a hub id as it is, a short name's repository; None for a local
    path (or a short name without one)."""
    if not isinstance(base, str):
        return None
    if base.lower() in short_names():
        return SHORT_NAME_REPOSITORIES.get(base.lower())
    return base if is_model_name(base) else None


# -- what save() records for the card ------------------------------------------------------------------------
def check_card_fields(card: Mapping[str, Any] | None) -> dict[str, Any]:
    """The user's card fields (``save(dir, card={...})``), checked: front-matter keys of the hub's model card
    (``language``, ``license``, ``tags``, ``datasets``, ``base_model``, ...) with JSON values, plus ``model_name``
    (the title) and ``description`` (a paragraph)."""
    if card is None:
        return {}
    if not isinstance(card, Mapping):
        raise ConfigError(f"card= must be a dict of model-card fields (e.g. {{'language': 'en'}}), got "
                          f"{type(card).__name__}")
    fields = {}
    for key, value in card.items():
        if not isinstance(key, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", key):
            raise ConfigError(f"card field {key!r} is not a front-matter key (letters, digits, '_', '-')")
        if key in COMPUTED_FIELDS:
            raise ConfigError(f"card field {key!r} is written by promptlearn from the folder (it must stay true); "
                              "leave it out")
        if key in ("tags", "language", "datasets") and isinstance(value, str):
            value = [value]
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ConfigError(f"card field {key!r} must hold text, numbers, lists or dicts, got "
                              f"{type(value).__name__}") from None
        if key in ("tags", "language", "datasets") and not all(isinstance(v, str) for v in value):
            raise ConfigError(f"card field {key!r} must be a string or a list of strings")
        if key in BODY_FIELDS + ("license", "base_model") and not isinstance(value, str):
            raise ConfigError(f"card field {key!r} must be a string")
        if key == "base_model" and (not is_model_name(value) or value.lower() in short_names()):
            raise ConfigError(f"card field 'base_model' is {value!r}, not a hub repository id ('owner/name')")
        fields[key] = value
    return fields


def versions(tuning_source: str) -> dict[str, str]:
    """The versions of promptlearn, transformers, torch (and peft for the PEFT methods) in this process."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    found = {"promptlearn": __version__}
    for package in ("transformers", "torch") + (("peft",) if tuning_source in ("lora", "adapter") else ()):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def card_record(classifier: Any, card: Mapping[str, Any] | None, module: Any) -> dict[str, Any]:
    """``config.json``'s ``card`` entry for a PromptClassifier being saved: the user's fields (on top of those
    of the folder it was loaded from), the versions, the training data and the trained parameters."""
    previous = getattr(classifier, "card_", None) or {}
    fields = {**previous.get("fields", {}), **check_card_fields(card)}
    training = dict(getattr(classifier, "training_data_", None) or previous.get("training") or {})
    if module is not None:
        training["trained_parameters"] = module.n_parameters()
    elif classifier._is_fitted():
        model = classifier.model_.model
        training["trained_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        training["model_parameters"] = sum(p.numel() for p in model.parameters())
    return {"fields": fields, "versions": versions(classifier.tuning_config_.source), "training": training or None}


def restored_record(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``card`` entry of a loaded folder's config, when it is well formed (kept by the loaded classifier so
    that saving or pushing it again keeps its card fields and training size); None otherwise. It never changes
    what loads."""
    record = config.get("card")
    if not isinstance(record, dict):
        return None
    try:
        fields = check_card_fields(record.get("fields") or {})
    except ConfigError:
        return None
    training = record.get("training")
    if not isinstance(training, dict) or not all(isinstance(v, (int, dict)) for v in training.values()):
        training = None
    return {"fields": fields, "training": training}


# -- the folder's content and its evaluations ------------------------------------------------------------------
def _artifact_files(directory: Path) -> list[Path]:
    """The folder's regular files (no links followed), but the card and the figures."""
    files = []
    for current, dirs, names in os.walk(directory, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            path = Path(current) / name
            if path.is_file() and not path.is_symlink() and path.relative_to(directory).as_posix() not in _NOT_ARTIFACT:
                files.append(path)
    return files


def content_fingerprint(directory: str | os.PathLike) -> str:
    """A SHA-256 of what the folder holds (what loads): every file but the card and the figures, with
    ``config.json`` read without its ``card`` entry (card fields and versions do not change predictions)."""
    directory = Path(directory)
    digest = hashlib.sha256()
    for path in _artifact_files(directory):
        relative = path.relative_to(directory).as_posix()
        digest.update(relative.encode() + b"\0")
        if relative == "config.json":
            config = read_config(directory)
            config.pop("card", None)
            digest.update(json.dumps(config, sort_keys=True, ensure_ascii=False).encode())
        else:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def read_config(directory: Path) -> dict[str, Any]:
    """A promptlearn folder's ``config.json`` as a dict (any format: classifier, ensemble, ...), or one line."""
    path = directory / "config.json"
    if path.is_symlink():
        raise SavedFolderError(f"{path} is a link; a saved folder's config.json must be a plain file in it")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SavedFolderError(f"no saved classifier at {directory} (missing config.json)") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SavedFolderError(f"cannot read {path} ({str(exc).splitlines()[0]}); the folder is damaged") from None
    if not isinstance(config, dict) or not str(config.get("format", "")).startswith("promptlearn."):
        raise SavedFolderError(f"{path} is not a saved promptlearn classifier")
    return config


def evaluations(directory: str | os.PathLike, fingerprint: str | None = None) -> list[dict[str, Any]]:
    """The figures recorded for the folder's present content (``fingerprint``: computed when not given); figures
    of other weights, or a damaged file, give none."""
    path = Path(directory) / EVAL_FILE
    if not path.is_file() or path.is_symlink():
        return []
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return []
    if not isinstance(recorded, dict) or recorded.get("format") != EVAL_FORMAT:
        return []
    if recorded.get("fingerprint") != (fingerprint or content_fingerprint(directory)):
        return []
    results = recorded.get("results")
    return [r for r in results if _valid_result(r)] if isinstance(results, list) else []


def _valid_result(result: Any) -> bool:
    return (isinstance(result, dict) and isinstance(result.get("dataset"), str)
            and all(isinstance(result.get(k), (int, float)) and not isinstance(result.get(k), bool)
                    for k in ("accuracy", "macro_f1", "n_examples")))


def _write_evaluations(directory: Path, results: list[dict[str, Any]], fingerprint: str) -> None:
    text = json.dumps({"format": EVAL_FORMAT, "version": 1, "fingerprint": fingerprint, "results": results},
                      indent=2, ensure_ascii=False)
    atomic_write_text(directory / EVAL_FILE, text + "\n")


def _dataset_name(data: Any) -> str:
    """A dataset's name for the card: a task name or ``hf:`` spec as it is; a local path by its last two parts
    (never the user's full path)."""
    text = str(data or "").strip()
    if not text:
        return "unnamed"
    if os.path.exists(text) or os.sep in text and not text.startswith("hf:"):
        parts = Path(os.path.abspath(text)).parts
        return "/".join(parts[-2:])
    return text


def record_evaluation(model_dir: str | os.PathLike, report: Mapping[str, Any], *, dataset: str | None = None,
                      split: str | None = None) -> Path:
    """Store an evaluation's figures in a saved folder (``eval_results.json``) and regenerate its card.

    ``report``: :func:`promptlearn.core.metrics.classification_report`'s dict (``accuracy``, ``macro_f1``,
    ``per_class``), optionally with ``n_examples``, ``data``, ``split``, ``variant`` and ``variants``, as
    ``promptlearn evaluate`` reports them. ``dataset`` names the data on the card (default: ``report['data']``,
    a local path shortened to its last two parts); one result is kept per dataset and split. The figures are tied
    to the folder's content: a later save of other weights drops them. Returns the card's path (the figures' for
    a folder without a card: a probe or fine-tuned baseline)."""
    directory = Path(model_dir)
    read_config(directory)
    for key in ("accuracy", "macro_f1"):
        value = report.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise PromptlearnError(f"the evaluation report's {key!r} is {value!r}, not a number in [0, 1]; pass "
                                   "classification_report()'s dict")
    per_class = report.get("per_class") if isinstance(report.get("per_class"), Mapping) else {}
    n_examples = report.get("n_examples", sum(int(row.get("support", 0)) for row in per_class.values()))
    result = {"dataset": dataset or _dataset_name(report.get("data")),
              "split": split if split is not None else report.get("split"),
              "n_examples": int(n_examples), "accuracy": float(report["accuracy"]),
              "macro_f1": float(report["macro_f1"]), "variant": report.get("variant"),
              "f1_per_class": {str(c): float(row["f1"]) for c, row in per_class.items() if "f1" in row},
              "evaluated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")}
    variants = report.get("variants")
    if isinstance(variants, Mapping) and len(variants) > 1:
        result["variants"] = {str(name): {k: float(v[k]) for k in ("accuracy", "macro_f1")}
                              for name, v in variants.items() if isinstance(v, Mapping) and "accuracy" in v}
    fingerprint = content_fingerprint(directory)
    kept = [r for r in evaluations(directory, fingerprint)
            if (r.get("dataset"), r.get("split")) != (result["dataset"], result["split"])]
    _write_evaluations(directory, [*kept, result], fingerprint)
    if read_config(directory).get("format") not in CARD_FORMATS:
        return directory / EVAL_FILE
    return write_card(directory)


# -- the card ----------------------------------------------------------------------------------------------
def _size(n_bytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes} bytes"


def _cell(text: Any) -> str:
    """Text for a Markdown table cell: one line, ``|`` escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _fenced(text: str, language: str = "") -> str:
    """``text`` in a code fence longer than any run of backticks in it (the template is user text)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def _front_matter(fields: Mapping[str, Any], title: str, results: list[dict[str, Any]], base_models: list[str],
                  tags: list[str]) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    tags = ["promptlearn", "prompt-based", "few-shot", *tags]
    tags += [t for t in fields.get("tags", []) if t not in tags]
    data = {key: value for key, value in fields.items() if key not in BODY_FIELDS and key != "tags"}
    if "base_model" not in data and base_models:
        data["base_model"] = base_models[0] if len(base_models) == 1 else base_models
    eval_results = []
    for r in results:
        for metric, name in (("accuracy", "accuracy"), ("macro_f1", "f1")):
            eval_results.append(EvalResult(task_type="text-classification", dataset_type=r["dataset"],
                                           dataset_name=r["dataset"], dataset_split=r.get("split") or None,
                                           metric_type=name, metric_value=round(r[metric], 4),
                                           metric_name="macro-F1" if name == "f1" else "accuracy",
                                           metric_args={"average": "macro"} if name == "f1" else None))
    card_data = ModelCardData(library_name="promptlearn", pipeline_tag="text-classification", tags=tags,
                              metrics=["accuracy", "f1"] if results else None,
                              model_name=title if results else None, eval_results=eval_results or None, **data)
    return card_data.to_yaml().rstrip("\n") + "\n"


def _tuning(config: Mapping[str, Any]) -> dict[str, Any]:
    params = config.get("params") if isinstance(config.get("params"), dict) else {}
    return params.get("tuning") if isinstance(params.get("tuning"), dict) else {"source": "manual"}


def _tuning_tags(config: Mapping[str, Any]) -> list[str]:
    source = str(_tuning(config).get("source", "manual"))
    return [] if source == "manual" else [f"{source}-prompt" if source in ("soft", "deep") else source]


def _tuning_lines(config: Mapping[str, Any], training: Mapping[str, Any], directory: Path) -> list[str]:
    tuning = _tuning(config)
    source = str(tuning.get("source", "manual"))
    prompt = config.get("prompt") if isinstance(config.get("prompt"), dict) else None
    options = ", ".join(f"{k}={v!r}" for k, v in tuning.items() if k != "source" and v is not None)
    lines = [f"- **Tuning method:** `{source}` — {_TUNING_NAMES.get(source, source)}"
             + (f" ({_cell(options)})" if options else "")]
    trained = training.get("trained_parameters")
    if prompt is not None:
        name = str(prompt.get("file", ""))
        file = directory / name
        inside = bool(re.fullmatch(r"[\w.-]+", name)) and not file.is_symlink() and file.is_file()
        size = file.stat().st_size if inside else None
        lines.append(f"- **Size:** {trained if trained is not None else prompt.get('parameters')} trainable "
                     f"parameters; the folder holds only them ({_size(size) if size is not None else '?'}, "
                     f"`{prompt.get('file')}`) and names its base model")
    elif (directory / "model").is_dir():
        size = sum(p.stat().st_size for p in _artifact_files(directory / "model"))
        of = (f" of {training['model_parameters']}" if training.get("model_parameters") else "")
        lines.append(f"- **Size:** the whole model is saved ({_size(size)}, `model/`)"
                     + (f"; {trained}{of} parameters were trained" if trained is not None else ""))
    else:
        lines.append("- **Size:** nothing trained: the base model as published (zero-shot or in-context)")
    return lines


def _base_text(base: Any, hub_id: Any) -> str:
    if isinstance(hub_id, str):
        short = isinstance(base, str) and base.lower() in short_names()
        return (f"the language model [`{hub_id}`](https://huggingface.co/{hub_id})"
                + (f" (promptlearn's short name `{base}`)" if short else ""))
    if isinstance(base, str) and is_model_name(base):
        return f"the language model `{base}` (promptlearn's short name)"
    return "a local language model (named by a path, not on the hub: pass `model=` when loading)"


def _classifier_sections(directory: Path, config: Mapping[str, Any], fields: Mapping[str, Any],
                         record: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(the card's body after the title, the base models' hub ids) of a PromptClassifier folder."""
    training = record.get("training") if isinstance(record.get("training"), dict) else {}
    versions_used = record.get("versions") if isinstance(record.get("versions"), dict) else {}
    base = config.get("base_model")
    params = config.get("params") if isinstance(config.get("params"), dict) else {}
    verbalizer = config.get("verbalizer") if isinstance(config.get("verbalizer"), dict) else {}
    template = config.get("template") if isinstance(config.get("template"), dict) else {}
    hub_id = fields.get("base_model") or hub_base_model(base)
    lines = [(f"A prompt-based text classifier made with [promptlearn](https://pypi.org/project/promptlearn/) "
              f"over {_base_text(base, hub_id)}: it fills the template's `[MASK]` with each class's label "
              "words and reports the most probable class."), "", "## Prompt", "",
             "Template" + (f" (`{template['name']}`)" if template.get("name") not in (None, "inline") else "") + ":",
             "", _fenced(str(template.get("source", ""))), "", "Verbalizer (class → label words):", "",
             "| class | label words |", "| --- | --- |"]
    lines += [f"| {_cell(c)} | {_cell(', '.join(map(str, words)) if isinstance(words, list) else words)} |"
              for c, words in verbalizer.items()]
    scoring = params.get("scoring") if isinstance(params.get("scoring"), dict) else {}
    demos = params.get("demonstrations") if isinstance(params.get("demonstrations"), dict) else {}
    lines += ["", f"Contextual calibration: {'on' if params.get('calibrate') else 'off'}"
              + (f"; {demos.get('k')} demonstration(s) per class ({demos.get('selection')})" if demos.get("k")
                 else "") + (f"; aggregation: {scoring['aggregation']}" if scoring.get("aggregation") else ""),
              "", "## Training", ""]
    lines += _tuning_lines(config, training, directory)
    if training.get("examples") is not None:
        per_class = training.get("per_class") or {}
        counts = ", ".join(f"{_cell(c)} {n}" for c, n in per_class.items())
        lines.append(f"- **Training data:** {training['examples']} labelled examples"
                     + (f" ({counts})" if counts else ""))
    else:
        lines.append("- **Training data:** none recorded (not trained by this save's classifier)")
    lines.append(f"- **Seed:** {params.get('seed')}")
    if versions_used:
        lines.append("- **Versions:** " + ", ".join(f"{k} {v}" for k, v in versions_used.items()))
    return lines, [hub_id] if isinstance(hub_id, str) else []


def _ensemble_sections(directory: Path, config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(the card's body after the title, the members' base models' hub ids) of a PromptEnsemble folder: a table
    of the members (``members/<i>/config.json``; a member folder elsewhere is not read)."""
    members = config.get("members") if isinstance(config.get("members"), list) else []
    weights = config.get("weights") if isinstance(config.get("weights"), list) else None
    bases: list[str] = []
    rows = ["| member | kind | base model | template | tuning | weight |", "| --- | --- | --- | --- | --- | --- |"]
    for position, member in enumerate(members):
        folder = member.get("folder") if isinstance(member, dict) else None
        kind = member.get("class", "?") if isinstance(member, dict) else "?"
        if not (isinstance(folder, str) and re.fullmatch(r"members/\d+", folder)):
            continue
        try:
            member_config = read_config(directory / folder)
        except SavedFolderError:
            member_config = {}
        base = member_config.get("base_model") or member_config.get("model")
        hub_id = hub_base_model(base)
        if hub_id and hub_id not in bases:
            bases.append(hub_id)
        template = member_config.get("template") if isinstance(member_config.get("template"), dict) else {}
        weight = weights[position] if weights and position < len(weights) else None
        rows.append(f"| {position} | {_cell(kind)} | {_cell(hub_id or ('a local model' if base else '—'))} | "
                    f"`{_cell(template.get('source', '—'))}` | {_cell(_tuning(member_config).get('source', '—'))} | "
                    f"{f'{weight:.3f}' if isinstance(weight, (int, float)) else '—'} |")
    params = config.get("params") if isinstance(config.get("params"), dict) else {}
    classes = config.get("classes") if isinstance(config.get("classes"), list) else []
    lines = [(f"An ensemble of {len(members)} classifiers made with "
              "[promptlearn](https://pypi.org/project/promptlearn/) (PET-style: the members' class probabilities "
              f"combined by `{_cell(params.get('combine', 'mean'))}`)."), "",
             "Classes: " + ", ".join(_cell(c) for c in classes), "", "## Members", "", *rows]
    return lines, bases


def build_card(directory: str | os.PathLike, *, location: str | None = None) -> str:
    """The model card of a saved PromptClassifier (or PromptEnsemble) folder, ``README.md``'s text. ``location``:
    what the usage snippet loads (a hub repository id, or a folder; default: the folder's name)."""
    directory = Path(directory)
    config = read_config(directory)
    record = config.get("card") if isinstance(config.get("card"), dict) else {}
    fields = record.get("fields") if isinstance(record.get("fields"), dict) else {}
    results = evaluations(directory)
    location = location or directory.name
    title = str(fields.get("model_name") or location.rstrip("/").rsplit("/", 1)[-1])
    ensemble = config.get("format") == ENSEMBLE_FORMAT
    if ensemble:
        body, bases = _ensemble_sections(directory, config)
        tags, name, classes = ["ensemble"], "PromptEnsemble", config.get("classes") or []
    else:
        body, bases = _classifier_sections(directory, config, fields, record)
        tags, name = _tuning_tags(config), "PromptClassifier"
        classes = list(config.get("verbalizer") or {}) if isinstance(config.get("verbalizer"), dict) else []
    lines = [f"---\n{_front_matter(fields, title, results, bases, tags)}---", "", f"# {_cell(title)}", ""]
    if fields.get("description"):
        lines += [str(fields["description"]), ""]
    lines += [*body, "", "## Evaluation", ""]
    if results:
        lines += ["| dataset | split | examples | accuracy | macro-F1 | predictions |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in results:
            others = "; ".join(f"{n}: {100 * v['accuracy']:.2f} % / {100 * v['macro_f1']:.2f} %"
                               for n, v in (r.get("variants") or {}).items() if n != r.get("variant"))
            lines.append(f"| {_cell(r['dataset'])} | {_cell(r.get('split') or '')} | {r['n_examples']} | "
                         f"{100 * r['accuracy']:.2f} % | {100 * r['macro_f1']:.2f} % | "
                         f"{_cell(r.get('variant') or '')}{f' (also {_cell(others)})' if others else ''} |")
        dates = ", ".join(sorted({str(r.get("evaluated", "?")) for r in results}))
        lines += ["", f"Recorded by `promptlearn evaluate --update-card` / `record_evaluation` on {dates}."]
    else:
        lines.append("Not evaluated yet (`promptlearn evaluate --model-dir FOLDER --update-card` records figures "
                     "here).")
    loader = (f"from promptlearn import {name}\n\nclf = {name}.from_pretrained({json.dumps(location)})" if not ensemble
              else f"from promptlearn import {name}\nfrom promptlearn.estimators.hub import from_pretrained\n\n"
                   f"clf = from_pretrained({name}, {json.dumps(location)})")
    shown = ", ".join(" ".join(str(c).split()) for c in classes)
    lines += ["", "## Usage", "", _fenced("pip install promptlearn", "bash"), "",
              _fenced(f'{loader}\nprint(clf.predict(["A gorgeous, moving film."]))  # one of: {shown}\n'
                      + 'print(clf.predict_proba(["A dull mess."]))  # columns: clf.classes_', "python"), "",
              ("Loading runs no code from the repository and reads nothing outside it; this card is not read when "
               "loading."), ""]
    return "\n".join(lines)


def write_card(directory: str | os.PathLike, *, location: str | None = None,
               keep_evaluations_from: str | os.PathLike | None = None) -> Path:
    """Write the folder's card (``README.md``) atomically. ``keep_evaluations_from``: a previous copy of the
    folder whose recorded figures are kept when they were measured on the same content."""
    directory = Path(directory)
    previous = Path(keep_evaluations_from) if keep_evaluations_from is not None else None
    if previous is not None and (previous / EVAL_FILE).is_file() and previous.resolve() != directory.resolve():
        fingerprint = content_fingerprint(directory)
        kept = evaluations(previous, fingerprint)
        if kept:
            _write_evaluations(directory, kept, fingerprint)
    return atomic_write_text(directory / CARD_FILE, build_card(directory, location=location))
