"""Convert a local GGUF model once into a plain transformers folder in the user's cache, and reuse it.

Loading a GGUF file with transformers de-quantizes every tensor and rebuilds the tokenizer from the file's
metadata: ~20-40 s for SmolLM2-135M on 2 cores, on every load. :func:`cached_folder` does that work once and
saves the result (``model.safetensors``, ``config.json``, the tokenizer files and a ``promptlearn-gguf.json``
marker) under ``<cache>/gguf/<sha256 of the GGUF file>-transformers-<version>/``; later loads read that
folder like any saved checkpoint, in seconds, with the same weights, dtype (float32 for quantized files) and
tokenizer as a direct load of the GGUF file.

* ``<cache>`` is ``$PROMPTLEARN_CACHE``, else ``$XDG_CACHE_HOME/promptlearn``, else ``~/.cache/promptlearn``.
* ``PROMPTLEARN_GGUF_CACHE=0`` (or ``false``, ``no``, ``off``) turns the cache off: every load reads the GGUF.
* The folder is named by the file's content hash (a changed file gets a new folder) and the transformers
  version (the conversion is transformers' code). Hashes are memoized in ``<cache>/gguf/index.json`` by
  (path, size, mtime_ns), so an unchanged file is not read again.
* Writes are atomic: the conversion goes to a temporary folder next to the target and is renamed into place,
  so another process sees a complete folder or none; when another process finished first, ours is discarded.
* A folder whose marker is missing or whose files are missing or of the wrong size is rebuilt.
* No code runs from the file or the folder: ``trust_remote_code`` is always False here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import PromptlearnError, WrongModelKindError
from ..io.artifacts import atomic_write_text, current_umask, process_alive, save_model_folder
from .kinds import detect_kind

logger = logging.getLogger(__name__)

MARKER = "promptlearn-gguf.json"
FORMAT = 1  # bump when the folder layout or the conversion recipe changes
_OFF = ("0", "false", "no", "off")
_STALE_S = 24 * 3600  # temporary folders older than this were left by a killed process


def cache_root() -> Path:
    """promptlearn's cache folder: ``$PROMPTLEARN_CACHE``, else ``$XDG_CACHE_HOME/promptlearn``, else
    ``~/.cache/promptlearn``."""
    if os.environ.get("PROMPTLEARN_CACHE"):
        return Path(os.environ["PROMPTLEARN_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "promptlearn"
    return Path.home() / ".cache" / "promptlearn"


def enabled() -> bool:
    """Whether GGUF conversions are cached (``$PROMPTLEARN_GGUF_CACHE`` is not 0 / false / no / off)."""
    return os.environ.get("PROMPTLEARN_GGUF_CACHE", "1").strip().lower() not in _OFF


def file_sha256(path: Path) -> str:
    """The sha256 of a file's contents, memoized in ``<cache>/gguf/index.json`` by (path, size, mtime_ns)."""
    path = Path(path).resolve()
    stat = path.stat()
    index_file = cache_root() / "gguf" / "index.json"
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
        if not isinstance(index, dict):
            index = {}
    except (OSError, ValueError):
        index = {}
    entry = index.get(str(path))
    if isinstance(entry, dict) and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns \
            and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    index[str(path)] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest.hexdigest()}
    try:  # the memo is an optimisation: a cache that cannot be written only costs a re-hash next time
        _write_json_atomic(index_file, index)
    except (OSError, PromptlearnError):
        pass
    return digest.hexdigest()


def folder_for(gguf_path: Path) -> Path:
    """Where the conversion of ``gguf_path`` lives (whether or not it exists yet)."""
    from . import compat

    return cache_root() / "gguf" / f"{file_sha256(gguf_path)}-transformers-{compat.TRANSFORMERS_VERSION}"


def is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds a whole conversion: its marker, and every file the marker lists at its size."""
    try:
        marker = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        files = marker["files"]
        if marker.get("format") != FORMAT or not isinstance(files, dict) or "config.json" not in files:
            return False
        if not any(name.endswith(".safetensors") for name in files):
            return False
        for name, size in files.items():
            file = folder / name
            if Path(name).name != name or file.is_symlink() or not file.is_file() or file.stat().st_size != size:
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def convert(gguf_path: Path, out: Path) -> None:
    """De-quantize ``gguf_path`` and save model, config and tokenizer into the folder ``out``, in the dtype a direct
    load gives (``dtype="auto"``: float32 for quantized blocks)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    from . import compat

    options: dict[str, Any] = {"gguf_file": gguf_path.name, "trust_remote_code": False}
    folder = str(gguf_path.parent)
    config = AutoConfig.from_pretrained(folder, **options)
    tokenizer = AutoTokenizer.from_pretrained(folder, **options)
    kind = detect_kind(config, f"GGUF file {gguf_path}")
    auto_class = AutoModelForMaskedLM if kind == "masked" else AutoModelForCausalLM
    options.update(compat.gguf_dequantize_options())  # every block unpacked, whatever the release
    model = auto_class.from_pretrained(folder, config=config, dtype="auto", **options)
    save_model_folder(model, tokenizer, out)


def cached_folder(gguf_path: Path, converter: Callable[[Path, Path], None] | None = None) -> Path | None:
    """The folder holding the conversion of the local GGUF file ``gguf_path``, converting it first if needed
    (with ``converter(gguf_path, folder)``, :func:`convert` by default).

    None when the cache is turned off or cannot be used (unwritable cache, a conversion that fails): the
    caller then loads the GGUF file directly, which reports any real problem with the file itself.
    """
    if not enabled():
        return None
    gguf_path = Path(gguf_path)
    try:
        target = folder_for(gguf_path)
    except OSError as exc:
        logger.warning("cannot use the GGUF cache (%s); loading %s directly", _first_line(exc), gguf_path.name)
        return None
    if is_complete(target):
        logger.info("loading %s from its cached conversion %s", gguf_path.name, target)
        return target
    if target.exists():
        logger.warning("the cached conversion %s is incomplete or damaged; converting again", target)
    logger.warning("converting %s once (de-quantizing its weights); cached in %s (next loads take seconds; "
                   "PROMPTLEARN_GGUF_CACHE=0 turns this off)", gguf_path.name, target)
    started = time.perf_counter()
    temporary: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _sweep_stale(target.parent)
        temporary = Path(tempfile.mkdtemp(prefix=_temporary_prefix(), dir=target.parent))
        os.chmod(temporary, 0o777 & ~current_umask())  # what a plain mkdir gives, not mkdtemp's private 0700
        (converter or convert)(gguf_path, temporary)
        _write_marker(temporary, gguf_path, target.name)
        _install(temporary, target)
    except WrongModelKindError:  # about the model, not the cache: the direct load would say the same
        raise
    except Exception as exc:  # noqa: BLE001 - the cache is an optimisation; the direct load reports real errors
        logger.warning("could not cache the conversion of %s (%s); loading it directly", gguf_path.name,
                       _first_line(exc))
        return None
    finally:
        if temporary is not None and temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
    logger.info("converted %s in %.1f s", gguf_path.name, time.perf_counter() - started)
    return target


def discard(folder: Path) -> None:
    """Remove a cached conversion (moved aside first, so no other process sees it half-deleted)."""
    trash = folder.parent / f".trash-{folder.name}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        os.rename(folder, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _install(temporary: Path, target: Path) -> None:
    """Rename the finished ``temporary`` folder to ``target``; keep another process's complete one."""
    if is_complete(target):  # another process finished first
        return
    if target.exists():  # damaged: moved aside, then replaced
        discard(target)
    try:
        os.rename(temporary, target)
    except OSError:
        if not is_complete(target):  # not a concurrent winner: a real failure
            raise


def _write_marker(folder: Path, gguf_path: Path, key: str) -> None:
    """Write the marker, listing every file of the finished conversion and its size (written last)."""
    from . import compat

    files = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if p.is_file() and p.name != MARKER}
    marker = {"format": FORMAT, "key": key, "source": gguf_path.name, "source_size": gguf_path.stat().st_size,
              "transformers": str(compat.TRANSFORMERS_VERSION), "files": files}
    _write_json_atomic(folder / MARKER, marker)


def _write_json_atomic(path: Path, value: Any) -> None:
    atomic_write_text(path, json.dumps(value, indent=1, sort_keys=True) + "\n")


def _temporary_prefix() -> str:
    return f".tmp-{socket.gethostname()}-{os.getpid()}-"


def _sweep_stale(parent: Path) -> None:
    """Remove temporary and discarded folders left behind by a killed process: those of a dead process of this
    host, and any older than a day."""
    host = f".tmp-{socket.gethostname()}-"
    now = time.time()
    for entry in parent.iterdir():
        try:
            if not entry.name.startswith((".tmp-", ".trash-")):
                continue
            pid = entry.name[len(host):].split("-", 1)[0] if entry.name.startswith(host) else ""
            dead = pid.isdigit() and not process_alive(int(pid))
            if not dead and now - entry.lstat().st_mtime <= _STALE_S:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink()
        except OSError:
            continue


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
