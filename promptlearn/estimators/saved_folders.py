"""Opening saved folders safely: the one place every loader (PromptClassifier, PromptEnsemble, PromptBank,
ProbeClassifier, FineTuneClassifier, ``promptlearn evaluate --model-dir``) reads a saved folder through.

A saved folder is data that users share, so loading it never runs code from it and never reads outside it:

* ``trust_remote_code`` is only what the caller passes to ``load()`` (default ``False``), never a saved value;
  a model folder inside the saved folder whose ``config.json`` / ``tokenizer_config.json`` (or any other JSON
  file) carries an ``auto_map`` (custom Python code) is refused before transformers sees it, unless the caller
  passed ``trust_remote_code=True``. Pickle files (``*.bin``, ``*.pt``, ...) in it are refused: promptlearn
  saves safetensors only.
* Every path ``config.json`` names (the model folder, ensemble members, ``gguf_file``, weight files) is
  resolved inside the saved folder: absolute paths, ``~``, ``..`` and symbolic links that lead outside are
  refused with one line naming the field.
* A base model that is not in the folder is named, never followed as a path: a short name (``smollm2``) or a
  hub id (``org/name``) is loaded by the normal model loader; a local folder outside (recorded at save time
  as an absolute path, for reference) is used only when the caller passes ``model=`` to ``load()``
  (CLI: ``--model``). A hub id that is also a file or folder in the working directory is refused too.
* A damaged ``config.json`` (invalid JSON, wrong types, missing or unknown keys) raises
  :class:`~promptlearn.core.errors.SavedFolderError`, one line that names the file and the field.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from ..core.errors import PromptlearnError, SavedFolderError, UnsafeFolderError
from ..io.artifacts import recover_directory
from ..models.loader import short_names

# A hub repository id: "name" or "owner/name" (the characters the hub allows, no "..", no "--" tricks needed).
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_HUB_ID = re.compile(rf"^{_PART}(?:/{_PART})?$")
# Files a model folder must not hold: pickles run code when read (promptlearn saves safetensors only).
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz")
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "true or false", int: "an integer",
               float: "a number", type(None): "null"}


def _type_name(types: tuple[type, ...]) -> str:
    return " or ".join(dict.fromkeys(_JSON_TYPES.get(t, t.__name__) for t in types))


def _is_type(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types:
        return False
    if isinstance(value, int) and not isinstance(value, bool) and float in types:
        return True
    return isinstance(value, types)


def is_model_name(name: str) -> bool:
    """Whether ``name`` is a short name or a hub id (a name, not a path)."""
    if name.lower() in short_names():
        return True
    return bool(_HUB_ID.match(name)) and ".." not in name and not name.endswith(".gguf")


def recorded_model_name(name: str | os.PathLike) -> str:
    """How a saved folder records a base model given as ``name``: a short name or hub id as it is; a local file or
    folder as its absolute path (for reference only: :meth:`SavedFolder.model_name` will not follow it)."""
    text = str(name)
    if isinstance(name, os.PathLike) or not is_model_name(text) or (Path(text).exists()
                                                                     and text.lower() not in short_names()):
        return os.path.abspath(os.path.expanduser(text))
    return text


class SavedFolder:
    """A saved folder opened for loading: ``config`` is its checked ``config.json``; :meth:`inside`,
    :meth:`model_dir` and :meth:`model_name` resolve what it names without leaving the folder."""

    def __init__(self, directory: str | os.PathLike, *, fmt: str, version: int, what: str,
                 schema: Mapping[str, tuple[type, ...]], required: tuple[str, ...]) -> None:
        self.directory = Path(directory)
        self.what = what
        recover_directory(self.directory)  # a save killed between its renames: finish it first
        if not self.directory.is_dir():
            raise SavedFolderError(f"no saved {what} at {self.directory}: not a folder")
        self.root = self.directory.resolve()
        self.path = self.directory / "config.json"
        self.config = self._read(fmt, version, schema, required)

    # -- config.json ---------------------------------------------------------------------------------------
    def _read(self, fmt: str, version: int, schema: Mapping[str, tuple[type, ...]],
              required: tuple[str, ...]) -> dict[str, Any]:
        path = self.path
        if path.is_symlink() or (path.exists() and not self._within(path.resolve())):
            raise UnsafeFolderError(f"{path} is a link; a saved folder's config.json must be a plain file in it")
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SavedFolderError(f"no saved {self.what} at {self.directory} (missing config.json)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SavedFolderError(f"cannot read {path}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise SavedFolderError(f"{path}: invalid JSON on line {exc.lineno}: {exc.msg}; the folder is damaged "
                                   "(save the classifier again)") from None
        except RecursionError:
            raise SavedFolderError(f"{path}: the JSON is nested too deeply; the folder is damaged") from None
        if not isinstance(config, dict) or config.get("format") != fmt:
            found = config.get("format") if isinstance(config, dict) else type(config).__name__
            raise SavedFolderError(f"{path} is not a saved {self.what} (format {found!r})")
        saved_version = config.get("version", 0)
        if not _is_type(saved_version, (int,)):
            raise SavedFolderError(f"{path}: 'version' is {saved_version!r}, not an integer; the folder is damaged")
        if saved_version > version:
            raise SavedFolderError(f"{path} was written by a newer promptlearn (format {saved_version}); upgrade")
        missing = [key for key in required if key not in config]
        if missing:
            raise SavedFolderError(f"{path} is incomplete or damaged (missing {missing})")
        for key, types in schema.items():
            if key in config and not _is_type(config[key], types):
                raise SavedFolderError(f"{path}: {key!r} is {_preview(config[key])}, not {_type_name(types)}; the "
                                       "folder is damaged (save the classifier again)")
        return config

    def fail(self, field: str, problem: str) -> SavedFolderError:
        return SavedFolderError(f"{self.path}: {field} {problem}; the folder is damaged (save the classifier again)")

    def require(self, value: Any, field: str, types: tuple[type, ...]) -> Any:
        """``value`` (read from ``field``) when it has one of ``types``, else a one-line error."""
        if not _is_type(value, types):
            raise self.fail(field, f"is {_preview(value)}, not {_type_name(types)}")
        return value

    def string_list(self, value: Any, field: str) -> list[str]:
        self.require(value, field, (list,))
        for position, item in enumerate(value):
            self.require(item, f"{field}[{position}]", (str,))
        return list(value)

    def params(self, cls: type, *, exclude: tuple[str, ...] = (), values: Mapping[str, Any] | None = None
               ) -> dict[str, Any]:
        """The saved ``params`` (or ``values``, when given) checked against ``cls``'s constructor: known names,
        JSON types that fit the defaults. ``trust_remote_code`` is dropped (only the caller's value counts), and
        so is a saved ``checkpoint_dir`` (a place to write to is the caller's choice, never a saved folder's)."""
        params = dict(values if values is not None else self.require(self.config.get("params"), "'params'", (dict,)))
        signature = inspect.signature(cls.__init__)
        names = {n for n, p in signature.parameters.items() if n != "self" and p.kind is not p.VAR_KEYWORD}
        unknown = sorted(set(params) - names - set(exclude))
        if unknown:
            raise self.fail("'params'", f"has unknown parameter(s) {unknown} for a {cls.__name__}")
        for name in exclude:
            params.pop(name, None)
        params.pop("trust_remote_code", None)
        if "checkpoint_dir" in params:
            params["checkpoint_dir"] = None
        for name, value in params.items():
            parameter = signature.parameters[name]
            default, annotation = parameter.default, str(parameter.annotation)
            if value is None and (default is None or "None" in annotation or "Any" in annotation):
                continue
            if isinstance(default, bool):
                types: tuple[type, ...] = (bool,)
            elif isinstance(default, int) and not isinstance(default, bool):
                types = (int,) if "float" not in annotation else (float,)
            elif isinstance(default, float):
                types = (float,)
            elif isinstance(default, str) and "Any" not in annotation:
                types = (str,)
            elif isinstance(default, (tuple, list)) or annotation.startswith("Sequence"):
                types = (list,)
            else:
                continue
            self.require(value, f"params.{name}", types)
        return params

    @contextmanager
    def building(self) -> Iterator[None]:
        """Turn a type error while building the object from a damaged config into a one-line error."""
        try:
            yield
        except PromptlearnError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, AttributeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SavedFolderError(f"{self.path} is damaged ({first}); save the classifier again") from None

    # -- paths -------------------------------------------------------------------------------------------
    def _within(self, real: Path) -> bool:
        return real == self.root or self.root in real.parents

    def inside(self, value: Any, field: str, *, kind: str = "file") -> Path:
        """The file (``kind='file'``) or folder (``'dir'``) that ``value`` names, relative to the saved folder;
        refused when it is absolute, uses ``~`` or ``..``, or leads outside through a symbolic link."""
        self.require(value, field, (str,))
        text = value
        windows = PureWindowsPath(text)
        if (not text or text.startswith("~") or PurePosixPath(text).is_absolute() or windows.drive
                or windows.root or "\x00" in text):
            raise UnsafeFolderError(f"{self.path}: {field} is {text!r}, a path outside the saved folder; a saved "
                                    "folder may only name files inside it (save the classifier again)")
        parts = PurePosixPath(text.replace("\\", "/")).parts
        if ".." in parts:
            raise UnsafeFolderError(f"{self.path}: {field} is {text!r}, which leaves the saved folder with '..'; a "
                                    "saved folder may only name files inside it (save the classifier again)")
        candidate = self.directory.joinpath(*parts)
        real = candidate.resolve()
        if not self._within(real):
            raise UnsafeFolderError(f"{self.path}: {field} {text!r} is a link to {real}, outside the saved folder; "
                                    "a saved folder may only name files inside it (copy the file in)")
        if kind == "dir" and not real.is_dir():
            raise SavedFolderError(f"{self.path}: {field} names {text!r}, which is not a folder in {self.directory}; "
                                   "the folder is incomplete (save the classifier again)")
        if kind == "file" and not real.is_file():
            raise SavedFolderError(f"{self.path}: {field} names {text!r}, which is not a file in {self.directory}; "
                                   "the folder is incomplete (save the classifier again)")
        return real

    def model_dir(self, value: str, field: str, *, trust_remote_code: bool = False) -> str:
        """A model folder inside the saved folder, checked so that loading it reads nothing outside and runs no
        code: no link leads outside, no pickle files, and (unless the caller trusts remote code) no ``auto_map``
        in its JSON files; path-valued ``*_file`` entries must stay inside too."""
        folder = self.inside(value, field, kind="dir")
        for current, dirs, files in os.walk(folder, followlinks=False):
            for name in dirs + files:
                entry = Path(current) / name
                shown = entry.relative_to(folder)
                if entry.is_symlink() and not self._within(entry.resolve()):
                    raise UnsafeFolderError(f"{self.directory}: {value}/{shown} is a link to {entry.resolve()}, "
                                            "outside the saved folder; refusing to load it")
                if name.lower().endswith(_PICKLE_SUFFIXES) and not entry.is_dir():
                    raise UnsafeFolderError(f"{self.directory}: {value}/{shown} is a pickle file, which can run code "
                                            "when read; promptlearn saves and loads safetensors only")
                if name.endswith(".json") and entry.is_file():
                    self._check_model_json(entry, f"{value}/{shown}", trust_remote_code)
        return str(folder)

    def _check_model_json(self, path: Path, shown: str, trust_remote_code: bool) -> None:
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise SavedFolderError(f"{self.directory}: cannot read {shown} ({str(exc).splitlines()[0]}); the folder "
                                   "is damaged") from None
        if not isinstance(content, dict):
            return
        if "auto_map" in content and not trust_remote_code:
            raise UnsafeFolderError(
                f"{self.directory}: {shown} has an auto_map (custom Python code in the model folder); promptlearn "
                "does not run code from a saved folder unless you pass trust_remote_code=True to load() (only for a "
                "folder from someone you trust)")
        for key, item in content.items():
            if not (key.endswith(("_file", "_files")) and key not in ("_name_or_path", "name_or_path")):
                continue
            for text in (item if isinstance(item, list) else [item]):
                if isinstance(text, str) and (os.path.isabs(text) or text.startswith("~")
                                              or ".." in PurePosixPath(text.replace("\\", "/")).parts):
                    raise UnsafeFolderError(f"{self.directory}: {shown} names {key}={text!r}, a path outside the "
                                            "model folder; refusing to load it")

    def model_name(self, value: Any, field: str, *, parameter: str = "model") -> str:
        """A base model the folder names but does not hold: a short name or hub id, loaded by the normal model
        loader. A local path (absolute, relative, ``~``) or a name that is also a path in the working directory is
        refused: the caller passes ``model=`` to ``load()`` to use it."""
        self.require(value, field, (str,))
        name = value
        if not is_model_name(name):
            raise UnsafeFolderError(
                f"{self.path}: {field} names the base model by the local path {name!r}, outside the saved folder; "
                f"loading never follows such paths: pass {parameter}={name!r} (or another copy of that model) to "
                f"load(){' (CLI: --model)' if parameter == 'model' else ''} to use it")
        if name.lower() not in short_names() and (Path(name).exists() or Path(name).is_symlink()):
            raise UnsafeFolderError(
                f"{self.path}: {field} names the base model {name!r}, which is also a path in the working directory "
                f"({Path(name).absolute()}); a saved name is never read from there: pass {parameter}= to load() "
                f"with the model you mean{' (CLI: --model)' if parameter == 'model' else ''}, or run from another "
                "folder")
        return name

    def file_name(self, value: Any, field: str) -> str | None:
        """A file name that a model loader looks up inside a model folder or hub repository (``gguf_file``):
        relative, without ``..`` or ``~``."""
        if value is None:
            return None
        self.require(value, field, (str,))
        parts = PurePosixPath(value.replace("\\", "/")).parts
        if (not value or os.path.isabs(value) or PureWindowsPath(value).drive or value.startswith("~")
                or ".." in parts):
            raise UnsafeFolderError(f"{self.path}: {field} is {value!r}, a path outside the model's folder; a saved "
                                    "folder may only name a file inside it")
        return value


def _preview(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def open_saved(directory: str | os.PathLike, *, fmt: str, version: int, what: str,
               schema: Mapping[str, tuple[type, ...]] | None = None, required: tuple[str, ...] = ()) -> SavedFolder:
    """Open a saved folder for loading (see the module's docstring): finish an interrupted save, read and check
    ``config.json`` (format, version, required keys, their JSON types)."""
    return SavedFolder(directory, fmt=fmt, version=version, what=what, schema=schema or {}, required=required)
