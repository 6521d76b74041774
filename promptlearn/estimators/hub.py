"""Sharing saved classifiers through the Hugging Face hub: :func:`push_to_hub` uploads a saved folder (with its
model card naming the repository) and :func:`from_pretrained` downloads one and loads it with the same safe
loader as ``load()`` (:mod:`.saved_folders`: no code runs, nothing outside the folder is read, never
``trust_remote_code`` unless passed). Only the files a saved folder may hold travel (:data:`HUB_FILES`); no
pickle is ever uploaded, downloaded or read. ``huggingface_hub`` (a transformers dependency) is imported on use.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from ..core.errors import PromptlearnError, SavedFolderError, UnsafeFolderError
from .model_card import CARD_FILE, ENSEMBLE_FORMAT, read_config, write_card
from .saved_folders import is_model_name

logger = logging.getLogger(__name__)

#: The files of a saved folder, at any depth: config and tokenizer JSON, safetensors weights, vocabularies
#: (``vocab.txt``, ``merges.txt``), sentencepiece models, chat templates, the card. Uploads, downloads and the
#: remote files a push replaces are limited to these.
HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", CARD_FILE]
_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"^(?:{_PART}/)?{_PART}$")
_CLASSIFIER_FORMAT = "promptlearn.PromptClassifier"


def _check_repo_id(repo_id: Any) -> str:
    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id) or ".." in repo_id or "--" in repo_id:
        raise PromptlearnError(f"{repo_id!r} is not a Hugging Face repository id; use 'name' or 'owner/name' "
                               "(letters, digits, '-', '_', '.')")
    return repo_id


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _hub_error(exc: Exception, repo_id: str, action: str) -> PromptlearnError | None:
    """One line for a huggingface_hub failure of ``action`` on ``repo_id``; None for other errors."""
    from huggingface_hub import errors

    if isinstance(exc, errors.GatedRepoError):
        return PromptlearnError(f"cannot {action} {repo_id}: the repository is gated; accept its conditions on "
                                f"https://huggingface.co/{repo_id} and log in (`hf auth login`) or pass token=")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return PromptlearnError(f"cannot {action} {repo_id}: no such Hugging Face repository, or it is private and "
                                "you are not logged in (`hf auth login`, or pass token=)")
    if isinstance(exc, errors.RevisionNotFoundError):
        return PromptlearnError(f"cannot {action} {repo_id}: it has no such revision (branch, tag or commit); "
                                "check revision=")
    if isinstance(exc, (errors.LocalEntryNotFoundError, errors.OfflineModeIsEnabled)):
        why = ("HF_HUB_OFFLINE is set and it is not in the local cache; unset HF_HUB_OFFLINE (or download it "
               "once online)") if _offline() else f"the hub cannot be reached ({_first_line(exc)})"
        return PromptlearnError(f"cannot {action} {repo_id}: {why}")
    if isinstance(exc, errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            return PromptlearnError(f"cannot {action} {repo_id}: the hub refused the token (HTTP {status}); log in "
                                    "with a token that can write there (`hf auth login`) or pass token=")
        return PromptlearnError(f"cannot {action} {repo_id}: {_first_line(exc)}")
    if isinstance(exc, OSError):
        return PromptlearnError(f"cannot {action} {repo_id}: {_first_line(exc)}")
    return None


# -- push ------------------------------------------------------------------------------------------------
def _copy_saved_folder(source: Path, target: Path) -> None:
    """The files of a saved folder that a hub repository holds (:data:`HUB_FILES`), copied; a link refused."""
    if not source.is_dir():
        raise SavedFolderError(f"no saved classifier at {source}: not a folder")
    read_config(source)  # a promptlearn folder, or one line
    for current, dirs, files in os.walk(source, followlinks=False):
        for name in dirs + files:
            path = Path(current) / name
            if path.is_symlink():
                raise UnsafeFolderError(f"{source}: {path.relative_to(source)} is a link; a folder pushed to the hub "
                                        "must hold plain files (copy the file in)")
        for name in files:
            path = Path(current) / name
            relative = path.relative_to(source)
            if any(fnmatch(relative.as_posix(), pattern) for pattern in HUB_FILES):
                (target / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / relative)


def _uploaded_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def push_to_hub(classifier: Any, repo_id: str, *, private: bool | None = None, token: str | None = None,
                commit_message: str | None = None, revision: str | None = None, card: dict[str, Any] | None = None
                ) -> Any:
    """Upload a classifier to the Hugging Face hub repository ``repo_id`` (``name`` or ``owner/name``; created
    if missing, ``private`` as given): the folder :meth:`save` writes (a prompt-only classifier: kilobytes, and
    its card names the base model), with the card's usage snippet loading ``repo_id``.

    ``classifier``: a fitted (or zero-shot) classifier, saved to a temporary folder first (``card``: its card
    fields, as in ``save``), or the path of a saved folder (uploaded as it is, evaluation figures included).
    ``token``: a hub token with write access (default: the one ``hf auth login`` stored, or ``$HF_TOKEN``).
    ``revision``: a branch (created from the default branch if missing). Files of a saved folder's kinds that the
    repository holds and the new folder does not (e.g. an earlier ``model/``) are deleted in the same commit; other
    files stay. Returns ``huggingface_hub``'s ``CommitInfo`` (``.commit_url``)."""
    from huggingface_hub import HfApi, get_token

    repo_id = _check_repo_id(repo_id)
    if _offline():
        raise PromptlearnError(f"cannot push to {repo_id}: HF_HUB_OFFLINE is set; pushing needs the network "
                               "(unset HF_HUB_OFFLINE)")
    token = token or get_token()
    if not token:
        raise PromptlearnError(f"cannot push to {repo_id}: not logged in to the Hugging Face hub; run `hf auth "
                               "login`, set HF_TOKEN, or pass token=")
    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="promptlearn-push-") as staging:
        folder = Path(staging) / "folder"
        saved_folder = isinstance(classifier, (str, os.PathLike))
        if saved_folder:
            if card is not None:
                raise PromptlearnError("card= is for a classifier object; a saved folder is pushed with its own "
                                       "card (save it again with card= to change it)")
            folder.mkdir()
            _copy_saved_folder(Path(classifier), folder)
        elif not callable(getattr(classifier, "save", None)):
            raise PromptlearnError(f"push_to_hub takes a classifier or a saved folder, got {type(classifier).__name__}")
        else:  # saved before the repository is created: a classifier that cannot be saved creates nothing
            classifier.save(folder, **({"card": card} if card is not None else {}))
        try:
            repo_id = api.create_repo(repo_id, private=private, exist_ok=True, token=token).repo_id
            if revision is not None:
                api.create_branch(repo_id, branch=revision, exist_ok=True, token=token)
        except Exception as exc:
            error = _hub_error(exc, repo_id, "create or open")
            if error is None:
                raise
            raise error from None
        config = read_config(folder)
        if config.get("format") in (_CLASSIFIER_FORMAT, ENSEMBLE_FORMAT):
            write_card(folder, location=repo_id)  # the usage snippet loads the repository
            base = config.get("base_model")
            if isinstance(base, str) and not is_model_name(base):
                logger.warning("%s names its base model by the local path %s: others need to pass model= to "
                               "from_pretrained (push a classifier over a hub model to avoid that)", repo_id, base)
        files = _uploaded_files(folder)
        n_bytes = sum(p.stat().st_size for p in files)
        try:
            commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder), token=token, revision=revision,
                                       commit_message=commit_message or "Upload promptlearn classifier",
                                       allow_patterns=HUB_FILES, delete_patterns=HUB_FILES)
        except Exception as exc:
            error = _hub_error(exc, repo_id, "upload to")
            if error is None:
                raise
            raise error from None
    logger.info("pushed %d files (%d bytes) to https://huggingface.co/%s", len(files), n_bytes, repo_id)
    return commit


# -- download ----------------------------------------------------------------------------------------------
def from_pretrained(cls: type, repo_id_or_folder: str | os.PathLike, *, revision: str | None = None,
                    token: str | None = None, **overrides: Any) -> Any:
    """``cls.load`` of a saved folder, or of a hub repository: its saved-folder files (:data:`HUB_FILES`, never
    a pickle) downloaded into the hub cache with ``huggingface_hub.snapshot_download`` (offline with
    ``HF_HUB_OFFLINE=1``: from the cache), then loaded by the same safe loader; ``overrides`` as for ``load``
    (``trust_remote_code`` only when passed). A local folder wins over a repository of the same name."""
    location = Path(repo_id_or_folder)
    text = str(repo_id_or_folder)
    if location.is_dir():
        return cls.load(location, **overrides)
    if isinstance(repo_id_or_folder, os.PathLike) or location.exists() or not _REPO_ID.match(text):
        raise SavedFolderError(f"no saved {cls.__name__} at {text}: not a folder, nor a Hugging Face repository "
                               "id ('owner/name')")
    _check_repo_id(text)
    from huggingface_hub import snapshot_download

    from .. import __version__

    try:
        snapshot = snapshot_download(text, revision=revision, token=token, allow_patterns=HUB_FILES,
                                     library_name="promptlearn", library_version=__version__)
    except Exception as exc:
        error = _hub_error(exc, text, "download")
        if error is None:
            raise
        raise error from None
    if not (Path(snapshot) / "config.json").is_file():
        raise SavedFolderError(f"the Hugging Face repository {text} holds no saved promptlearn classifier (no "
                               "config.json); is it a promptlearn repository?")
    return cls.load(snapshot, **overrides)
