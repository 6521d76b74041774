"""Atomic writes: a file or a folder appears complete under its final name, or not at all."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, TextIO

from ..core.errors import PromptlearnError


def current_umask() -> int:
    """The process's file-mode creation mask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def _parent_lock(parent: Path) -> Iterator[None]:
    """An exclusive lock on ``parent`` (a folder), so one process at a time replaces or recovers a folder in it.
    POSIX ``flock`` on the folder itself (no lock file); where that is unavailable, no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    try:
        fd = os.open(parent, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks
            pass
        yield
    finally:
        os.close(fd)  # releases the lock


def _marker(target: Path) -> Path:
    """The commit marker of a replacement of ``target`` (see :class:`atomic_directory`)."""
    return target.with_name(f".{target.name}.replacing")


def _finish_replacement(marker: Path) -> None:
    """Roll a committed replacement forward (idempotent): the new folder into place, the old one removed."""
    import json

    try:
        plan = json.loads(marker.read_text(encoding="utf-8"))
        target, new, old = (marker.parent / plan[key] for key in ("target", "new", "old"))
    except FileNotFoundError:
        return
    except (OSError, ValueError, TypeError, KeyError):  # not a marker this code wrote: leave the folders alone
        return
    if new.is_dir():
        if target.exists() or target.is_symlink():
            os.replace(target, old)
        os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)
    marker.unlink(missing_ok=True)


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.tmp-{socket.gethostname()}-{os.getpid()}-"


def process_alive(pid: int) -> bool:
    """Whether the process ``pid`` of this host is running (another user's process counts as running)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process
        return True
    return True


def _remove_dead_temporaries(target: Path) -> None:
    """Remove half-built folders of ``target`` left by a process of this host that died while building them."""
    prefix = f".{target.name}.tmp-{socket.gethostname()}-"
    for candidate in target.parent.glob(f"{glob.escape(prefix)}*"):
        pid = candidate.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(candidate, ignore_errors=True)


def recover_directory(target: str | os.PathLike) -> None:
    """Finish or undo a replacement of ``target`` that a killed process left half done (see atomic_directory).

    A replacement that reached its commit marker is completed (the new folder is the one that counts); one
    interrupted before is undone (the old folder stays, the half-built one is removed). Folders left by older
    versions (the old folder renamed away, no marker) are put back. Called by every save and every load."""
    target = Path(target)
    if not target.parent.is_dir():
        return
    try:
        with _parent_lock(target.parent):
            _finish_replacement(_marker(target))
            if not target.exists():
                backups = sorted(target.parent.glob(f".{glob.escape(target.name)}.old-*"),
                                 key=lambda p: p.stat().st_mtime)
                if backups:
                    os.replace(backups[-1], target)
            _remove_dead_temporaries(target)
    except OSError:  # a read-only location: nothing can be repaired, and nothing needs to be
        pass


def atomic_write(target: str | os.PathLike, write: Callable[[TextIO], Any]) -> Path:
    """Call ``write(handle)`` on a temporary text file beside ``target``, then rename it into place."""

    def write_text(path: str) -> None:
        with open(path, "w", encoding="utf-8", newline="") as handle:
            write(handle)

    return atomic_write_path(target, write_text)


def atomic_write_path(target: str | os.PathLike, write: Callable[[str], Any],
                      error: type[PromptlearnError] = PromptlearnError) -> Path:
    """Call ``write(temporary path)`` for a file beside ``target`` (a library that writes files by name, e.g.
    pyarrow), then rename it into place; an OSError becomes ``error`` with one line."""
    target = Path(target)
    if target.is_dir():
        raise error(f"cannot write {target}: it is a folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~current_umask())  # the permissions of a plain open(), not mkstemp's private 0600
    except OSError as exc:
        raise error(f"cannot write {target}: {exc.strerror or exc}") from None
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise error(f"cannot write {target}: {exc.strerror or exc}") from None
        raise
    return target


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``target`` atomically."""
    return atomic_write(target, lambda handle: handle.write(text))


class atomic_directory:
    """Context manager: build a folder under a temporary name, then rename it into place.

    Replacing an existing folder is committed by one atomic step -- writing a marker file beside it -- before the
    two renames (old away, new in); a kill at any point leaves either the old folder or the new one in effect:
    before the marker, the old one (the half-built folder is removed by the next use); after it, the new one
    (:func:`recover_directory`, called by the next save or load, finishes the renames). No copy is left hidden.
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
            self.tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(self.target), dir=self.target.parent))
            os.chmod(self.tmp, 0o777 & ~current_umask())  # not mkdtemp's private 0700
        except OSError as exc:
            raise PromptlearnError(f"cannot create {self.target}: {exc.strerror or exc}") from None
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        import json

        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        with _parent_lock(self.target.parent):
            if not (self.target.exists() or self.target.is_symlink()):
                os.replace(self.tmp, self.target)
                return
            marker = _marker(self.target)
            plan = {"target": self.target.name, "new": self.tmp.name,
                    "old": f".{self.target.name}.old-{os.getpid()}-{self.tmp.name.rsplit('-', 1)[-1]}"}
            atomic_write_text(marker, json.dumps(plan) + "\n")  # the commit: from here on the new folder counts
            _finish_replacement(marker)


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

