"""Loading a saved folder never runs code from it, never reads outside it, and a damaged config.json gives one
line (issue 26, findings 1, 7 and 9); the final save of a run is one step a kill cannot split (finding 6).

A tampered folder here carries a payload (``evil.py``) that writes a marker file when imported; every test
asserts the marker never appears, through the API and through ``promptlearn evaluate --model-dir``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from promptlearn import PromptClassifier, PromptEnsemble, PromptlearnError
from promptlearn.io.artifacts import atomic_directory, recover_directory
from promptlearn.cli import main
from promptlearn.core.errors import SavedFolderError, UnsafeFolderError

TEMPLATE = "{{ text }} It was [MASK] ."
VERBALIZER = {"negative": ["bad"], "positive": ["good"]}
TEXTS = ["a good movie .", "a bad film .", "great acting , good story ."]
PAYLOAD = '''
import pathlib
pathlib.Path({marker!r}).write_text("payload ran")
from transformers import BertConfig, BertForMaskedLM, BertTokenizer


class EvilConfig(BertConfig):
    model_type = "evil"


class EvilModel(BertForMaskedLM):
    config_class = EvilConfig


class EvilTokenizer(BertTokenizer):
    pass
'''


# -- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved(tiny_bert_dir, tmp_path_factory):
    """A classifier saved with its model inside (``model/``), and its predictions."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    clf = PromptClassifier(model=AutoModelForMaskedLM.from_pretrained(tiny_bert_dir),
                           tokenizer=AutoTokenizer.from_pretrained(tiny_bert_dir), template=TEMPLATE,
                           verbalizer=VERBALIZER, show_progress=False)
    expected = clf.predict_proba(TEXTS)
    folder = clf.save(tmp_path_factory.mktemp("safe") / "clf")
    return folder, expected


def _copy(saved, tmp_path, name="clf") -> Path:
    target = tmp_path / name
    shutil.copytree(saved[0], target)
    return target


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def _tamper_code(folder: Path, marker: Path, *, where: str = "config") -> None:
    """Put the payload in the model folder and point an auto_map at it; ask for trust_remote_code too."""
    (folder / "model" / "evil.py").write_text(PAYLOAD.format(marker=str(marker)), encoding="utf-8")
    if where == "config":
        _edit(folder / "model" / "config.json", lambda c: c.update(
            model_type="evil", auto_map={"AutoConfig": "evil.EvilConfig", "AutoModelForMaskedLM": "evil.EvilModel"}))
    else:
        _edit(folder / "model" / "tokenizer_config.json", lambda c: c.update(
            tokenizer_class="EvilTokenizer", auto_map={"AutoTokenizer": ["evil.EvilTokenizer", None]}))
    _edit(folder / "config.json", lambda c: c["params"].update(trust_remote_code=True))


def _refused(load, *, kind=PromptlearnError) -> str:
    """``load()`` (and predicting with what it returns) must raise a one-line error of ``kind``."""
    with pytest.raises(kind) as info:
        load().predict_proba(TEXTS)
    message = str(info.value)
    assert "\n" not in message and message
    return message


def _cli_refused(capsys, folder: Path, data: Path, *extra: str) -> str:
    capsys.readouterr()
    try:
        code = main(["evaluate", "--model-dir", str(folder), "--data", str(data), *extra])
    except BaseException as exc:  # noqa: BLE001 - a traceback is the failure
        pytest.fail(f"evaluate raised {type(exc).__name__}: {exc}")
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("promptlearn: error: "), err
    return lines[0]


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label\n" + "".join(f'"{t}",{y}\n' for t, y in zip(TEXTS, ["positive", "negative",
                                                                                     "positive"])))
    return path


def _ensemble(tmp_path: Path, member: Path, folder_field: str | None = None, name: str = "ens") -> Path:
    """An ensemble folder whose one member is ``member`` (copied in as members/0 unless folder_field is given)."""
    target = tmp_path / name
    (target / "members").mkdir(parents=True)
    if folder_field is None:
        shutil.copytree(member, target / "members" / "0")
        folder_field = "members/0"
    config = {"format": "promptlearn.PromptEnsemble", "version": 1, "classes": list(VERBALIZER), "params": {},
              "fitted": False, "weights": None, "members": [{"folder": folder_field, "class": "PromptClassifier"}],
              "ipet_history": None}
    (target / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return target


# -- finding 1: no code from a folder -----------------------------------------------------------------------
@pytest.mark.parametrize("where", ["config", "tokenizer"])
def test_auto_map_payload_never_runs(saved, tmp_path, capsys, data, where):
    folder = _copy(saved, tmp_path)
    marker = tmp_path / "PAYLOAD_RAN"
    _tamper_code(folder, marker, where=where)
    message = _refused(lambda: PromptClassifier.load(folder), kind=UnsafeFolderError)
    assert "auto_map" in message and "trust_remote_code" in message
    assert not marker.exists()
    assert "auto_map" in _cli_refused(capsys, folder, data)
    assert not marker.exists()


def test_saved_trust_remote_code_is_ignored(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    _edit(folder / "config.json", lambda c: c["params"].update(trust_remote_code=True))
    loaded = PromptClassifier.load(folder)
    assert loaded.trust_remote_code is False  # only the caller's value counts
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), saved[1])
    assert PromptClassifier.load(folder, trust_remote_code=True).trust_remote_code is True


def test_auto_map_in_an_ensemble_member(saved, tmp_path, capsys, data):
    member = _copy(saved, tmp_path, "member")
    marker = tmp_path / "PAYLOAD_RAN"
    _tamper_code(member, marker)
    ensemble = _ensemble(tmp_path, member)
    _refused(lambda: PromptEnsemble.load(ensemble), kind=UnsafeFolderError)
    _cli_refused(capsys, ensemble, data)
    assert not marker.exists()


def test_pickle_and_links_in_the_model_folder_are_refused(saved, tmp_path):
    folder = _copy(saved, tmp_path)
    (folder / "model" / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    assert "pickle" in _refused(lambda: PromptClassifier.load(folder), kind=UnsafeFolderError)
    linked = _copy(saved, tmp_path, "linked")
    secret = tmp_path / "secret.json"
    shutil.copy(linked / "model" / "tokenizer.json", secret)
    (linked / "model" / "tokenizer.json").unlink()
    (linked / "model" / "tokenizer.json").symlink_to(secret)
    assert "outside" in _refused(lambda: PromptClassifier.load(linked), kind=UnsafeFolderError)


# -- finding 7 and member paths: nothing outside the folder -------------------------------------------------
@pytest.fixture
def outside(saved, tmp_path):
    """A valid saved classifier outside the folder under attack (what a path escape would pull in)."""
    return _copy(saved, tmp_path, "outside")


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_ensemble_member_outside_is_refused(saved, tmp_path, capsys, data, outside, how):
    if how == "symlink":
        ensemble = _ensemble(tmp_path, outside)
        shutil.rmtree(ensemble / "members" / "0")
        (ensemble / "members" / "0").symlink_to(outside, target_is_directory=True)
    else:
        ensemble = _ensemble(tmp_path, outside, "../outside" if how == "dotdot" else str(outside))
    message = _refused(lambda: PromptEnsemble.load(ensemble), kind=UnsafeFolderError)
    assert "members[0].folder" in message
    _cli_refused(capsys, ensemble, data)


@pytest.mark.parametrize("how", ["dotdot", "absolute", "cwd", "home"])
def test_base_model_path_outside_is_refused(saved, tmp_path, capsys, data, monkeypatch, tiny_bert_dir, how):
    folder = _copy(saved, tmp_path)
    victim = tmp_path / "victim"
    shutil.copytree(tiny_bert_dir, victim)
    name = {"dotdot": "../victim", "absolute": str(victim), "cwd": "victim", "home": "~/victim"}[how]
    monkeypatch.chdir(tmp_path)  # "victim" and "../victim" (from clf/) would resolve here
    _edit(folder / "config.json", lambda c: c.update(model=name))
    message = _refused(lambda: PromptClassifier.load(folder), kind=UnsafeFolderError)
    assert "model=" in message
    assert "--model" in _cli_refused(capsys, folder, data)
    # the caller may name a model explicitly: then that one is used
    np.testing.assert_array_equal(PromptClassifier.load(folder, model=str(tiny_bert_dir)).predict_proba(TEXTS),
                                  saved[1])


def test_verbalizer_or_template_file_outside_is_never_read(saved, tmp_path, capsys, data):
    secret = tmp_path / "secret.txt"
    secret.write_text("password: hunter2\n", encoding="utf-8")
    folder = _copy(saved, tmp_path)
    _edit(folder / "config.json", lambda c: c.update(verbalizer=str(secret)))
    message = _refused(lambda: PromptClassifier.load(folder), kind=SavedFolderError)
    assert "hunter2" not in message and "verbalizer" in message
    _cli_refused(capsys, folder, data)
    other = _copy(saved, tmp_path, "other")
    _edit(other / "config.json", lambda c: c.update(template=str(secret)))
    assert "hunter2" not in _refused(lambda: PromptClassifier.load(other), kind=SavedFolderError)


@pytest.mark.parametrize("gguf", ["../../x.gguf", "/etc/x.gguf", "~/x.gguf"])
def test_gguf_file_outside_is_refused(saved, tmp_path, gguf):
    folder = _copy(saved, tmp_path)
    _edit(folder / "config.json", lambda c: c["params"].update(gguf_file=gguf))
    assert "gguf_file" in _refused(lambda: PromptClassifier.load(folder), kind=UnsafeFolderError)


def test_model_folder_and_prompt_file_links_are_refused(saved, tmp_path, tiny_bert_dir):
    folder = _copy(saved, tmp_path)
    shutil.rmtree(folder / "model")
    (folder / "model").symlink_to(tiny_bert_dir, target_is_directory=True)
    assert "outside" in _refused(lambda: PromptClassifier.load(folder), kind=UnsafeFolderError)


# -- the untampered folder still loads and predicts identically -----------------------------------------------
def test_untampered_folders_load_identically(saved, tmp_path, capsys, data, tiny_bert_dir):
    folder = _copy(saved, tmp_path)
    np.testing.assert_array_equal(PromptClassifier.load(folder).predict_proba(TEXTS), saved[1])
    ensemble = _ensemble(tmp_path, folder)
    np.testing.assert_array_equal(PromptEnsemble.load(ensemble).predict_proba(TEXTS), saved[1])
    capsys.readouterr()
    assert main(["evaluate", "--model-dir", str(folder), "--data", str(data)]) == 0
    # a zero-shot classifier on a local model records its absolute path; load() uses it when given model=
    zero_shot = PromptClassifier(str(tiny_bert_dir), TEMPLATE, VERBALIZER, show_progress=False)
    zero_shot.save(tmp_path / "zero")
    config = json.loads((tmp_path / "zero" / "config.json").read_text(encoding="utf-8"))
    assert config["model"] == os.path.abspath(tiny_bert_dir) and "trust_remote_code" not in config["params"]
    np.testing.assert_array_equal(PromptClassifier.load(tmp_path / "zero", model=str(tiny_bert_dir))
                                  .predict_proba(TEXTS), saved[1])
    assert main(["evaluate", "--model-dir", str(tmp_path / "zero"), "--model", str(tiny_bert_dir),
                 "--data", str(data)]) == 0


def test_a_hub_id_is_a_name_not_a_path(saved, tmp_path, monkeypatch):
    """A saved hub id goes to the normal model loader (offline here: a one-line ModelLoadError)."""
    from promptlearn.core.errors import ModelLoadError

    folder = _copy(saved, tmp_path)
    _edit(folder / "config.json", lambda c: c.update(model="someone/no-such-model-xyz"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = PromptClassifier.load(folder)
    assert loaded.model == "someone/no-such-model-xyz"
    _refused(lambda: loaded, kind=ModelLoadError)


# -- finding 9: a damaged config.json is one line ---------------------------------------------------------
DAMAGE = {
    "invalid JSON": lambda p: p.write_text("{not json", encoding="utf-8"),
    "params not a dict": lambda p: _edit(p, lambda c: c.update(params=[1, 2])),
    "unknown parameter": lambda p: _edit(p, lambda c: c["params"].update(colour="red")),
    "batch_size a string": lambda p: _edit(p, lambda c: c["params"]["scoring"].update(batch_size="big")),
    "calibrate a string": lambda p: _edit(p, lambda c: c["params"].update(calibrate="yes")),
    "content_free a number": lambda p: _edit(p, lambda c: c["params"]["scoring"].update(content_free=5)),
    "template a string": lambda p: _edit(p, lambda c: c.update(template="{{ text }} [MASK]")),
    "template source a number": lambda p: _edit(p, lambda c: c["template"].update(source=5)),
    "verbalizer words numbers": lambda p: _edit(p, lambda c: c.update(verbalizer={"a": 5, "b": 6})),
    "model a number": lambda p: _edit(p, lambda c: c.update(model=5)),
    "missing verbalizer": lambda p: _edit(p, lambda c: c.pop("verbalizer")),
    "version a string": lambda p: _edit(p, lambda c: c.update(version="1")),
    "format a list": lambda p: _edit(p, lambda c: c.update(format=[1])),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_config_is_one_line(saved, tmp_path, capsys, data, damage):
    folder = _copy(saved, tmp_path)
    DAMAGE[damage](folder / "config.json")
    _refused(lambda: PromptClassifier.load(folder))
    _cli_refused(capsys, folder, data)


@pytest.mark.parametrize("members", ["x", [5], [{"folder": 5}], [{"nothing": 1}]])
def test_damaged_ensemble_config_is_one_line(saved, tmp_path, capsys, data, members):
    ensemble = _ensemble(tmp_path, saved[0])
    _edit(ensemble / "config.json", lambda c: c.update(members=members))
    _refused(lambda: PromptEnsemble.load(ensemble), kind=SavedFolderError)
    _cli_refused(capsys, ensemble, data)


# -- finding 6: the final save is one step a kill cannot split ------------------------------------------------
def _build(target: Path, text: str) -> None:
    with atomic_directory(target, overwrite=True) as tmp:
        (tmp / "config.json").write_text(text, encoding="utf-8")


def _killed_at(monkeypatch, target: Path, which: str):
    """os.replace as promptlearn.io.artifacts calls it, raising KeyboardInterrupt at one step of a replacement."""
    import promptlearn.io.artifacts as artifacts

    real = os.replace

    def replace(src, dst):
        src, dst = Path(src), Path(dst)
        old_away = src == target and dst.name.startswith(f".{target.name}.old")
        new_in = dst == target and src.name.startswith(f".{target.name}.")
        if (which == "old_away" and old_away) or (which == "new_in" and new_in):
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(artifacts.os, "replace", replace)


@pytest.mark.parametrize("which", ["old_away", "new_in"])
def test_replacement_killed_between_renames_keeps_the_new_folder(tmp_path, monkeypatch, which):
    target = tmp_path / "run"
    _build(target, "old")
    _killed_at(monkeypatch, target, which)
    with pytest.raises(KeyboardInterrupt):
        _build(target, "new")
    monkeypatch.undo()
    recover_directory(target)  # what the next load or run does first
    assert (target / "config.json").read_text(encoding="utf-8") == "new"
    assert sorted(os.listdir(tmp_path)) == ["run"]  # no hidden copy left behind


def test_kill_while_building_keeps_the_old_folder(tmp_path):
    target = tmp_path / "run"
    _build(target, "old")
    with pytest.raises(KeyboardInterrupt), atomic_directory(target, overwrite=True) as tmp:
        (tmp / "config.json").write_text("half", encoding="utf-8")
        raise KeyboardInterrupt
    assert (target / "config.json").read_text(encoding="utf-8") == "old"
    assert sorted(os.listdir(tmp_path)) == ["run"]


def test_killed_final_save_is_a_finished_run_for_resume(tiny_bert_dir, tmp_path, capsys, monkeypatch):
    rows = [("good movie .", "positive"), ("bad movie .", "negative"), ("great film .", "positive"),
            ("a bad film .", "negative")]
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    verbalizer = tmp_path / "verbalizer.json"
    verbalizer.write_text(json.dumps(VERBALIZER))

    def args(output, *extra):
        return ["train", "--model", str(tiny_bert_dir), "--template", TEMPLATE, "--verbalizer", str(verbalizer),
                "--train", str(train), "--output", str(output), "--learning-rate", "3e-3", "--max-steps", "4",
                "--train-batch-size", "2", *extra]

    assert main(args(tmp_path / "whole")) == 0
    expected = PromptClassifier.load(tmp_path / "whole").predict_proba(TEXTS)
    shutil.rmtree(tmp_path / "whole")

    output = tmp_path / "run"
    _killed_at(monkeypatch, output, "new_in")  # the final save replaces the folder of checkpoints
    assert main(args(output)) == 130
    monkeypatch.undo()
    capsys.readouterr()
    assert main(args(output, "--resume")) == 2  # it sees the finished run instead of starting over
    assert "finished" in capsys.readouterr().err
    np.testing.assert_array_equal(PromptClassifier.load(output).predict_proba(TEXTS), expected)
    assert sorted(os.listdir(tmp_path)) == ["run", "train.csv", "verbalizer.json"]  # nothing hidden
    assert not (output / "checkpoint").exists()
