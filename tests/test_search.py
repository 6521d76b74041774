"""Prompt search (promptlearn.applications.search and `promptlearn search`) on tiny local models."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

from promptlearn import PromptClassifier, PromptSearch, SearchResult, Template, Verbalizer
from promptlearn.cli import main
from promptlearn.core.errors import DataError, PromptlearnError
from promptlearn.scorer import CausalLMScorer, MaskedLMScorer
from promptlearn.applications.search import hotflip, search_label_words, write_results

ROWS = [("good movie .", "positive"), ("bad movie .", "negative"), ("great film .", "positive"),
        ("a bad film .", "negative"), ("a good story .", "positive"), ("bad story .", "negative"),
        ("great acting .", "positive"), ("bad acting .", "negative")]
TEXTS = [t for t, _ in ROWS]
LABELS = [y for _, y in ROWS]
QUICK = dict(top_k_words=4, label_sets=2, infill_beam=2, autoprompt_iterations=3, autoprompt_candidates=4,
             train_steps=3, n_templates=2, show_progress=False)


def _strip_seconds(value):
    if isinstance(value, dict):
        return {k: _strip_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_strip_seconds(v) for v in value]
    return value


@pytest.fixture
def files(tmp_path):
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in ROWS))
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in ROWS[:4]))
    return train, dev


def test_vocabulary_log_probs_agree_with_word_log_probs(tiny_bert_dir, tiny_gpt2_dir):
    template = Template("{{ text }} it was [MASK] .")
    prompts = [template.render({"text": t}) for t in TEXTS[:3]]
    for path, scorer_class, model_class in ((tiny_bert_dir, MaskedLMScorer, AutoModelForMaskedLM),
                                            (tiny_gpt2_dir, CausalLMScorer, AutoModelForCausalLM)):
        tokenizer = AutoTokenizer.from_pretrained(path)
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
        scorer = scorer_class(model_class.from_pretrained(path).eval(), tokenizer, batch_size=2)
        vocab = scorer.vocabulary_log_probs(prompts)
        assert vocab.shape[0] == 3 and torch.allclose(vocab.exp().sum(dim=1), torch.ones(3), atol=1e-4)
        ids = [scorer.word_ids(w, "was", " ")[0] for w in ("good", "bad")]
        expected = scorer.word_log_probs(prompts, ["good", "bad"])
        np.testing.assert_allclose(vocab[:, ids].numpy(), expected, atol=1e-5)
        assert scorer.vocabulary_log_probs([]).shape[0] == 0


def test_end_to_end_files_load_back_and_classify(tiny_bert_dir, tmp_path):
    search = PromptSearch(str(tiny_bert_dir), method="all", seed=3, **QUICK)
    search.fit(TEXTS, LABELS, dev=(TEXTS[:4], LABELS[:4]))
    result = search.result_
    sources = {c.source for c in result.candidates}
    assert {"labels:lm-bff", "labels:petal", "seed", "infill", "autoprompt"} <= sources
    assert [c.trained is not None for c in result.candidates[:2]] == [True, True]
    assert len({(c.template, tuple(map(tuple, c.label_words.values()))) for c in result.candidates}) == \
        len(result.candidates)  # no duplicates
    search.write(tmp_path / "out", task_name="toy")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert len(report["candidates"]) == len(result.candidates) and report["files"][0]["rank"] == 1
    assert "| rank | template |" in (tmp_path / "out" / "report.md").read_text()
    for rank in (1, 2):
        path = tmp_path / "out" / "templates" / "toy" / f"{rank}.j2"
        assert path.read_text().startswith("{# promptlearn search, rank")
        template = Template.load(str(path))
        verbalizer = Verbalizer.load(str(tmp_path / "out" / "verbalizers" / f"toy_{rank}.json"))
        assert template.source.split("\n", 1)[1] == result.candidates[rank - 1].template
        assert verbalizer.to_dict() == result.candidates[rank - 1].label_words
        clf = PromptClassifier(str(tiny_bert_dir), template, verbalizer)
        assert clf.predict_proba(TEXTS[:4]).shape == (4, 2)
    zero_shot = result.candidates[0]
    clf = PromptClassifier(str(tiny_bert_dir), zero_shot.template, zero_shot.label_words)
    assert clf.score(TEXTS[:4], LABELS[:4]) == pytest.approx(zero_shot.zero_shot)  # same scoring as the classifier


def _plant(path):
    """Teach a tiny masked LM that positive texts end 'it was great .' and negative ones 'it was bad .'."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForMaskedLM.from_pretrained(path).eval()
    scorer = MaskedLMScorer(model, tokenizer)
    template, verbalizer = Template("{{ text }} it was [MASK] ."), Verbalizer({"negative": "bad", "positive": "great"})
    prompts = [template.render({"text": t}) for t in TEXTS]
    gold = torch.tensor([verbalizer.classes.index(y) for y in LABELS])
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = -scorer.class_log_scores(prompts, verbalizer)[torch.arange(len(prompts)), gold].mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval(), tokenizer


def test_planted_label_words_are_found(tiny_bert_dir):
    model, tokenizer = _plant(tiny_bert_dir)
    scorer = MaskedLMScorer(model, tokenizer, show_progress=False)
    template = Template("{{ text }} it was [MASK] .")
    gold = np.array([0 if y == "negative" else 1 for y in LABELS])
    examples = [{"text": t} for t in TEXTS]
    found = search_label_words(scorer, template, ["negative", "positive"], (examples, gold), (examples, gold),
                               top_k=5, n_sets=50, words_per_class=2, candidate_words={"negative": ["terrible"]})
    for ranking in ("lm-bff", "petal"):
        assert found.rankings[ranking]["positive"][0][0] == "great"
        assert found.rankings[ranking]["negative"][0][0] == "bad"
    best = sorted(found.candidates, key=lambda c: c.sort_key())[0]
    assert best.label_words == {"negative": ["bad"], "positive": ["great"]} and best.zero_shot == 1.0
    words = {w for c in found.candidates for ws in c.label_words.values() for w in ws}
    assert "terrible" in words and "negative" in words  # multi-token ("terr ##ible") and class-name candidates
    assert any(len(ws) == 2 for c in found.candidates for ws in c.label_words.values())  # PETAL, 2 words/class
    # Through the public API, with the fine-tuned model object and the words hidden.
    search = PromptSearch(model, tokenizer=tokenizer, method="labels", template="{{ text }} it was [MASK] .",
                          **QUICK)
    assert search.fit(TEXTS, LABELS, dev=(TEXTS, LABELS)).result_.candidates[0].label_words == best.label_words


def test_the_given_prompt_is_trained_and_kept_unless_beaten_by_the_margin(tiny_bert_dir):
    model, tokenizer = _plant(tiny_bert_dir)
    right = {"negative": ["bad"], "positive": ["great"]}
    reversed_ = {"negative": ["great"], "positive": ["bad"]}

    def search(verbalizer, margin, **options):
        return PromptSearch(model, tokenizer=tokenizer, method="labels", template="{{ text }} it was [MASK] .",
                            verbalizer=verbalizer, keep_margin=margin, **{**QUICK, **options}).fit(
            TEXTS, LABELS, dev=(TEXTS, LABELS)).result_

    # Zero-shot: the reversed words score 0 on dev, the planted ones 1.0 -- a margin below 1 lets them replace
    # the given prompt; a margin of 1 keeps it first.
    replaced = search(reversed_, 0.1, train_steps=0)
    assert replaced.candidates[0].label_words == right and replaced.candidates[0].source != "given"
    assert any(n.startswith("a found prompt replaced the given one: zero-shot") for n in replaced.notes)
    kept = search(reversed_, 1.0, train_steps=0)
    assert kept.candidates[0].source == "given" and kept.candidates[0].label_words == reversed_
    prompts = [(c.template, c.label_words) for c in replaced.candidates if c.source != "given"]
    assert [(c.template, c.label_words) for c in kept.candidates[1:]] == prompts  # the rest in the same order
    assert any(n.startswith("kept the given prompt first") for n in kept.notes)
    # A found prompt that only ties the given one never replaces it, whatever the margin.
    tied = search(right, 0.0, train_steps=0)
    assert tied.candidates[0].source == "given" and tied.candidates[0].zero_shot == 1.0
    # With training: the given prompt is trained too, though it ranks last zero-shot.
    trained = search(reversed_, 1.0, n_train=1)
    given = [c for c in trained.candidates if c.source == "given"]
    assert len(given) == 1 and given[0].trained is not None and given[0] is trained.candidates[0]
    assert sum(c.trained is not None for c in trained.candidates) == 2
    with pytest.raises(PromptlearnError, match="keep_margin"):
        search(right, 1.5)
    # "auto": the expected luck of the best of N candidates on n dev examples, 0.5 / sqrt(n) * sqrt(2 ln N)
    auto = search(reversed_, "auto", train_steps=0)
    n_found = len(auto.candidates)
    margin = 0.5 / np.sqrt(len(TEXTS)) * np.sqrt(2 * np.log(n_found))
    assert any(f"keep_margin {min(margin, 1.0):.3f}" in n for n in auto.notes), auto.notes


def test_hotflip_changes_triggers_and_lowers_the_loss(tiny_bert_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    model = AutoModelForMaskedLM.from_pretrained(tiny_bert_dir).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scorer = MaskedLMScorer(model, tokenizer, show_progress=False)
    verbalizer = Verbalizer({"negative": "bad", "positive": "great"})
    gold = [verbalizer.classes.index(y) for y in LABELS]
    result = hotflip(scorer, [{"text": t} for t in TEXTS], gold, verbalizer, ["text"], n_triggers=3, iterations=6,
                     n_candidates=8, seed=0)
    assert result.words != result.initial_words and result.loss < result.initial_loss
    assert any(h["swapped"] for h in result.history)
    assert not {w.lower() for w in result.words} & {"bad", "great"}  # label words are never triggers
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model is frozen
    assert all(p.requires_grad for p in model.parameters())  # and its flags are restored


def test_cli_search_is_deterministic(tiny_bert_dir, files, tmp_path, capsys):
    train, dev = files
    reports = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert main(["search", "--model", str(tiny_bert_dir), "--train", str(train), "--dev", str(dev), "--out",
                     str(out), "--task-name", "toy", "--seed", "5", "--n-templates", "2", "--top-k-words", "4",
                     "--autoprompt-iterations", "3", "--train-steps", "3"]) == 0
        reports.append(_strip_seconds(json.loads((out / "report.json").read_text())))
        assert (out / "templates" / "toy" / "1.j2").is_file() and (out / "verbalizers" / "toy_2.json").is_file()
    assert reports[0] == reports[1]
    assert "1. zero-shot" in capsys.readouterr().out
    # An existing report is kept unless --overwrite; then the old prompt files are replaced.
    args = ["search", "--model", str(tiny_bert_dir), "--train", str(train), "--dev", str(dev), "--out",
            str(tmp_path / "a"), "--task-name", "toy", "--method", "labels", "--n-templates", "1", "--train-steps", "0"]
    assert main(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0
    assert not (tmp_path / "a" / "templates" / "toy" / "2.j2").exists()
    assert json.loads((tmp_path / "a" / "report.json").read_text())["method"] == "labels"
    # Extra (multi-token) candidates and several words per class, from the command line.
    assert main(args + ["--overwrite", "--candidate-words", "not good, truly great", "--words-per-class", "2"]) == 0
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["settings"]["words_per_class"] == 2
    assert report["settings"]["candidate_words"] == ["not good", "truly great"]
    assert any(c["source"] == "labels:petal" and all(len(w) == 2 for w in c["label_words"].values())
               for c in report["candidates"])  # the two-words-per-class verbalizer was built and scored
    per_class = tmp_path / "words.json"
    per_class.write_text(json.dumps({"negative": ["not good"], "nonsense": ["x"]}))
    assert main(args + ["--overwrite", "--candidate-words", str(per_class)]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_budget_too_small_stops_cleanly(tiny_bert_dir, files, tmp_path, capsys):
    with pytest.raises(PromptlearnError, match="budget"):
        PromptSearch(str(tiny_bert_dir), budget_minutes=0, show_progress=False).fit(
            TEXTS, LABELS, dev=(TEXTS, LABELS))
    train, dev = files
    code = main(["search", "--model", str(tiny_bert_dir), "--train", str(train), "--dev", str(dev), "--out",
                 str(tmp_path / "out"), "--budget-minutes", "0"])
    assert code == 2 and "budget" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_unit_that_overruns_the_budget_is_reported(tiny_bert_dir, monkeypatch):
    import time

    import promptlearn.applications.search.core as core

    original = core.search_label_words

    def slow(*args, **kwargs):  # a label search slower than the whole budget: it runs to its end, then says so
        time.sleep(0.5)
        return original(*args, **kwargs)

    monkeypatch.setattr(core, "search_label_words", slow)
    result = PromptSearch(str(tiny_bert_dir), method="labels", budget_minutes=0.005, show_progress=False).fit(
        TEXTS, LABELS, dev=(TEXTS, LABELS)).result_
    assert result.candidates and result.seconds > 0.3
    assert any(re.search(r"over its 0\.3 s budget.*slowest stage: labels", note) for note in result.notes), result.notes


def test_bad_input(tiny_bert_dir, tmp_path, capsys):
    with pytest.raises(DataError, match="single class"):
        PromptSearch(str(tiny_bert_dir)).fit(TEXTS, LABELS, dev=(TEXTS[:1], LABELS[:1]))
    with pytest.raises(DataError, match="no training example"):
        PromptSearch(str(tiny_bert_dir), verbalizer={"negative": "bad", "positive": "great", "neutral": "fine"}).fit(
            TEXTS, LABELS, dev=(TEXTS, LABELS))
    with pytest.raises(PromptlearnError, match="method"):
        PromptSearch(str(tiny_bert_dir), method="t5").fit(TEXTS, LABELS, dev=(TEXTS, LABELS))
    dev = tmp_path / "dev.csv"
    dev.write_text("text,label\ngood .,positive\ngreat .,positive\n")
    assert main(["search", "--model", str(tiny_bert_dir), "--train", str(dev), "--dev", str(dev), "--out",
                 str(tmp_path / "o")]) == 2
    assert "single class" in capsys.readouterr().err
    assert main(["search", "--model", str(tiny_bert_dir), "--train", str(dev), "--out", str(tmp_path / "o")]) == 2
    assert "--dev" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["search", "--model", str(tiny_bert_dir), "--data", "sst2", "--out", str(tmp_path / "o"),
              "--keep-margin", "2"])
    assert "--keep-margin: must be auto or a number from 0 to 1, got 2" in capsys.readouterr().err
    result = SearchResult([], ["negative", "positive"], "m", "all", 0, 1, 1)
    with pytest.raises(PromptlearnError, match="task name"):
        write_results(tmp_path, result, task_name="a/b")


@pytest.mark.parametrize("method", ["infill", "all"])
def test_causal_infill_writes_words_before_the_label(tiny_llama_dir, method):
    search = PromptSearch(str(tiny_llama_dir), method=method, verbalizer={"negative": "bad", "positive": "good"},
                          **QUICK)
    result = search.fit(TEXTS, LABELS, dev=(TEXTS, LABELS)).result_
    assert any("causal LM" in note for note in result.notes)
    written = [c for c in result.candidates if c.source == "infill:causal"]
    assert written and all(c.template.startswith("{{ text }}") and c.template.endswith("[MASK]") for c in written)
    assert all(Template(c.template).render({"text": "x"}).text.count("[MASK]") == 1 for c in result.candidates)
    assert not any(c.template.startswith("[MASK]") for c in result.candidates)  # no cloze-first seeds for a causal LM
    if method == "all":
        assert any(c.source == "autoprompt" and c.template.endswith(" [MASK]") for c in result.candidates)


def test_two_fields_and_help(tiny_roberta_dir, capsys):
    pairs = [{"premise": f"the {a} was good .", "hypothesis": f"it was {b} ."}
             for a, b in [("movie", "good"), ("film", "bad"), ("story", "good"), ("game", "bad")]]
    labels = ["entailment", "contradiction", "entailment", "contradiction"]
    search = PromptSearch(str(tiny_roberta_dir), method="infill", verbalizer={"contradiction": "no",
                                                                               "entailment": "yes"}, **QUICK)
    result = search.fit(pairs, labels, dev=(pairs, labels)).result_
    assert any("{{ premise }}" in c.template and "{{ hypothesis }}" in c.template and c.source == "infill"
               for c in result.candidates)
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    text = capsys.readouterr().out
    assert all(word in text for word in ("labels", "infill", "autoprompt", "LM-BFF", "PETAL", "HotFlip"))


def test_combination_beam_finds_the_planted_assignment():
    from promptlearn.applications.search.labels import best_assignments

    rng = np.random.default_rng(0)
    n_classes, n_words, n_dev = 4, 40, 24
    gold = np.arange(n_dev) % n_classes
    dev = rng.normal(-5, 0.3, size=(n_dev, n_words))
    planted = [7, 13, 21, 33]
    for c, w in enumerate(planted):
        dev[gold == c, w] += 3.0  # word w is likely exactly for class c
    cf = rng.normal(-5, 0.3, size=(3, n_words))
    lists = [sorted(set(rng.choice(n_words, 9, replace=False).tolist()) | {w}) for w in planted]
    exhaustive = best_assignments(dev, cf, gold, lists, 1, max_combinations=10**6)
    beam = best_assignments(dev, cf, gold, lists, 3, max_combinations=100, beam=8)
    assert exhaustive[0][0] == tuple(planted) and exhaustive[0][1] == 1.0
    assert beam[0][0] == tuple(planted) and len({a for a, *_ in beam}) == 3
    assert all(len(set(a)) == n_classes for a, *_ in beam)  # never one word for two classes
