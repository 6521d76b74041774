"""A PromptClassifier's saved folder: ``config.json`` (format, template, verbalizer, parameters), the trained
model's safetensors weights or a continuous prompt's parameters (``prompt.safetensors``), written atomically and
read back through :mod:`.saved_folders` (no code runs, nothing outside the folder is read)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..core.calibration import content_free_inputs
from ..core.errors import PromptlearnError
from ..core.template import Template
from ..core.verbalizer import Verbalizer
from ..io.artifacts import atomic_directory, atomic_write_text, save_model_folder
from ..models.loader import dtype_name
from .model_card import card_record, restored_record, write_card
from .options import GROUPS, from_flat, is_flat, is_option, with_options
from .saved_folders import open_saved, recorded_model_name

logger = logging.getLogger(__name__)

FORMAT = "promptlearn.PromptClassifier"
#: 2: the grouped parameters (scoring, training, demonstrations, tuning); 1 (flat parameters) still loads.
FORMAT_VERSION = 2
PROMPT_FILE = "prompt.safetensors"  # a continuous prompt's parameters (tuning methods other than manual)
# config.json's keys and their JSON types (checked on load: a damaged file gives one line, not a traceback)
SAVED_SCHEMA = {"model": (str, type(None)), "base_model": (str, type(None)), "template": (dict,),
                "verbalizer": (dict,), "params": (dict,), "prompt": (dict, type(None))}
_GROUP_NAMES = (*GROUPS, "tuning")


def save_classifier(classifier: Any, directory: str | os.PathLike, *, overwrite: bool = False,
                    card: dict[str, Any] | None = None, location: str | None = None) -> Path:
    """``classifier.save(directory)``: see :meth:`PromptClassifier.save <promptlearn.PromptClassifier.save>`.
    ``location``: what the card's usage snippet loads (default: the folder as given, or its name if absolute)."""
    directory = Path(directory)
    params = {k: v for k, v in classifier.get_params(deep=False).items()
              if k not in ("model", "template", "verbalizer", "tokenizer", "trust_remote_code", *_GROUP_NAMES)}
    params["dtype"] = dtype_name(params["dtype"])  # a torch.dtype is saved by its name
    scoring = classifier.scoring.get_params()
    scoring["content_free"] = list(content_free_inputs(scoring["content_free"]))  # one string: one input
    scoring["shortenable"] = list(scoring["shortenable"]) if scoring["shortenable"] is not None else None
    demonstrations = classifier.demonstrations.get_params()
    demonstrations["pool"] = None
    if classifier._pool() is not None:  # the pool is data: saved in config.json, so load() draws the same demonstrations
        from ..pipeline.demonstrations import pool_to_json, read_pool

        demonstrations["pool"] = pool_to_json(*read_pool(classifier._pool(), classifier.template_,
                                                         classifier.verbalizer_), classifier.verbalizer_)
    encoder = demonstrations["encoder"]
    if not isinstance(encoder, (str, os.PathLike, type(None))):
        logger.warning("the demonstrations' encoder is a Python object and is not saved; pass "
                       "demonstrations=DemonstrationOptions(encoder=...) to load()")
        demonstrations["encoder"] = None
    elif encoder is not None:
        demonstrations["encoder"] = recorded_model_name(encoder)
    tuning = classifier.tuning_config_
    params.update(scoring=scoring, training=classifier.training.get_params(), demonstrations=demonstrations,
                  tuning=tuning.to_dict())
    module = classifier.prompt_
    if module is not None and not isinstance(classifier.model, (str, os.PathLike)):
        logger.warning("the base model is saved by its name only (%r); pass model= (and tokenizer=) to load() "
                       "if that name cannot be loaded", classifier.model_.name)
    config = {
        "format": FORMAT, "version": FORMAT_VERSION,
        "model": (recorded_model_name(classifier.model) if isinstance(classifier.model, (str, os.PathLike))
                  and not classifier._is_fitted() else None),
        "base_model": (recorded_model_name(classifier.model) if isinstance(classifier.model, (str, os.PathLike))
                       else classifier.model_.name),
        "template": {"source": classifier.template_.source, "name": classifier.template_.name},
        "verbalizer": classifier.verbalizer_.to_dict(),
        "params": params,
    }
    if module is not None:
        config["model"] = config["base_model"]
        config["prompt"] = {"source": tuning.source, "file": PROMPT_FILE, "parameters": module.n_parameters()}
    config["card"] = card_record(classifier, card, module)  # the model card's data: never changes what loads
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        if module is not None:
            from safetensors.torch import save_file

            save_file(module.prompt_state(), str(tmp / PROMPT_FILE), metadata={"source": tuning.source})
        elif config["model"] is None:
            loaded = classifier.model_
            save_model_folder(loaded.model, loaded.tokenizer, tmp / "model")
        atomic_write_text(tmp / "config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")
        write_card(tmp, location=location or (directory.name if directory.is_absolute() else directory.as_posix()),
                   keep_evaluations_from=directory if overwrite and directory.is_dir() else None)
    classifier.card_ = {"fields": config["card"]["fields"], "training": config["card"]["training"]}  # for later saves
    return directory


def _grouped(folder: Any, cls: type) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(top-level parameters, the groups' options as dicts) of a saved folder, format 2 or 1 (flat)."""
    raw = folder.require(folder.config.get("params"), "'params'", (dict,))
    if folder.config.get("version", 0) >= 2:
        groups = {name: dict(folder.require(raw.get(name, {}), f"params.{name}", (dict,))) for name in _GROUP_NAMES}
        top = folder.params(cls, exclude=("model", "template", "verbalizer", "tokenizer", *_GROUP_NAMES))
        return top, groups
    # format 1: the flat keywords of earlier releases
    flat = {k: v for k, v in raw.items() if is_flat(k)}
    top = folder.params(cls, exclude=("model", "template", "verbalizer", "tokenizer", *flat),
                        values={k: v for k, v in raw.items() if k not in flat})
    source = folder.require(flat.get("source", "manual"), "params.source", (str,))
    folder.require(flat.get("source_options"), "params.source_options", (dict, type(None)))
    if source != "manual":  # format 1 saved trainable / mlm_weight for every method; only manual has them
        flat.pop("trainable", None)
        flat.pop("mlm_weight", None)
    with folder.building():
        grouped = from_flat(flat)
    groups = {name: grouped[name].get_params() if name in grouped else {} for name in GROUPS}
    groups["tuning"] = grouped["tuning"].to_dict() if "tuning" in grouped else {"source": "manual"}
    return top, groups


def load_classifier(cls: type, directory: str | os.PathLike, **overrides: Any) -> Any:
    """``cls.load(directory, **overrides)``: see :meth:`PromptClassifier.load <promptlearn.PromptClassifier.load>`."""
    from ..tuning import tuning_config

    folder = open_saved(directory, fmt=FORMAT, version=FORMAT_VERSION, what="PromptClassifier",
                        schema=SAVED_SCHEMA, required=("model", "template", "verbalizer", "params"))
    config = folder.config
    if "source" not in config["template"]:
        raise folder.fail("'template'", "lacks its 'source'")
    source = folder.require(config["template"]["source"], "template.source", (str,))
    name = folder.require(config["template"].get("name"), "template.name", (str, type(None)))
    params, groups = _grouped(folder, cls)
    scoring, demonstrations = groups["scoring"], groups["demonstrations"]
    folder.require(demonstrations.get("pool"), "params.demonstrations.pool", (dict, type(None)))
    folder.require(demonstrations.get("encoder"), "params.demonstrations.encoder", (str, type(None)))
    for key in ("content_free", "shortenable"):
        if scoring.get(key) is not None:
            folder.string_list(scoring[key], f"params.scoring.{key}")
    if isinstance(scoring.get("content_free"), list):
        scoring["content_free"] = tuple(scoring["content_free"])  # as the default holds it
    groups["training"].pop("checkpoint_dir", None)  # a place to write to is the caller's choice, never a folder's
    if "gguf_file" not in overrides:
        params["gguf_file"] = folder.file_name(params.get("gguf_file"), "params.gguf_file")
    model = overrides.pop("model", None)
    trust = overrides.get("trust_remote_code", False) is True
    if model is None:
        if config["model"] is None:  # the trained weights are in the folder (safetensors; no GGUF file)
            model = folder.model_dir("model", "the model folder", trust_remote_code=trust)
            params["gguf_file"] = None
        else:
            model = folder.model_name(config["model"], "'model'")
    if isinstance(demonstrations.get("encoder"), str):
        demonstrations["encoder"] = folder.model_name(demonstrations["encoder"], "params.demonstrations.encoder",
                                                      parameter="demonstrations")
    with folder.building():
        built = {name: GROUPS[name](**groups[name]) for name in GROUPS}
        for group in built.values():
            group.check(fitting=True)
        tuning_options = dict(groups["tuning"])
        built["tuning"] = tuning_config(tuning_options.pop("source", "manual"), tuning_options)
        built.update({k: v for k, v in overrides.items() if k in built})  # a whole group given
        # one option on top of the saved group: scoring__batch_size=, or the flat batch_size= as the CLI and
        # ensembles spell it (no warning here)
        built.update(with_options(built, {k: v for k, v in overrides.items() if is_option(k)}))
        params.update({k: v for k, v in overrides.items() if k not in built and not is_option(k)})
        Verbalizer.load(config["verbalizer"], aggregation=built["scoring"].aggregation)  # checked now, not later
        template = Template(source, name=name, shortenable=built["scoring"].shortenable)
        classifier = cls(model=model, template=template, verbalizer=config["verbalizer"], **params, **built)
    classifier.card_ = restored_record(config)  # the card's fields and training size, for a later save or push
    tuning = classifier.tuning_config_
    if tuning.source != "manual":
        from safetensors.torch import load_file

        if not (folder.directory / PROMPT_FILE).is_file():
            raise PromptlearnError(f"{folder.directory} holds a {tuning.source!r} prompt but not its "
                                   f"parameters ({PROMPT_FILE}); save it again")
        path = folder.inside(PROMPT_FILE, f"the prompt's parameters ({PROMPT_FILE})")
        try:
            classifier._pending_prompt_state = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types for a damaged file
            raise folder.fail(f"the prompt's parameters ({PROMPT_FILE})",
                              f"cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                              ) from None
    return classifier
