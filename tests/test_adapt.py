"""promptlearn.applications.adapt: continued masked-LM training, head added to encoders, resume, reproducibility, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from promptlearn import PromptClassifier, load_model
from promptlearn.models import compat
from promptlearn.applications.adapt import _MaskedLMLoss, adapt, read_texts, shared_unlabelled_texts
from promptlearn.cli import main
from promptlearn.io.tasks import load_ag_news, load_lmbff_task, shared_data_root
from promptlearn.core.errors import ConfigError, DataError, PromptlearnError, WrongModelKindError
from promptlearn.pipeline.training import Trainer

CORPUS = [
    "the movie was great and the music was good .",
    "the film was bad and the story was boring .",
    "i loved the book , the story was amazing .",
    "the food was good and the service was fine .",
    "the game was awful , the team played bad .",
    "it was a great day in the city .",
] * 4
FAST = dict(head_steps=4, steps=6, batch_size=4, max_length=32, checkpoint_every=2, show_progress=False)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    """A saved model's tensors under their state_dict names (whichever names this transformers writes)."""
    return {compat.state_dict_name(k): v for k, v in load_file(str(Path(folder) / "model.safetensors")).items()}


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name


@pytest.fixture(scope="module")
def reference(tiny_bert_encoder_dir, tmp_path_factory):
    """One uninterrupted run on the head-less tiny encoder: (output folder, summary)."""
    out = tmp_path_factory.mktemp("adapt_ref") / "mlm"
    return out, adapt(str(tiny_bert_encoder_dir), CORPUS, out, **FAST)


def test_adds_a_tied_head_and_saves_a_masked_lm(reference, tiny_bert_encoder_dir):
    from transformers import AutoModelForMaskedLM

    out, summary = reference
    assert summary["head_added"] and summary["head_steps"] == 4 and summary["steps"] == 6
    assert len(summary["head_history"]) == 4 and len(summary["full_history"]) == 6
    assert not Path(f"{out}.partial").exists()
    assert json.loads((out / "adapt.json").read_text())["texts"] == len(CORPUS)
    model, info = AutoModelForMaskedLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"]
    assert model.config.architectures == ["BertForMaskedLM"]
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    saved = weights(out)
    assert not any(k.endswith("decoder.weight") for k in saved)  # tied: stored once, as the embeddings
    original = weights(tiny_bert_encoder_dir)
    embeddings = "embeddings.word_embeddings.weight"
    assert not torch.equal(saved[f"bert.{embeddings}"], original[embeddings])

    loaded = load_model(str(out))  # no "missing head" error any more
    assert loaded.kind == "masked"
    clf = PromptClassifier(model=str(out), template="{{ text }} It was [MASK].",
                           verbalizer={"negative": ["bad"], "positive": ["great"]}, show_progress=False)
    probs = clf.predict_proba(["a good movie", "boring"])
    assert probs.shape == (2, 2) and np.allclose(probs.sum(axis=1), 1)


def test_phase_one_trains_only_the_head(tiny_bert_encoder_dir, tmp_path):
    out = tmp_path / "head-only"
    summary = adapt(str(tiny_bert_encoder_dir), CORPUS, out, **{**FAST, "steps": 0})
    assert summary["head_steps"] == 4 and summary["full_history"] == []
    original = weights(tiny_bert_encoder_dir)
    saved = weights(out)
    for name, tensor in saved.items():
        if name.startswith("bert."):
            assert torch.equal(tensor, original[name.removeprefix("bert.")]), name
    assert saved["cls.predictions.bias"].abs().sum() > 0  # the head moved (it starts at zero)


def test_existing_head_skips_phase_one(tiny_bert_dir, tmp_path):
    summary = adapt(str(tiny_bert_dir), CORPUS, tmp_path / "out", **{**FAST, "head_steps": None, "steps": 2})
    assert not summary["head_added"] and summary["head_steps"] == 0 and summary["head_history"] == []


def test_masked_positions_loss_equals_the_full_forward(tiny_bert_dir, tiny_roberta_dir):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    for folder in (tiny_bert_dir, tiny_roberta_dir):
        model = AutoModelForMaskedLM.from_pretrained(folder).eval()
        loss = _MaskedLMLoss(model, AutoTokenizer.from_pretrained(folder), 32, 0.3, "cpu")
        loss.check_fast_path(CORPUS[:6])
        assert loss.head is not None
        torch.manual_seed(3)
        batch = loss.batch(CORPUS[:6] + ["bad", "it was fine"])  # rows of different lengths
        expected = model(**batch).loss
        for rows in (8, 3, 1):  # one chunk; length-sorted chunks cut to their own longest row
            loss.rows_per_chunk = rows
            assert torch.allclose(loss.fast(batch), expected, atol=1e-5), rows


def test_mlm_loss_goes_down(tiny_bert_encoder_dir, tmp_path):
    summary = adapt(str(tiny_bert_encoder_dir), CORPUS, tmp_path / "out", head_steps=10, steps=40,
                    head_learning_rate=3e-3, learning_rate=3e-3, warmup_ratio=0.0, batch_size=8, max_length=32,
                    show_progress=False)
    curve = summary["head_history"] + summary["full_history"]
    assert np.mean(curve[-5:]) < np.mean(curve[:5]) - 1.0, curve


def test_same_seed_same_weights_other_seed_differs(reference, tiny_bert_encoder_dir, tmp_path):
    out, summary = reference
    again = adapt(str(tiny_bert_encoder_dir), CORPUS, tmp_path / "again", **FAST)
    assert_same_weights(out, tmp_path / "again")
    assert again["full_history"] == summary["full_history"]
    adapt(str(tiny_bert_encoder_dir), CORPUS, tmp_path / "other", **{**FAST, "seed": 1})
    assert not torch.equal(weights(out)["cls.predictions.bias"], weights(tmp_path / "other")["cls.predictions.bias"])


@pytest.mark.parametrize("kill_at", [3, 5, 8])  # phase 1 after a checkpoint; phase 2 first step; phase 2 later
def test_kill_and_resume_matches_an_uninterrupted_run(reference, tiny_bert_encoder_dir, tmp_path, monkeypatch,
                                                      kill_at):
    ref_out, ref_summary = reference
    out = tmp_path / "mlm"
    original = Trainer._average_gradients
    calls = {"n": 0}

    def dying(self):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(Trainer, "_average_gradients", dying)
    with pytest.raises(KeyboardInterrupt):
        adapt(str(tiny_bert_encoder_dir), CORPUS, out, **FAST)
    monkeypatch.setattr(Trainer, "_average_gradients", original)
    assert not out.exists() and Path(f"{out}.partial").is_dir()
    with pytest.raises(PromptlearnError, match="resume"):
        adapt(str(tiny_bert_encoder_dir), CORPUS, out, **FAST)  # neither resume nor overwrite
    with pytest.raises(PromptlearnError, match="other steps"):
        adapt(str(tiny_bert_encoder_dir), CORPUS, out, **{**FAST, "steps": 7}, resume=True)
    summary = adapt(str(tiny_bert_encoder_dir), CORPUS, out, **FAST, resume=True)
    assert summary["resumed"]
    assert_same_weights(ref_out, out)
    assert summary["head_history"] == ref_summary["head_history"]
    assert summary["full_history"] == ref_summary["full_history"]
    assert not Path(f"{out}.partial").exists()


def test_refuses_an_existing_output(tiny_bert_encoder_dir, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    with pytest.raises(PromptlearnError, match=str(out)):
        adapt(str(tiny_bert_encoder_dir), CORPUS, out, **FAST)
    adapt(str(tiny_bert_encoder_dir), CORPUS, out, **{**FAST, "head_steps": 1, "steps": 1}, overwrite=True)
    assert (out / "model.safetensors").is_file()


def test_refuses_causal_models_bad_input(tiny_gpt2_dir, tiny_bert_encoder_dir, tmp_path):
    with pytest.raises(WrongModelKindError, match="causal"):
        adapt(str(tiny_gpt2_dir), CORPUS, tmp_path / "out", **FAST)
    with pytest.raises(DataError, match="no texts"):
        adapt(str(tiny_bert_encoder_dir), ["", "  "], tmp_path / "out", **FAST)
    with pytest.raises(ConfigError):
        adapt(str(tiny_bert_encoder_dir), CORPUS, tmp_path / "out", **{**FAST, "steps": -1})
    assert not (tmp_path / "out").exists()


def test_read_texts(tmp_path):
    (tmp_path / "a.txt").write_text("first line\n\n  second line  \nfirst line\r\nthird\n", encoding="utf-8")
    (tmp_path / "b.csv").write_text('text,label\n"hello, world",1\nthird,0\n', encoding="utf-8")
    (tmp_path / "c.tsv").write_text("sentence\tlabel\nonly field\t1\n", encoding="utf-8")
    (tmp_path / "d.jsonl").write_text('{"review": "from json", "stars": 5}\n{"stars": 1}\n', encoding="utf-8")
    texts = read_texts([tmp_path / "a.txt", tmp_path / "b.csv", tmp_path / "c.tsv"])
    assert texts == ["first line", "second line", "third", "hello, world", "only field"]
    assert read_texts(str(tmp_path / "d.jsonl"), column="review") == ["from json"]
    with pytest.raises(DataError, match="review"):
        read_texts(tmp_path / "d.jsonl")  # two fields, none called text
    with pytest.raises(DataError, match="not found"):
        read_texts(tmp_path / "missing.txt")
    many = tmp_path / "many.txt"
    many.write_text("\n".join(f"text {i}" for i in range(50)) + "\n", encoding="utf-8")
    subset = read_texts(many, max_texts=10, seed=3)
    assert len(subset) == 10 and subset == read_texts(many, max_texts=10, seed=3)
    assert subset != read_texts(many, max_texts=10, seed=4)
    everything = read_texts(many)
    assert [everything.index(t) for t in subset] == sorted(everything.index(t) for t in subset)  # original order


def test_shared_texts_hold_no_test_sentence():
    try:
        root = shared_data_root()
    except DataError:
        pytest.skip("no shared data folder")
    texts = shared_unlabelled_texts(root)
    assert len(texts) == len(set(texts)) > 20_000
    test = {e["text"].strip() for task in ("sst2", "sst5", "mr", "cr", "subj", "trec")
            for e in load_lmbff_task(task, "test", root=root)[0]}
    test |= {e["description"].strip() for e in load_ag_news("test", root=root)[0]}
    assert not test & set(texts)


def test_cli_adapt_end_to_end(tiny_bert_encoder_dir, tmp_path, capsys):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    out = tmp_path / "cli-mlm"
    args = ["adapt", "--model", str(tiny_bert_encoder_dir), "--texts", str(corpus), "--output", str(out),
            "--head-steps", "2", "--steps", "2", "--batch-size", "4", "--max-length", "32", "--threads", "1"]
    assert main(args) == 0
    assert "all weights: 2 steps" in capsys.readouterr().err
    assert load_model(str(out)).kind == "masked"
    assert main(args) == 2  # the output exists now
    err = capsys.readouterr().err
    assert err.startswith("promptlearn: error:") and str(out) in err and err.count("\n") == 1
    assert main([*args[:-8], "--steps", "-1", "--overwrite"]) == 2
    assert "steps must be" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["adapt", "--help"])
    assert "--resume" in capsys.readouterr().out
