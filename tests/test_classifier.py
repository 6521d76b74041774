"""PromptClassifier on tiny local models: probabilities, inputs, labels, sklearn API, calibration, save/load."""

from __future__ import annotations

import json
import math
import os

import datasets
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from promptlearn import (DataError, MissingFieldError, PromptClassifier, PromptlearnError, Template, TemplateError,
                         UnknownLabelError, Verbalizer)
from promptlearn.core.calibration import (content_free_examples, content_free_prior, contextual_calibration,
                                     log_normalize)
from promptlearn.estimators.options import ScoringOptions

TEMPLATE = "{{ text }} It was [MASK]."
PAIR_TEMPLATE = "{{ premise }} ? [MASK] , {{ hypothesis }}"
VERBALIZER = {"negative": ["bad", "awful"], "positive": ["great"]}
TEXTS = ["a good movie , the actors were great .", "bad film", "i think the story was boring and slow .", "fine"]
ALL_MODELS = ["tiny_bert_dir", "tiny_roberta_dir", "tiny_gpt2_dir", "tiny_llama_dir"]
MASKED = ["tiny_bert_dir", "tiny_roberta_dir"]
CAUSAL = ["tiny_gpt2_dir", "tiny_llama_dir"]


def make(path, template=TEMPLATE, verbalizer=VERBALIZER, **options) -> PromptClassifier:
    return PromptClassifier(model=str(path), template=template, verbalizer=verbalizer, **options)


@pytest.fixture(params=ALL_MODELS)
def model_dir(request):
    return request.getfixturevalue(request.param)


def _normalise(p: np.ndarray) -> np.ndarray:
    return p / p.sum(axis=1, keepdims=True)


# -- probabilities and predictions ----------------------------------------------------------------

def test_predict_proba_rows_sum_to_one(model_dir):
    clf = make(model_dir)
    probs = clf.predict_proba(TEXTS)
    assert probs.shape == (len(TEXTS), 2)
    assert np.all(np.isfinite(probs)) and np.all(probs > 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(TEXTS)), probs, rtol=1e-6)  # two passes (GPU atomics)
    predicted = clf.predict(TEXTS)
    assert list(predicted) == [clf.classes_[i] for i in probs.argmax(axis=1)]
    assert set(predicted) <= {"negative", "positive"}


def test_three_classes(tiny_bert_dir):
    clf = make(tiny_bert_dir, verbalizer={"neg": ["bad"], "neu": ["fine"], "pos": ["great", "good"]})
    probs = clf.predict_proba(TEXTS)
    assert probs.shape == (len(TEXTS), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_gpt2_dir"])
def test_classes_follow_verbalizer_order(request, fixture):
    path = request.getfixturevalue(fixture)
    forward = make(path, verbalizer={"negative": ["bad"], "positive": ["great"]})
    backward = make(path, verbalizer={"positive": ["great"], "negative": ["bad"]})
    assert list(forward.classes_) == ["negative", "positive"]
    assert list(backward.classes_) == ["positive", "negative"]
    np.testing.assert_allclose(forward.predict_proba(TEXTS), backward.predict_proba(TEXTS)[:, ::-1], rtol=1e-6)
    assert list(forward.predict(TEXTS)) == list(backward.predict(TEXTS))


def test_verbalizer_object_and_file(tiny_bert_dir, tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("negative: bad, awful\npositive: great\n", encoding="utf-8")
    expected = make(tiny_bert_dir).predict_proba(TEXTS)
    for verbalizer in (Verbalizer(VERBALIZER), str(path), path):
        np.testing.assert_array_equal(make(tiny_bert_dir, verbalizer=verbalizer).predict_proba(TEXTS), expected)


# -- input forms ------------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_llama_dir"])
def test_input_forms_give_identical_probabilities(request, fixture):
    clf = make(request.getfixturevalue(fixture))
    expected = clf.predict_proba(TEXTS)
    dicts = [{"text": t, "label": "ignored"} for t in TEXTS]
    forms = {
        "tuple of str": tuple(TEXTS),
        "list of dict": dicts,
        "DataFrame": pd.DataFrame({"text": TEXTS, "label": [0, 1, 0, 1]}),
        "Dataset": datasets.Dataset.from_dict({"text": TEXTS, "label": [0, 1, 0, 1]}),
        "generator": (t for t in TEXTS),
    }
    for name, X in forms.items():
        np.testing.assert_array_equal(clf.predict_proba(X), expected, err_msg=name)
    # A single example is a batch of one: the same as a one-item list, and (up to float32 padding
    # effects of batching) the same as its row in the batch.
    np.testing.assert_array_equal(clf.predict_proba(TEXTS[1]), clf.predict_proba([TEXTS[1]]))
    np.testing.assert_array_equal(clf.predict_proba({"text": TEXTS[2]}), clf.predict_proba([TEXTS[2]]))
    np.testing.assert_allclose(clf.predict_proba(TEXTS[1]), expected[1:2], rtol=1e-5)
    np.testing.assert_allclose(clf.predict_proba({"text": TEXTS[2]}), expected[2:3], rtol=1e-5)
    assert list(clf.predict(pd.DataFrame({"text": TEXTS}))) == list(clf.predict(TEXTS))


def test_two_field_inputs(tiny_bert_dir):
    clf = make(tiny_bert_dir, template=PAIR_TEMPLATE, verbalizer={"yes": ["yes"], "no": ["no"]})
    rows = [{"premise": "it rains", "hypothesis": "the street is wet"}, {"premise": "a", "hypothesis": "b"}]
    expected = clf.predict_proba(rows)
    np.testing.assert_array_equal(clf.predict_proba(pd.DataFrame(rows)), expected)
    np.testing.assert_array_equal(clf.predict_proba(datasets.Dataset.from_list(rows)), expected)


def test_plain_string_with_two_field_template(tiny_bert_dir):
    clf = make(tiny_bert_dir, template=PAIR_TEMPLATE)
    with pytest.raises(DataError, match="hypothesis"):
        clf.predict_proba("a plain string")
    with pytest.raises(DataError, match="item 1"):
        clf.predict_proba([{"premise": "p", "hypothesis": "h"}, "a plain string"])


def test_unsupported_item_type(tiny_bert_dir):
    with pytest.raises(DataError, match="int"):
        make(tiny_bert_dir).predict_proba(["ok", 3])


def test_missing_column_and_nan(tiny_bert_dir):
    clf = make(tiny_bert_dir)
    with pytest.raises(MissingFieldError, match="text"):
        clf.predict_proba(pd.DataFrame({"sentence": ["x"]}))
    with pytest.raises(MissingFieldError, match="text"):
        clf.predict_proba(pd.DataFrame({"text": ["x", None]}))


# -- labels and score ---------------------------------------------------------------------------

def test_score_with_names_and_integer_labels(tiny_gpt2_dir):
    clf = make(tiny_gpt2_dir)
    predicted = list(clf.predict(TEXTS))
    names = ["positive", "negative", "negative", "positive"]
    expected = np.mean([p == t for p, t in zip(predicted, names)])
    indices = [list(clf.classes_).index(n) for n in names]
    assert clf.score(TEXTS, names) == pytest.approx(expected)
    assert clf.score(TEXTS, indices) == pytest.approx(expected)
    assert clf.score(TEXTS, [str(i) for i in indices]) == pytest.approx(expected)
    assert clf.score(TEXTS, predicted) == 1.0
    weights = [1.0, 0.0, 0.0, 0.0]
    assert clf.score(TEXTS, names, sample_weight=weights) == float(predicted[0] == names[0])


def test_score_with_numpy_labels(tiny_bert_dir):
    # scikit-learn (cross_val_score, GridSearchCV) passes y as numpy arrays.
    clf = make(tiny_bert_dir)
    names = np.array(["positive", "negative", "negative", "positive"])
    expected = clf.score(TEXTS, list(names))
    assert clf.score(TEXTS, names) == expected
    assert clf.score(TEXTS, np.array([1, 0, 0, 1])) == expected


@pytest.mark.parametrize("label", ["neutral", 2, "Positive"])
def test_unknown_label(tiny_bert_dir, label):
    clf = make(tiny_bert_dir)
    with pytest.raises(UnknownLabelError) as info:
        clf.score(TEXTS[:2], ["positive", label])
    assert repr(label) in str(info.value)
    assert "negative" in str(info.value) and "positive" in str(info.value)


# -- scikit-learn API -----------------------------------------------------------------------------

def test_clone_and_params_round_trip(tiny_bert_dir):
    clf = make(tiny_bert_dir, calibrate=True,
               scoring=ScoringOptions(aggregation="max", batch_size=3, shortenable=["text"]))
    expected = clf.predict_proba(TEXTS)
    params = clf.get_params()
    copy = clone(clf)
    assert copy is not clf
    assert copy.get_params() == params
    np.testing.assert_array_equal(copy.predict_proba(TEXTS), expected)

    other = PromptClassifier()
    assert other.set_params(**params) is other
    assert other.get_params() == params
    np.testing.assert_array_equal(other.predict_proba(TEXTS), expected)


def test_set_params_invalidates_cached_state(tiny_bert_dir, tiny_gpt2_dir):
    clf = make(tiny_bert_dir)
    clf.predict_proba(TEXTS)  # fill every cache
    changes = [
        {"template": "Review : {{ text }} . [MASK] !"},
        {"verbalizer": {"negative": ["awful"], "positive": ["good"]}},
        {"scoring__aggregation": "max"},
        {"calibrate": True},
        {"model": str(tiny_gpt2_dir)},
    ]
    for change in changes:
        clf.set_params(**change)
        fresh = PromptClassifier(**clf.get_params(deep=False))
        np.testing.assert_array_equal(clf.predict_proba(TEXTS), fresh.predict_proba(TEXTS), err_msg=str(change))


def test_clone_with_model_object(tiny_bert_dir):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(tiny_bert_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    clf = PromptClassifier(model=model, tokenizer=tokenizer, template=TEMPLATE, verbalizer=VERBALIZER)
    np.testing.assert_allclose(clone(clf).predict_proba(TEXTS), clf.predict_proba(TEXTS), rtol=1e-12)
    np.testing.assert_allclose(clf.predict_proba(TEXTS), make(tiny_bert_dir).predict_proba(TEXTS), rtol=1e-12)


def test_model_object_needs_tokenizer(tiny_bert_dir):
    from transformers import AutoModelForMaskedLM

    clf = PromptClassifier(model=AutoModelForMaskedLM.from_pretrained(tiny_bert_dir), template=TEMPLATE,
                           verbalizer=VERBALIZER)
    with pytest.raises(PromptlearnError, match="tokenizer"):
        clf.predict_proba(TEXTS)


def test_missing_template_or_verbalizer(tiny_bert_dir):
    with pytest.raises(PromptlearnError, match="template"):
        PromptClassifier(str(tiny_bert_dir), verbalizer=VERBALIZER).predict_proba(TEXTS)
    with pytest.raises(PromptlearnError, match="verbalizer"):
        PromptClassifier(str(tiny_bert_dir), template=TEMPLATE).predict_proba(TEXTS)


# -- calibration ----------------------------------------------------------------------------------

def test_calibration_functions_by_hand():
    p = np.array([[0.6, 0.4], [0.2, 0.8]])
    prior = np.array([0.75, 0.25])
    # p / prior = [0.8, 1.6] -> [1/3, 2/3];  [0.2667, 3.2] -> [1/13, 12/13]
    calibrated = np.exp(contextual_calibration(np.log(p), prior))
    np.testing.assert_allclose(calibrated, [[1 / 3, 2 / 3], [1 / 13, 12 / 13]], rtol=1e-12)
    # Scores need not be normalised: a constant shift per row changes nothing.
    np.testing.assert_allclose(np.exp(contextual_calibration(np.log(p) + [[3.0], [-7.0]], prior)), calibrated,
                               rtol=1e-12)
    # A uniform prior is the identity.
    np.testing.assert_allclose(np.exp(contextual_calibration(np.log(p), [0.5, 0.5])), p, rtol=1e-12)

    # Content-free prior: mean of the normalised probabilities, renormalised.
    cf_scores = np.log(np.array([[1.0, 1.0], [9.0, 1.0]]))  # -> [0.5, 0.5] and [0.9, 0.1]
    np.testing.assert_allclose(content_free_prior(cf_scores), [0.7, 0.3], rtol=1e-12)

    np.testing.assert_allclose(np.exp(log_normalize([[0.0, math.log(3.0)]])), [[0.25, 0.75]], rtol=1e-12)
    np.testing.assert_allclose(np.exp(log_normalize([[1000.0, 1000.0]])), [[0.5, 0.5]])  # no overflow

    assert content_free_examples({"b", "a"}, ("N/A", "")) == [{"a": "N/A", "b": "N/A"}, {"a": "", "b": ""}]


@pytest.mark.parametrize("fixture, template, content_free", [
    ("tiny_bert_dir", TEMPLATE, ("N/A", "", "[MASK]")),
    ("tiny_roberta_dir", TEMPLATE, ("N/A", "", "[MASK]")),
    ("tiny_gpt2_dir", TEMPLATE, ("N/A", "", "[MASK]")),
    ("tiny_llama_dir", PAIR_TEMPLATE, ("N/A", "", "[MASK]")),
    ("tiny_bert_dir", PAIR_TEMPLATE, ("nothing",)),
])
def test_calibrated_probabilities_by_hand(request, fixture, template, content_free):
    path = request.getfixturevalue(fixture)
    fields = sorted(Template(template).fields)
    if len(fields) == 1:
        X = TEXTS
    else:
        X = [{"premise": t, "hypothesis": "it was " + t} for t in TEXTS]
    raw = make(path, template=template, scoring=ScoringOptions(content_free=content_free))
    # The prior, computed independently: every field set to each content-free token.
    cf_rows = [{field: token for field in fields} for token in content_free]
    cf_probs = raw.predict_proba(cf_rows)
    prior = cf_probs.mean(axis=0)
    prior = prior / prior.sum()
    expected = _normalise(raw.predict_proba(X) / prior)

    calibrated = make(path, template=template, scoring=ScoringOptions(content_free=content_free), calibrate=True)
    got = calibrated.predict_proba(X)
    # The calibrated classifier scores the queries and the content-free inputs in batches of its own, so its float32
    # scores may differ from these in the last bits (more so on GPU kernels); calibration moves them by far more.
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    np.testing.assert_allclose(calibrated.content_free_prior(), prior, rtol=1e-5)
    np.testing.assert_allclose(got, np.exp(contextual_calibration(raw.predict_log_proba(X), prior)), rtol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-9)
    # A single content-free input is calibrated to exactly uniform.
    if len(content_free) == 1:
        np.testing.assert_allclose(calibrated.predict_proba(cf_rows), 0.5, rtol=1e-5)


# -- persistence ----------------------------------------------------------------------------------

def test_save_load_model_by_path(tiny_bert_dir, tmp_path):
    clf = make(tiny_bert_dir, calibrate=True, scoring=ScoringOptions(
        aggregation="max", shortenable=["text"], batch_size=2, content_free=("N/A", "nothing")))
    expected = clf.predict_proba(TEXTS)
    target = clf.save(tmp_path / "saved")
    assert sorted(os.listdir(target)) == ["README.md", "config.json"]  # the card; a model named by path is not copied
    loaded = PromptClassifier.load(target, model=str(tiny_bert_dir))  # a local model outside: named by the caller
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), expected)
    assert loaded.template_ == clf.template_
    assert loaded.verbalizer_ == clf.verbalizer_
    assert loaded.calibrate == clf.calibrate
    for name in ("aggregation", "batch_size", "multi_token", "after_mask"):
        assert getattr(loaded.scoring, name) == getattr(clf.scoring, name)
    assert list(loaded.scoring.shortenable) == ["text"] and tuple(loaded.scoring.content_free) == ("N/A", "nothing")
    overridden = PromptClassifier.load(str(target), model=str(tiny_bert_dir),
                                       scoring=loaded.scoring.replace(batch_size=1))  # overrides
    assert overridden.scoring.batch_size == 1


def test_save_load_template_file_and_causal(tiny_llama_dir, tmp_path):
    template_path = tmp_path / "it_was.j2"
    template_path.write_text("{# comment #}\n{{ text }} It was [MASK].\n", encoding="utf-8")
    clf = make(tiny_llama_dir, template=str(template_path), scoring=ScoringOptions(after_mask="score"))
    expected = clf.predict_proba(TEXTS)
    clf.save(tmp_path / "saved")
    template_path.unlink()  # the saved classifier does not depend on the template file
    np.testing.assert_array_equal(PromptClassifier.load(tmp_path / "saved", model=str(tiny_llama_dir))
                                  .predict_proba(TEXTS), expected)


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_gpt2_dir"])
def test_save_load_model_object(request, fixture, tmp_path):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM, AutoTokenizer

    path = request.getfixturevalue(fixture)
    auto = AutoModelForMaskedLM if fixture == "tiny_bert_dir" else AutoModelForCausalLM
    clf = PromptClassifier(model=auto.from_pretrained(path), tokenizer=AutoTokenizer.from_pretrained(path),
                           template=TEMPLATE, verbalizer=VERBALIZER, calibrate=True)
    expected = clf.predict_proba(TEXTS)
    target = clf.save(tmp_path / "saved")
    assert list((target / "model").glob("*.safetensors")), os.listdir(target / "model")
    assert not list((target / "model").glob("*.bin"))
    config = json.loads((target / "config.json").read_text(encoding="utf-8"))
    assert config["model"] is None
    loaded = PromptClassifier.load(target)
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), expected)


def test_save_refuses_existing_folder(tiny_bert_dir, tmp_path):
    clf = make(tiny_bert_dir)
    target = tmp_path / "saved"
    target.mkdir()
    (target / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(PromptlearnError, match="overwrite"):
        clf.save(target)
    assert (target / "keep.txt").read_text(encoding="utf-8") == "mine"
    clf.save(target, overwrite=True)
    assert not (target / "keep.txt").exists()
    np.testing.assert_array_equal(PromptClassifier.load(target, model=str(tiny_bert_dir)).predict_proba(TEXTS),
                                  clf.predict_proba(TEXTS))
    assert sorted(os.listdir(tmp_path)) == ["saved"]


def test_failed_save_leaves_no_partial_folder(tiny_bert_dir, tmp_path, monkeypatch):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    clf = PromptClassifier(model=AutoModelForMaskedLM.from_pretrained(tiny_bert_dir),
                           tokenizer=AutoTokenizer.from_pretrained(tiny_bert_dir),
                           template=TEMPLATE, verbalizer=VERBALIZER)
    clf.predict_proba(TEXTS[:1])

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(clf.model_.tokenizer, "save_pretrained", fail)  # after the weights were written
    with pytest.raises(RuntimeError, match="disk full"):
        clf.save(tmp_path / "new")
    assert os.listdir(tmp_path) == []

    old = tmp_path / "old"
    old.mkdir()
    (old / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk full"):
        clf.save(old, overwrite=True)
    assert os.listdir(tmp_path) == ["old"]
    assert os.listdir(old) == ["config.json"]
    assert (old / "config.json").read_text(encoding="utf-8") == "{}"


@pytest.mark.parametrize("content", [None, "{not json", "[]", '"text"',
                                     '{"format": "promptlearn.PromptClassifier", "version": 1}',
                                     '{"format": "something.else"}',
                                     '{"format": "promptlearn.PromptClassifier", "version": 99}'])
def test_load_bad_folder(tmp_path, content):
    folder = tmp_path / "saved"
    folder.mkdir()
    if content is not None:
        (folder / "config.json").write_text(content, encoding="utf-8")
    with pytest.raises(PromptlearnError) as info:
        PromptClassifier.load(folder)
    assert str(folder) in str(info.value)


def test_load_missing_folder_and_file_path(tmp_path, tiny_bert_dir):
    with pytest.raises(PromptlearnError, match="nope"):
        PromptClassifier.load(tmp_path / "nope")
    with pytest.raises(PromptlearnError):  # a model folder is not a saved classifier
        PromptClassifier.load(tiny_bert_dir)
    with pytest.raises(PromptlearnError):  # a file, not a folder
        PromptClassifier.load(tiny_bert_dir / "config.json")


# -- edge inputs ------------------------------------------------------------------------------------

def test_empty_input(model_dir):
    clf = make(model_dir)
    assert clf.predict_proba([]).shape == (0, 2)
    assert clf.predict_log_proba([]).shape == (0, 2)
    assert clf.predict([]).shape == (0,)
    assert clf.predict_proba(pd.DataFrame({"text": []})).shape == (0, 2)
    assert make(model_dir, calibrate=True).predict_proba([]).shape == (0, 2)


def test_empty_string_is_scored(model_dir):
    probs = make(model_dir).predict_proba(["", "ok"])
    assert np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.parametrize("fixture", CAUSAL)
def test_empty_prefix_on_causal_model(request, fixture):
    # Nothing before [MASK]: the causal scorer starts from BOS/EOS.
    probs = make(request.getfixturevalue(fixture), template="{{ text }}[MASK] !").predict_proba([""])
    assert np.all(np.isfinite(probs))


def test_very_long_text_is_scored(model_dir):
    long_text = " ".join(["the movie was good and the actors were great ."] * 60)  # ~600 tokens >> 64
    clf = make(model_dir, verbalizer={"negative": ["terrible"], "positive": ["great"]})
    probs = clf.predict_proba([long_text, "short"])
    assert probs.shape == (2, 2) and np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)


def test_very_long_fields_two_field_template(tiny_bert_dir):
    rows = [{"premise": "good " * 200, "hypothesis": "bad " * 200}]
    clf = make(tiny_bert_dir, template=PAIR_TEMPLATE, scoring=ScoringOptions(shortenable=["premise", "hypothesis"]))
    assert np.all(np.isfinite(clf.predict_proba(rows)))


@pytest.mark.parametrize("fixture", ALL_MODELS)
def test_multi_token_label_words(request, fixture):
    path = request.getfixturevalue(fixture)
    verbalizer = {"negative": ["terrible"], "positive": ["wonderful", "great"]}
    parallel = make(path, verbalizer=verbalizer, scoring=ScoringOptions(multi_token="parallel"))
    left_to_right = make(path, verbalizer=verbalizer, scoring=ScoringOptions(multi_token="left_to_right"))
    # Sanity: the word really is several tokens for this tokenizer.
    prompt = parallel.template_.render({"text": "x"})
    anchor, separator = parallel.scorer_.mask_context(prompt)
    assert len(parallel.scorer_.word_ids("terrible", anchor, separator)) > 1

    p, q = parallel.predict_log_proba(TEXTS), left_to_right.predict_log_proba(TEXTS)
    for log_probs in (p, q):
        assert log_probs.shape == (len(TEXTS), 2) and np.all(np.isfinite(log_probs))
        np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, atol=1e-9)
    if fixture in MASKED:
        # Left-to-right decoding conditions later tokens on the filled ones: the scores differ.
        assert np.abs(p - q).max() > 1e-6
    else:
        # Causal LMs score continuations exactly either way: the same computation, up to the order in which GPU
        # kernels (index_add's atomics) sum a word's token log-probabilities.
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-6)


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_gpt2_dir"])
def test_soft_slot_in_manual_template(request, fixture):
    clf = make(request.getfixturevalue(fixture), template="[SOFT:2] {{ text }} It was [MASK].")
    with pytest.raises(TemplateError, match="SOFT"):
        clf.predict_proba(TEXTS)


def test_mask_string_in_example_text(tiny_bert_dir, tiny_roberta_dir):
    for path in (tiny_bert_dir, tiny_roberta_dir):
        probs = make(path).predict_proba(["a [MASK] b <mask> c"])
        assert np.all(np.isfinite(probs))
