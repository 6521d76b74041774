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
from .saved_folders import open_saved, recorded_model_name

logger = logging.getLogger(__name__)

FORMAT = "promptlearn.PromptClassifier"
FORMAT_VERSION = 1
PROMPT_FILE = "prompt.safetensors"  # a continuous prompt's parameters (sources other than manual)
# config.json's keys and their JSON types (checked on load: a damaged file gives one line, not a traceback)
SAVED_SCHEMA = {"model": (str, type(None)), "base_model": (str, type(None)), "template": (dict,),
                 "verbalizer": (dict,), "params": (dict,), "prompt": (dict, type(None))}


def save_classifier(classifier: Any, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """``classifier.save(directory)``: see :meth:`PromptClassifier.save <promptlearn.PromptClassifier.save>`."""
    directory = Path(directory)
    params = {k: v for k, v in classifier.get_params(deep=False).items()
              if k not in ("model", "template", "verbalizer", "tokenizer", "trust_remote_code")}
    params["content_free"] = list(content_free_inputs(params["content_free"]))  # one string: one input
    params["shortenable"] = list(params["shortenable"]) if params["shortenable"] is not None else None
    params["dtype"] = dtype_name(params["dtype"])  # a torch.dtype is saved by its name
    params["demo_pool"] = None
    if classifier._pool() is not None:  # the pool is data: saved in config.json, so load() draws the same demonstrations
        from ..pipeline.demonstrations import pool_to_json, read_pool

        params["demo_pool"] = pool_to_json(*read_pool(classifier._pool(), classifier.template_, classifier.verbalizer_),
                                           classifier.verbalizer_)
    if not isinstance(params["demo_encoder"], (str, os.PathLike, type(None))):
        logger.warning("demo_encoder is a Python object and is not saved; pass demo_encoder= to load()")
        params["demo_encoder"] = None
    elif params["demo_encoder"] is not None:
        params["demo_encoder"] = recorded_model_name(params["demo_encoder"])
    module = classifier.prompt_
    if module is not None:  # a continuous prompt: its parameters and options, never the base model's weights
        params["source_options"] = {k: v for k, v in classifier._source_config().to_dict().items() if k != "source"}
        if not isinstance(classifier.model, (str, os.PathLike)):
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
        config["prompt"] = {"source": classifier.source, "file": PROMPT_FILE, "parameters": module.n_parameters()}
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        if module is not None:
            from safetensors.torch import save_file

            save_file(module.prompt_state(), str(tmp / PROMPT_FILE), metadata={"source": classifier.source})
        elif config["model"] is None:
            loaded = classifier.model_
            save_model_folder(loaded.model, loaded.tokenizer, tmp / "model")
        atomic_write_text(tmp / "config.json", json.dumps(config, indent=2, ensure_ascii=False) + "\n")
    return directory


def load_classifier(cls: type, directory: str | os.PathLike, **overrides: Any) -> Any:
    """``cls.load(directory, **overrides)``: see :meth:`PromptClassifier.load <promptlearn.PromptClassifier.load>`."""
    folder = open_saved(directory, fmt=FORMAT, version=FORMAT_VERSION, what="PromptClassifier",
                        schema=SAVED_SCHEMA, required=("model", "template", "verbalizer", "params"))
    config = folder.config
    if "source" not in config["template"]:
        raise folder.fail("'template'", "lacks its 'source'")
    source = folder.require(config["template"]["source"], "template.source", (str,))
    name = folder.require(config["template"].get("name"), "template.name", (str, type(None)))
    params = folder.params(cls, exclude=("model", "template", "verbalizer", "tokenizer"))
    for key, types in (("demo_pool", (dict, type(None))), ("source_options", (dict, type(None))),
                       ("demo_encoder", (str, type(None)))):
        folder.require(params.get(key), f"params.{key}", types)
    for key in ("content_free", "shortenable"):
        if params.get(key) is not None:
            folder.string_list(params[key], f"params.{key}")
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
    if isinstance(params.get("demo_encoder"), str) and "demo_encoder" not in overrides:
        params["demo_encoder"] = folder.model_name(params["demo_encoder"], "params.demo_encoder",
                                                   parameter="demo_encoder")
    params.update(overrides)
    with folder.building():
        Verbalizer.load(config["verbalizer"], aggregation=params.get("aggregation"))  # checked now, not later
        template = Template(source, name=name, shortenable=params.get("shortenable"))
        classifier = cls(model=model, template=template, verbalizer=config["verbalizer"], **params)
    if params.get("source", "manual") != "manual":
        from safetensors.torch import load_file

        if not (folder.directory / PROMPT_FILE).is_file():
            raise PromptlearnError(f"{folder.directory} holds a {params['source']!r} prompt but not its "
                                   f"parameters ({PROMPT_FILE}); save it again")
        path = folder.inside(PROMPT_FILE, f"the prompt's parameters ({PROMPT_FILE})")
        try:
            classifier._pending_prompt_state = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types for a damaged file
            raise folder.fail(f"the prompt's parameters ({PROMPT_FILE})",
                              f"cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
                              ) from None
    return classifier
