"""Atomic writes: a file or a folder appears complete under its final name, or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, TextIO

from .errors import PromptlearnError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def recover_directory(target: str | os.PathLike) -> None:
    """Put back a folder whose replacement was interrupted between its two renames (see atomic_directory)."""
    target = Path(target)
    if target.exists():
        return
    backups = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if backups:
        os.replace(backups[-1], target)


def atomic_write(target: str | os.PathLike, write: Callable[[TextIO], Any]) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``target``, then rename it into place."""
    target = Path(target)
    if target.is_dir():
        raise PromptlearnError(f"cannot write {target}: it is a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.chmod(tmp, 0o666 & ~_umask())  # the permissions of a plain open(), not mkstemp's private 0600
    except OSError as exc:
        raise PromptlearnError(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            write(handle)
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise PromptlearnError(f"cannot write {target}: {exc.strerror or exc}") from None
        raise
    return target


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``target`` atomically."""
    return atomic_write(target, lambda handle: handle.write(text))


class atomic_directory:
    """Context manager: build a folder under a temporary name, then rename it into place.

    Replacing an existing folder takes two renames (old away, new in); if the process dies between
    them, :func:`recover_directory` (called by the next use) puts the old folder back.
    """

    def __init__(self, target: str | os.PathLike, *, overwrite: bool = False) -> None:
        self.target = Path(target)
        self.overwrite = overwrite

    def __enter__(self) -> Path:
        recover_directory(self.target)
        if self.target.exists() and not self.overwrite:
            raise PromptlearnError(f"{self.target} already exists; choose another folder or pass overwrite=True")
        if self.target.exists() and not self.target.is_dir():
            raise PromptlearnError(f"{self.target} exists and is not a folder")
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.target.name}.", dir=self.target.parent))
            os.chmod(self.tmp, 0o777 & ~_umask())  # not mkdtemp's private 0700
        except OSError as exc:
            raise PromptlearnError(f"cannot create {self.target}: {exc.strerror or exc}") from None
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            os.replace(self.target, old)
            os.replace(self.tmp, self.target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.target)


def save_model_folder(model: Any, tokenizer: Any, folder: str | os.PathLike) -> None:
    """A model (safetensors weights) and its tokenizer, as a folder ``from_pretrained`` can load.

    A model read from a GGUF file (e.g. the packaged SmolLM2) holds plain float weights -- transformers
    dequantizes GGUF when loading -- but stays marked as quantized, which ``save_pretrained`` refuses; it is
    saved as the ordinary float model it is."""
    quantizer = getattr(model, "hf_quantizer", None)
    method = getattr(getattr(quantizer, "quantization_config", None), "quant_method", None)
    if quantizer is None or str(getattr(method, "value", method)).lower() != "gguf":
        model.save_pretrained(folder, safe_serialization=True)
    else:
        config = model.config
        had_config = "quantization_config" in config.__dict__
        saved_config = config.__dict__.pop("quantization_config", None)
        model.hf_quantizer = None
        try:
            model.save_pretrained(folder, safe_serialization=True)
        finally:
            model.hf_quantizer = quantizer
            if had_config:
                config.quantization_config = saved_config
    tokenizer.save_pretrained(folder)


def read_config(directory: str | os.PathLike, *, fmt: str, version: int, what: str,
                required: tuple[str, ...]) -> dict[str, Any]:
    """``config.json`` of a saved folder, checked: right format, not from a newer version, required keys."""
    import json

    directory = Path(directory)
    path = directory / "config.json"
    if not directory.is_dir():
        raise PromptlearnError(f"no saved {what} at {directory}: not a folder")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromptlearnError(f"no saved {what} at {directory} (missing config.json)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PromptlearnError(f"cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise PromptlearnError(f"{path}: invalid JSON on line {exc.lineno}: {exc.msg}") from None
    if not isinstance(config, dict) or config.get("format") != fmt:
        found = config.get("format") if isinstance(config, dict) else type(config).__name__
        raise PromptlearnError(f"{path} is not a saved {what} (format {found!r})")
    if config.get("version", 0) > version:
        raise PromptlearnError(f"{path} was written by a newer promptlearn (format {config['version']}); upgrade")
    missing = [key for key in required if key not in config]
    if missing or not isinstance(config.get("params"), dict):
        raise PromptlearnError(f"{path} is incomplete or damaged (missing {missing or ['params']})")
    return config
