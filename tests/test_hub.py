"""push_to_hub / from_pretrained without the network, against a local stand-in of the Hugging Face hub.

What is stood in: ``HfApi.create_repo``, ``HfApi.create_branch`` and ``HfApi.upload_folder`` -- the write calls
push_to_hub makes -- by :class:`LocalHub`, which records each call and writes each commit as a snapshot in the hub
cache's own layout (``models--owner--name/snapshots/<commit>/``, ``refs/<branch>``) under a tmp folder. What is
not stood in: ``snapshot_download`` (huggingface_hub's own, offline as every test is -- conftest sets
``HF_HUB_OFFLINE=1`` -- serves the snapshot from that cache), the pattern filter of uploads
(huggingface_hub's ``filter_repo_objects``), and transformers loading a hub id from the same cache.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
from contextlib import contextmanager
from fnmatch import fnmatch
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
import numpy as np
import pytest
from huggingface_hub import HfApi, ModelCard, constants
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.utils import filter_repo_objects

from promptlearn import (
    PromptClassifier,
    PromptlearnError,
    SavedFolderError,
    TrainingOptions,
    UnsafeFolderError,
)
from promptlearn.core.metrics import classification_report
from promptlearn.estimators import hub
from promptlearn.estimators.model_card import record_evaluation

TEMPLATE = "{{ text }} It was [MASK]."
VERBALIZER = {"negative": ["bad", "awful"], "positive": ["great"]}
X = ["a good movie , the actors were great .", "bad film", "great fun", "awful acting"]
Y = ["positive", "negative", "positive", "negative"]
BASE = "promptlearn-test/tiny-bert"
#: The HTTP library whose responses huggingface_hub's errors carry: httpx2 from huggingface_hub 2, httpx before.
httpx = importlib.import_module("httpx2" if int(huggingface_hub.__version__.split(".")[0]) >= 2 else "httpx")


class LocalHub:
    """The hub's write API on a tmp folder in the hub cache's layout (see the module's docstring)."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        self.created: list[tuple[str, bool | None]] = []
        self.uploads: list[dict[str, int]] = []  # per commit: uploaded path -> size in bytes
        self.commits = 0

    def repo(self, repo_id: str) -> Path:
        return self.cache / f"models--{repo_id.replace('/', '--')}"

    def files(self, repo_id: str, branch: str = "main") -> dict[str, Path]:
        ref = self.repo(repo_id) / "refs" / branch
        if not ref.is_file():
            return {}
        snapshot = self.repo(repo_id) / "snapshots" / ref.read_text()
        return {p.relative_to(snapshot).as_posix(): p for p in sorted(snapshot.rglob("*")) if p.is_file()}

    def commit(self, repo_id: str, files: dict[str, Path], branch: str = "main") -> str:
        self.commits += 1
        sha = hashlib.sha1(f"{repo_id}:{self.commits}".encode()).hexdigest()
        snapshot = self.repo(repo_id) / "snapshots" / sha
        for relative, source in files.items():
            (snapshot / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, snapshot / relative)
        snapshot.mkdir(parents=True, exist_ok=True)
        (self.repo(repo_id) / "refs").mkdir(parents=True, exist_ok=True)
        (self.repo(repo_id) / "refs" / branch).write_text(sha)
        return sha

    def publish(self, repo_id: str, folder: Path) -> None:
        """A repository someone else pushed (e.g. a base model)."""
        self.commit(repo_id, {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()})

    # -- the stood-in HfApi methods -----------------------------------------------------------------------
    def create_repo(self, api, repo_id, *, token=None, private=None, exist_ok=False, **_):
        assert token and exist_ok
        repo_id = repo_id if "/" in repo_id else f"alice/{repo_id}"  # the token's user namespace
        self.created.append((repo_id, private))
        return SimpleNamespace(repo_id=repo_id, url=f"https://huggingface.co/{repo_id}")

    def create_branch(self, api, repo_id, *, branch, exist_ok=False, token=None, **_):
        if not (self.repo(repo_id) / "refs" / branch).exists():
            self.commit(repo_id, self.files(repo_id), branch)

    def upload_folder(self, api, *, repo_id, folder_path, token=None, revision=None, commit_message=None,
                      allow_patterns=None, delete_patterns=None, **_):
        assert token and commit_message
        folder = Path(folder_path)
        local = [p.relative_to(folder).as_posix() for p in sorted(folder.rglob("*")) if p.is_file()]
        uploaded = list(filter_repo_objects(local, allow_patterns=allow_patterns))
        branch = revision or "main"
        kept = self.files(repo_id, branch)
        for relative in list(filter_repo_objects(list(kept), allow_patterns=delete_patterns)):
            if relative not in uploaded:
                del kept[relative]
        self.uploads.append({relative: (folder / relative).stat().st_size for relative in uploaded})
        sha = self.commit(repo_id, {**kept, **{relative: folder / relative for relative in uploaded}}, branch)
        return SimpleNamespace(oid=sha, commit_url=f"https://huggingface.co/{repo_id}/commit/{sha}")


@pytest.fixture
def local_hub(tmp_path, monkeypatch, tiny_bert_dir):
    stand_in = LocalHub(tmp_path / "hub-cache")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(stand_in.cache))
    for name in ("create_repo", "create_branch", "upload_folder"):
        method = getattr(stand_in, name)
        monkeypatch.setattr(HfApi, name, lambda api, *args, _method=method, **kwargs: _method(api, *args, **kwargs))
    stand_in.publish(BASE, tiny_bert_dir)
    return stand_in


@contextmanager
def online():
    """push_to_hub refuses under HF_HUB_OFFLINE; the stand-in answers its calls, so a push may go ahead. Only
    around a push: everything else (loading the base model, downloads) stays offline."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(constants, "HF_HUB_OFFLINE", False)
        yield


def _soft(model=BASE):
    return PromptClassifier(model=model, template=TEMPLATE, verbalizer=VERBALIZER, tuning="soft", device="cpu",
                            training=TrainingOptions(max_steps=2, batch_size=2), seed=1)


def test_push_and_from_pretrained_round_trip(local_hub):
    clf = _soft().fit(X, Y)
    with online():
        commit = clf.push_to_hub("alice/sst2-soft", private=True, token="hf_test", card={"language": "en"})
    assert commit.commit_url.startswith("https://huggingface.co/alice/sst2-soft/commit/")
    assert local_hub.created == [("alice/sst2-soft", True)]
    uploaded = local_hub.uploads[-1]
    assert set(uploaded) == {"config.json", "prompt.safetensors", "README.md"}
    assert sum(uploaded.values()) < 20_000  # a prompt-only artifact: kilobytes (the base model is named, not sent)
    card = ModelCard.load(local_hub.files("alice/sst2-soft")["README.md"])
    assert card.data.base_model == BASE and card.data.language == ["en"] and card.data.library_name == "promptlearn"
    assert 'PromptClassifier.from_pretrained("alice/sst2-soft")' in card.text
    # the real snapshot_download, offline, served from the cache the stand-in wrote
    loaded = PromptClassifier.from_pretrained("alice/sst2-soft")
    assert loaded.tuning_config_.source == "soft" and loaded.model == BASE
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-6)


def test_push_a_saved_folder_with_figures_replaces_old_files(local_hub, tmp_path):
    full = PromptClassifier(model=BASE, template=TEMPLATE, verbalizer=VERBALIZER, device="cpu",
                            training=TrainingOptions(max_steps=1, batch_size=2)).fit(X, Y)
    with online():
        hub.push_to_hub(full, "team/clf", token="hf_test")
    first = local_hub.uploads[-1]
    assert "model/model.safetensors" in first and sum(first.values()) > 100_000  # the whole model travels
    clf = _soft().fit(X, Y)
    folder = clf.save(tmp_path / "soft")
    record_evaluation(folder, classification_report([0, 1, 1, 0], [0, 1, 1, 1], ["negative", "positive"]),
                      dataset="sst2", split="validation")
    (folder / "notes.pkl").write_bytes(b"not a saved folder's file")
    with online():
        hub.push_to_hub(folder, "team/clf", token="hf_test", commit_message="soft prompt")
    assert set(local_hub.uploads[-1]) == {"config.json", "prompt.safetensors", "README.md", "eval_results.json"}
    files = local_hub.files("team/clf")
    assert not any(name.startswith("model/") for name in files)  # the earlier push's model/ is deleted
    card = ModelCard.load(files["README.md"])
    assert card.data.eval_results[0].metric_value == 0.75 and 'from_pretrained("team/clf")' in card.text
    assert "| sst2 | validation | 4 | 75.00 % |" in card.text  # the figures travel with their weights
    assert 'from_pretrained("team/clf")' not in (folder / "README.md").read_text()  # the local card is untouched
    np.testing.assert_allclose(PromptClassifier.from_pretrained("team/clf").predict_proba(X), clf.predict_proba(X),
                               rtol=1e-6)


def test_from_pretrained_of_a_folder_is_load(tiny_bert_dir, tmp_path):
    clf = _soft(str(tiny_bert_dir)).fit(X, Y)
    folder = clf.save(tmp_path / "soft")
    loaded = PromptClassifier.from_pretrained(folder, model=str(tiny_bert_dir))
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-6)
    with pytest.raises(UnsafeFolderError, match="local path"):  # the same safety rules as load()
        PromptClassifier.from_pretrained(str(folder))


def test_downloads_only_saved_folder_files(local_hub, monkeypatch, tiny_bert_dir):
    calls = []
    real = huggingface_hub.snapshot_download
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: calls.append(k) or real(*a, **k))
    with pytest.raises(SavedFolderError, match="is not a saved PromptClassifier"):  # a plain model repository
        PromptClassifier.from_pretrained(BASE)
    patterns = calls[0]["allow_patterns"]
    for name in ("config.json", "prompt.safetensors", "model/model.safetensors", "model/vocab.txt",
                 "model/tokenizer_config.json", "model/spiece.model", "model/chat_template.jinja", "README.md"):
        assert any(fnmatch(name, p) for p in patterns), name
    for name in ("model/pytorch_model.bin", "prompt.pt", "x.pkl", "model/modeling_evil.py", "run.sh"):
        assert not any(fnmatch(name, p) for p in patterns), name


def test_a_pickle_in_a_cached_repository_is_refused(local_hub, tmp_path):
    """Even when the cache holds more than the allowed files (an earlier download), the safe loader decides."""
    full = PromptClassifier(model=BASE, template=TEMPLATE, verbalizer=VERBALIZER, device="cpu",
                            training=TrainingOptions(max_steps=1, batch_size=2)).fit(X, Y)
    folder = full.save(tmp_path / "full")
    (folder / "model" / "pytorch_model.bin").write_bytes(b"pickle")
    local_hub.publish("mallory/clf", folder)
    with pytest.raises(UnsafeFolderError, match="pickle file"):
        PromptClassifier.from_pretrained("mallory/clf")


def _response(status):
    return httpx.Response(status, request=httpx.Request("GET", "https://huggingface.co/api/models/x"))


def test_hub_errors_are_one_line(local_hub, monkeypatch, tmp_path):
    clf = PromptClassifier(model=BASE, template=TEMPLATE, verbalizer=VERBALIZER)

    def one_line(call, match):
        with pytest.raises(PromptlearnError, match=match) as info:
            call()
        assert "\n" not in str(info.value)

    one_line(lambda: clf.push_to_hub("alice/x", token="hf_test"), "HF_HUB_OFFLINE is set; pushing needs the network")
    one_line(lambda: PromptClassifier.from_pretrained("alice/never-pushed"),
             "HF_HUB_OFFLINE is set and it is not in the local cache")
    one_line(lambda: PromptClassifier.from_pretrained("./no/such/folder"), "not a folder, nor a Hugging Face")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    one_line(lambda: clf.push_to_hub("alice/x"), "not logged in to the Hugging Face hub; run `hf auth login`")
    one_line(lambda: clf.push_to_hub("a/b/c", token="hf_test"), "not a Hugging Face repository id")
    one_line(lambda: hub.push_to_hub(tmp_path, "alice/x", token="hf_test"), "missing config.json")
    one_line(lambda: clf.push_to_hub("alice/x", token="hf_test", card={"metrics": []}), "written by promptlearn")
    assert local_hub.created == []  # nothing was created for a push that could not be saved

    def refuse(api, repo_id, **_):
        raise HfHubHTTPError("401 Client Error: Unauthorized", response=_response(401))

    monkeypatch.setattr(HfApi, "create_repo", refuse)
    one_line(lambda: clf.push_to_hub("alice/x", token="hf_bad"), "the hub refused the token")

    def missing(*args, **kwargs):
        raise RepositoryNotFoundError("404 Client Error. Repository Not Found", response=_response(404))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", missing)
    one_line(lambda: PromptClassifier.from_pretrained("alice/private-or-missing"),
             "no such Hugging Face repository, or it is private")
    assert local_hub.uploads == []
