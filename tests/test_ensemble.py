"""PromptEnsemble: combination rules, PET weights, distillation (soft targets), iPET, save/load, CLI.

The combination math and iPET's bookkeeping run on stub members with fixed probabilities; tiny local models
check the real path end to end.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from promptlearn import FineTuneClassifier, PromptClassifier, PromptEnsemble
from promptlearn.cli import main
from promptlearn.estimators.combination import combine_log_probs, combine_predictions
from promptlearn.estimators.ensemble import load_classifier
from promptlearn.core.errors import ConfigError, DataError, PromptlearnError
from promptlearn.estimators.options import TrainingOptions
from promptlearn.tuning import ManualConfig


class Stub(ClassifierMixin, BaseEstimator):
    """A member with fixed probabilities per input text (``probs``); after ``fit``, ``trained`` if given."""

    def __init__(self, probs=None, trained=None, classes=("A", "B", "C"), prior=None):
        self.probs = probs
        self.trained = trained
        self.classes = classes
        self.prior = prior

    @property
    def classes_(self):
        return np.array(self.classes, dtype=object)

    def predict_proba(self, X):
        table = self.trained if self.trained is not None and hasattr(self, "fitted_on_") else self.probs
        return np.array([table[x] for x in X], dtype=np.float64)

    def fit(self, X, y, dev=None):
        self.fit_calls_ = getattr(self, "fit_calls_", 0) + 1
        self.fitted_on_ = (list(X), list(y))
        return self


class CalibratedStub(Stub):
    def content_free_prior(self):
        return np.asarray(self.prior, dtype=np.float64)


# Hand-computed case: three members, two examples, three classes. Labels a -> A, b -> C, so the members'
# accuracies are m0 1/2 (A, B), m1 1 (A, C), m2 1/2 (B, C): PET weights 0.5, 1, 0.5.
P0 = {"a": [0.7, 0.2, 0.1], "b": [0.2, 0.5, 0.3]}
P1 = {"a": [0.5, 0.3, 0.2], "b": [0.1, 0.3, 0.6]}
P2 = {"a": [0.1, 0.6, 0.3], "b": [0.3, 0.3, 0.4]}
PERFECT = {"a": [1.0, 0.0, 0.0], "b": [0.0, 0.0, 1.0]}


def _normalised(rows):
    rows = np.asarray(rows, dtype=np.float64)
    return rows / rows.sum(axis=1, keepdims=True)


def _stubs(**options):
    return [Stub(P0, **options), Stub(P1, **options), Stub(P2, **options)]


def test_mean_log_mean_and_weighted_by_hand():
    members = _stubs(trained=PERFECT)
    mean = PromptEnsemble(members, combine="mean")
    np.testing.assert_allclose(mean.predict_proba(["a", "b"]),
                               [[1.3 / 3, 1.1 / 3, 0.6 / 3], [0.6 / 3, 1.1 / 3, 1.3 / 3]], rtol=1e-12)
    assert list(mean.predict(["a", "b"])) == ["A", "C"]

    third = 1 / 3
    geometric = _normalised([[(0.7 * 0.5 * 0.1) ** third, (0.2 * 0.3 * 0.6) ** third, (0.1 * 0.2 * 0.3) ** third],
                             [(0.2 * 0.1 * 0.3) ** third, (0.5 * 0.3 * 0.3) ** third, (0.3 * 0.6 * 0.4) ** third]])
    np.testing.assert_allclose(PromptEnsemble(members, combine="log_mean").predict_proba(["a", "b"]), geometric,
                               rtol=1e-12)

    weighted = PromptEnsemble(members, combine="weighted")
    with pytest.raises(PromptlearnError, match="fit"):
        weighted.predict_proba(["a"])  # the weights are measured by fit
    weighted.fit(["a", "b"], ["A", "C"])
    np.testing.assert_array_equal(weighted.weights_, [0.5, 1.0, 0.5])  # before training: PERFECT after it
    expected = _normalised([[0.7 ** 0.25 * 0.5 ** 0.5 * 0.1 ** 0.25, 0.2 ** 0.25 * 0.3 ** 0.5 * 0.6 ** 0.25,
                             0.1 ** 0.25 * 0.2 ** 0.5 * 0.3 ** 0.25]])
    unfitted = PromptEnsemble(members, combine="weighted", fit_members=False).fit(["a", "b"], ["A", "C"])
    np.testing.assert_allclose(unfitted.predict_proba(["a"]), expected, rtol=1e-12)
    # The trained members are fitted clones: the given members are untouched.
    assert all(not hasattr(m, "fitted_on_") for m in members)
    assert all(m.fit_calls_ == 1 for m in weighted.members_)
    np.testing.assert_allclose(weighted.predict_proba(["a", "b"]), [[1, 0, 0], [0, 0, 1]], atol=1e-300)


def test_vote_shares_and_tie_break_by_mean_probability():
    members = _stubs()
    vote = PromptEnsemble(members, combine="vote")
    np.testing.assert_allclose(vote.predict_proba(["a", "b"]), [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]])
    assert list(vote.predict(["a", "b"])) == ["A", "C"]
    copy = clone(vote)  # scikit-learn conventions: get_params / clone copy the members too
    assert copy.combine == "vote" and copy.members[0] is not members[0] and copy.members[0].probs == P0
    # Two members, one vote each: the class with the higher mean probability wins.
    two = PromptEnsemble([Stub({"x": [0.6, 0.4], "y": [0.9, 0.1]}, classes=("A", "B")),
                          Stub({"x": [0.3, 0.7], "y": [0.45, 0.55]}, classes=("A", "B"))], combine="vote")
    np.testing.assert_array_equal(two.predict_proba(["x", "y"]), [[0.5, 0.5], [0.5, 0.5]])
    assert list(two.predict(["x", "y"])) == ["B", "A"]  # mean p: x (0.45, 0.55), y (0.675, 0.325)
    indices, probabilities = two.predict_with_proba(["x", "y"])
    assert list(indices) == [1, 0] and probabilities.shape == (2, 2)
    assert two.score(["x", "y"], ["B", "A"]) == 1.0


def test_combine_functions_directly():
    log_probs = np.log(np.array([[[0.8, 0.2]], [[0.4, 0.6]]]))
    np.testing.assert_allclose(np.exp(combine_log_probs(log_probs, "mean")), [[0.6, 0.4]])
    np.testing.assert_allclose(np.exp(combine_log_probs(log_probs, "weighted", [3, 1])),
                               _normalised([[0.8 ** 0.75 * 0.4 ** 0.25, 0.2 ** 0.75 * 0.6 ** 0.25]]))
    np.testing.assert_allclose(np.exp(combine_log_probs(log_probs, "weighted", [0, 0])),  # no weight: equal
                               np.exp(combine_log_probs(log_probs, "log_mean")))
    assert list(combine_predictions(log_probs, "vote")) == [0]  # 1-1, mean p (0.6, 0.4)
    with pytest.raises(ConfigError, match="combine"):
        combine_log_probs(log_probs, "median")


def test_weights_from_dev_and_calibration():
    members = _stubs()
    dev = (["a", "b", "b"], ["B", "C", "C"])  # m0 predicts A, B, B (0/3); m1 A, C, C (2/3); m2 B, C, C (3/3)
    ensemble = PromptEnsemble(members, combine="weighted", weights_from="dev", fit_members=False)
    with pytest.raises(ConfigError, match="dev"):
        ensemble.fit(["a"], ["A"])
    ensemble.fit(["a"], ["A"], dev=dev)
    np.testing.assert_allclose(ensemble.weights_, [0.0, 2 / 3, 1.0])

    prior = [0.5, 0.3, 0.2]
    calibrated = PromptEnsemble([CalibratedStub(P0, prior=prior), CalibratedStub(P1, prior=prior)],
                                calibrate_members=True)
    by_hand = (_normalised(np.array([P0["a"], P0["b"]]) / prior)
               + _normalised(np.array([P1["a"], P1["b"]]) / prior)) / 2
    np.testing.assert_allclose(calibrated.predict_proba(["a", "b"]), by_hand, rtol=1e-12)
    with pytest.raises(ConfigError, match="calibrate"):
        PromptEnsemble(_stubs(), calibrate_members=True).predict_proba(["a"])


def test_members_must_share_classes():
    with pytest.raises(PromptlearnError, match="same classes in the same order"):
        PromptEnsemble([Stub(P0), Stub(P1, classes=("A", "C", "B"))]).predict_proba(["a"])
    with pytest.raises(ConfigError, match="members"):
        PromptEnsemble([]).predict_proba(["a"])
    with pytest.raises(ConfigError, match="combine"):
        PromptEnsemble(_stubs(), combine="max").fit(["a"], ["A"])


# -- iPET ----------------------------------------------------------------------------------------------------
def _ipet_members(n_members, n_unlabeled, seed=0):
    rng = np.random.default_rng(seed)
    texts = [f"u{i}" for i in range(n_unlabeled)]
    members = []
    for _ in range(n_members):
        positive = rng.uniform(0.02, 0.98, size=n_unlabeled)
        probs = {t: [1 - p, p] for t, p in zip(texts, positive)}
        probs.update({"l0": [0.9, 0.1], "l1": [0.2, 0.8], "l2": [0.4, 0.6], "l3": [0.3, 0.7]})
        members.append(Stub(probs, classes=("neg", "pos")))
    return members, texts


def test_ipet_training_sets_follow_the_schedule():
    members, unlabeled = _ipet_members(4, 400)
    X, y = ["l0", "l1", "l2", "l3"], ["neg", "pos", "pos", "pos"]  # class counts 1 : 3
    ensemble = PromptEnsemble(members, ipet_generations=2, seed=7).fit(X, y, unlabeled=unlabeled)
    history = ensemble.ipet_history_
    assert [h["train_sizes"] for h in history] == [[4] * 4, [20] * 4, [100] * 4]  # |T| * 5 ** g
    assert history[1]["scheduled_per_class"] == {"neg": 4, "pos": 12}  # the labelled data's 1 : 3
    assert history[2]["scheduled_per_class"] == {"neg": 24, "pos": 72}
    for generation in history[1:]:
        for i, record in enumerate(generation["members"]):
            # lambda = 0.25 of the 3 others -> max(1, round(0.75)) = 1 labeller, never the member itself
            assert len(record["labellers"]) == 1 and i not in record["labellers"]
            chosen = record["unlabeled_indices"]
            assert len(set(chosen)) == len(chosen) and not record["shortfall"]
            labeller = members[record["labellers"][0]]  # stubs predict the same before and after fit
            expected = ["pos" if labeller.probs[unlabeled[j]][1] > 0.5 else "neg" for j in chosen]
            assert record["labels"] == expected
            scheduled = list(generation["scheduled_per_class"].values())
            assert [record["labels"].count(c) for c in ("neg", "pos")] == scheduled
    # Each generation's members are new clones of the originals, trained once on T plus the new examples.
    for i, member in enumerate(ensemble.members_):
        record = history[2]["members"][i]
        assert member.fit_calls_ == 1 and member is not members[i]
        assert member.fitted_on_ == (X + [unlabeled[j] for j in record["unlabeled_indices"]], y + record["labels"])
    assert all(not hasattr(m, "fitted_on_") for m in members)
    # Seeded: the same seed gives the same sets, another seed others.
    again = PromptEnsemble(members, ipet_generations=2, seed=7).fit(X, y, unlabeled=unlabeled)
    assert again.ipet_history_ == history
    other = PromptEnsemble(members, ipet_generations=1, seed=8).fit(X, y, unlabeled=unlabeled)
    assert other.ipet_history_[1]["members"] != history[1]["members"]


def test_ipet_after_pet_equals_fit_with_generations():
    members, unlabeled = _ipet_members(4, 400)
    X, y = ["l0", "l1", "l2", "l3"], ["neg", "pos", "pos", "pos"]
    together = PromptEnsemble(members, ipet_generations=2, seed=7).fit(X, y, unlabeled=unlabeled)
    pet = PromptEnsemble(members, seed=7).fit(X, y)
    assert [h["generation"] for h in pet.ipet_history_] == [0]
    pet_members = list(pet.members_)
    stepwise = pet.ipet(X, y, unlabeled, generations=2)
    assert stepwise.ipet_history_ == together.ipet_history_
    assert all(a is not b for a, b in zip(stepwise.members_, pet_members))
    # the PET ensemble is left as it was
    assert stepwise is not pet and pet.members_ == pet_members and [h["generation"] for h in pet.ipet_history_] == [0]
    assert all(m.fit_calls_ == 1 and m.fitted_on_ == (X, y) for m in pet.members_)
    with pytest.raises(PromptlearnError, match="call fit"):
        PromptEnsemble(members).ipet(X, y, unlabeled, generations=1)
    with pytest.raises(ConfigError, match="at least one generation"):
        PromptEnsemble(members).fit(X, y).ipet(X, y, unlabeled)  # ipet_generations=0 and none given
    with pytest.raises(DataError, match="unlabelled"):
        PromptEnsemble(members).fit(X, y).ipet(X, y, [], generations=1)


def test_ipet_draws_favour_confident_examples():
    # Even texts: every member is sure (p = 0.99); odd texts: unsure (0.55). Drawing in proportion to the
    # confidence picks sure texts with odds 0.99 : 0.55 (a share of 0.64 before the pools run thin), not 0.5.
    rng = np.random.default_rng(0)
    unlabeled = [f"u{i}" for i in range(400)]
    members = []
    for _ in range(4):
        sides = rng.integers(0, 2, size=len(unlabeled))
        probs = {t: ([0.99, 0.01] if i % 2 == 0 else [0.55, 0.45])[::1 if side else -1]
                 for i, (t, side) in enumerate(zip(unlabeled, sides))}
        probs.update({"l0": [0.9, 0.1], "l1": [0.2, 0.8]})
        members.append(Stub(probs, classes=("neg", "pos")))
    ensemble = PromptEnsemble(members, ipet_generations=2, seed=3)
    ensemble.fit(["l0", "l1"], ["neg", "pos"], unlabeled=unlabeled)
    chosen = [j for generation in ensemble.ipet_history_[1:] for record in generation["members"]
              for j in record["unlabeled_indices"]]
    assert len(chosen) == 4 * (8 + 48)
    assert np.mean([j % 2 == 0 for j in chosen]) > 0.56


def test_ipet_labeller_count_zero_shot_schedule_and_errors():
    members, unlabeled = _ipet_members(9, 300)
    ensemble = PromptEnsemble(members, ipet_generations=2, ipet_scale=2, seed=1).fit(None, None, unlabeled=unlabeled)
    history = ensemble.ipet_history_
    assert history[0]["train_sizes"] == [0] * 9
    # No labelled data: 10 per class first, then x scale per generation.
    assert [h["train_sizes"] for h in history[1:]] == [[20] * 9, [40] * 9]
    assert all(len(r["labellers"]) == 2 for r in history[1]["members"])  # round(0.25 * 8)
    with pytest.raises(DataError, match="unlabelled"):
        PromptEnsemble(members, ipet_generations=1).fit(["l0", "l1"], ["neg", "pos"])
    with pytest.raises(ConfigError, match="two members"):
        PromptEnsemble(members[:1], ipet_generations=1).fit(["l0", "l1"], ["neg", "pos"], unlabeled=unlabeled)
    # Too few unlabelled examples of a class: all of them are taken and the shortfall is recorded.
    small = PromptEnsemble(members[:2], ipet_generations=1).fit(["l0", "l1"], ["neg", "pos"], unlabeled=unlabeled[:6])
    record = small.ipet_history_[1]["members"][0]
    assert record["size"] == 2 + len(record["unlabeled_indices"]) < 10 and record["shortfall"]


# -- soft targets (distillation) in the existing classifiers --------------------------------------------------
POSITIVE = ["good movie .", "great film .", "a good story .", "great acting .", "the actors were good .",
            "a great story .", "good fun .", "great music ."]
NEGATIVE = ["bad movie .", "a bad film .", "bad story .", "bad acting .", "the actors were bad .",
            "a bad story .", "bad fun .", "bad music ."]
X = POSITIVE + NEGATIVE
Y = ["positive"] * 8 + ["negative"] * 8
ONE_HOT = np.eye(2)[[1] * 8 + [0] * 8]
VERBALIZER = {"negative": ["bad"], "positive": ["great"]}
TEMPLATES = ["{{ text }} it was [MASK] .", "[MASK] : {{ text }}"]


def _prompt(path, template=TEMPLATES[0], verbalizer=VERBALIZER, **training):
    """A PromptClassifier that fits 6 steps of 4 examples at learning rate 3e-3 (``training`` changes those)."""
    return PromptClassifier(str(path), template, verbalizer, tuning=ManualConfig(learning_rate=3e-3),
                            training=TrainingOptions(**{"max_steps": 6, "batch_size": 4, **training}), seed=0,
                            show_progress=False)


def test_soft_targets_one_hot_equal_hard_labels(tiny_bert_dir):
    hard = _prompt(tiny_bert_dir).fit(X, Y).predict_proba(X)
    soft = _prompt(tiny_bert_dir).fit(X, ONE_HOT).predict_proba(X)
    np.testing.assert_array_equal(soft, hard)
    options = dict(learning_rate=3e-3, max_steps=4, train_batch_size=8, show_progress=False)
    hard_ft = FineTuneClassifier(str(tiny_bert_dir), **options).fit(X, Y)
    soft_ft = FineTuneClassifier(str(tiny_bert_dir), **options).fit(X, ONE_HOT, classes=["negative", "positive"])
    np.testing.assert_array_equal(soft_ft.predict_proba(X), hard_ft.predict_proba(X))
    # The columns keep the given order (hard labels are sorted).
    swapped = FineTuneClassifier(str(tiny_bert_dir), **options)
    swapped.fit(X, ONE_HOT[:, ::-1], classes=["positive", "negative"])
    assert list(swapped.classes_) == ["positive", "negative"]
    # Soft targets where no example prefers a class are fine (hard labels need every class).
    _prompt(tiny_bert_dir, max_steps=1).fit(X[:2], [[0.4, 0.6], [0.3, 0.7]])


@pytest.mark.parametrize("targets, message", [
    ([[0.5, 0.5, 0.0]] * 16, "columns"), ([[0.7, 0.7]] * 16, "sum to 1"), ([[1.5, -0.5]] * 16, "non-negative"),
])
def test_soft_targets_are_checked(tiny_bert_dir, targets, message):
    with pytest.raises(DataError, match=message):
        _prompt(tiny_bert_dir).fit(X, targets)
    with pytest.raises(DataError, match=message):
        FineTuneClassifier(str(tiny_bert_dir)).fit(X, targets, classes=["negative", "positive"])
    with pytest.raises(ConfigError, match="soft targets"):
        FineTuneClassifier(str(tiny_bert_dir)).fit(X, Y, classes=["negative", "positive"])


# -- distillation ------------------------------------------------------------------------------------------
UNLABELED = [f"{adj} {noun} ." for adj in ("good", "great", "bad", "a bad", "a good", "a great")
             for noun in ("movie", "film", "story", "plot")]


def _sentiment_stub(confidence):
    probs = {t: ([1 - confidence, confidence] if ("good" in t or "great" in t) else [confidence, 1 - confidence])
             for t in UNLABELED}
    return Stub(probs, classes=("negative", "positive"))


def test_distilled_students_agree_with_the_ensemble(tiny_bert_dir):
    ensemble = PromptEnsemble([_sentiment_stub(0.9), _sentiment_stub(0.7)], combine="log_mean")
    targets = ensemble.soft_labels(UNLABELED, temperature=2.0)
    logits = ensemble.predict_log_proba(UNLABELED)
    np.testing.assert_allclose(targets, np.exp(logits / 2) / np.exp(logits / 2).sum(axis=1, keepdims=True))
    expected = ensemble.predict(UNLABELED)
    student = FineTuneClassifier(str(tiny_bert_dir), learning_rate=3e-3, epochs=20, train_batch_size=8, seed=0,
                                 show_progress=False)
    fitted = ensemble.distill(UNLABELED, student, temperature=2.0)
    assert fitted is not student and not hasattr(student, "model_")
    assert list(fitted.classes_) == ["negative", "positive"]
    assert (fitted.predict(UNLABELED) == expected).mean() >= 0.9
    prompt_student = ensemble.distill(UNLABELED, _prompt(tiny_bert_dir, max_steps=None, epochs=40, warmup_ratio=0.1))
    assert (prompt_student.predict(UNLABELED) == expected).mean() >= 0.9
    with pytest.raises(PromptlearnError, match="classes"):
        ensemble.distill(UNLABELED, _prompt(tiny_bert_dir, verbalizer={"bad": ["bad"], "good": ["great"]}))


# -- real members end to end -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tiny_bert_dir):
    members = [_prompt(tiny_bert_dir, template) for template in TEMPLATES]
    before = [clone(m).score(X, Y) for m in members]
    ensemble = PromptEnsemble(members, combine="weighted").fit(X, Y)
    return ensemble, before


def test_pet_weights_are_pre_training_accuracies(trained):
    ensemble, before = trained
    np.testing.assert_array_equal(ensemble.weights_, before)
    assert all(m.training_result_.steps == 6 for m in ensemble.members_)
    assert all(not m._is_fitted() for m in ensemble.members)  # the given members were cloned, not trained
    assert list(ensemble.classes_) == ["negative", "positive"]


def test_save_load_identity(trained, tmp_path):
    ensemble, _ = trained
    ensemble.save(tmp_path / "ensemble")
    assert sorted(p.name for p in (tmp_path / "ensemble" / "members").iterdir()) == ["0", "1"]
    config = json.loads((tmp_path / "ensemble" / "config.json").read_text())
    assert config["format"] == "promptlearn.PromptEnsemble" and config["weights"] == list(ensemble.weights_)
    loaded = load_classifier(tmp_path / "ensemble")
    assert isinstance(loaded, PromptEnsemble) and loaded.combine == "weighted"
    np.testing.assert_array_equal(loaded.weights_, ensemble.weights_)
    np.testing.assert_array_equal(loaded.predict_proba(X), ensemble.predict_proba(X))
    for rule in ("mean", "log_mean", "vote"):
        np.testing.assert_array_equal(loaded.set_params(combine=rule).predict_proba(X),
                                      ensemble.set_params(combine=rule).predict_proba(X))
    ensemble.set_params(combine="weighted")
    with pytest.raises(PromptlearnError, match="exists"):
        ensemble.save(tmp_path / "ensemble")
    with pytest.raises(ConfigError, match="unknown"):
        PromptEnsemble.load(tmp_path / "ensemble", colour="red")
    scoring = ensemble.members_[0].scoring.replace(batch_size=3)  # a member parameter goes to every member
    assert all(m.scoring.batch_size == 3 for m in PromptEnsemble.load(tmp_path / "ensemble", scoring=scoring).members)


def test_shared_model_object_zero_shot_and_copied_for_training(tiny_bert_dir):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model = AutoModelForMaskedLM.from_pretrained(tiny_bert_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert_dir)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    members = [_prompt(tiny_bert_dir, t).set_params(model=model, tokenizer=tokenizer) for t in TEMPLATES]
    zero_shot = PromptEnsemble(members, fit_members=False).fit(X, Y)
    assert zero_shot.members_[0].model_.model is zero_shot.members_[1].model_.model is model
    reference = PromptEnsemble([_prompt(tiny_bert_dir, t) for t in TEMPLATES]).predict_proba(X)
    np.testing.assert_allclose(zero_shot.predict_proba(X), reference, rtol=1e-6)
    trained = PromptEnsemble(members, ipet_generations=1, ipet_scale=2, seed=0).fit(X[::2], Y[::2], unlabeled=X)
    models = [m.model_.model for m in trained.members_]
    assert models[0] is not models[1] and model not in models
    assert all(torch.equal(v, original[k]) for k, v in model.state_dict().items())  # never trained in place
    history = trained.ipet_history_
    assert history[0]["train_sizes"] == [8, 8] and history[1]["scheduled_per_class"] == {"negative": 4, "positive": 4}
    assert all(r["size"] == 8 + len(r["unlabeled_indices"]) <= 16 for r in history[1]["members"])


def test_cli_train_ensemble_then_evaluate(tiny_bert_dir, tmp_path, capsys):
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(X, Y)))
    unlabeled = tmp_path / "unlabeled.csv"
    unlabeled.write_text("text\n" + "".join(f"{t}\n" for t in UNLABELED))
    verbalizer = tmp_path / "verbalizer.json"
    verbalizer.write_text(json.dumps(VERBALIZER))
    common = ["train", "--model", str(tiny_bert_dir), "--template", TEMPLATES[0], "--template", TEMPLATES[1],
              "--verbalizer", str(verbalizer), "--train", str(train), "--learning-rate", "3e-3", "--max-steps", "4",
              "--train-batch-size", "4"]
    output = tmp_path / "ensemble"
    assert main(common + ["--ensemble", "weighted", "--output", str(output)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["members"] == 2 and summary["steps"] == [4, 4] and summary["ensemble"] == "weighted"
    report_path = tmp_path / "r.json"
    assert main(["evaluate", "--model-dir", str(output), "--data", str(train), "--output", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["accuracy"] == pytest.approx(PromptEnsemble.load(output).score(X, Y))
    assert report["template"] == TEMPLATES
    assert main(common + ["--ensemble", "weighted", "--weights-from", "dev", "--output", str(tmp_path / "x")]) == 2
    assert "--weights-from dev needs dev data" in capsys.readouterr().err
    by_dev = tmp_path / "by-dev"
    assert main(common + ["--ensemble", "weighted", "--weights-from", "dev", "--dev", str(train),
                          "--output", str(by_dev)]) == 0
    capsys.readouterr()
    assert PromptEnsemble.load(by_dev).weights_from == "dev"

    student = tmp_path / "student"
    assert main(common + ["--distill", "--unlabeled", str(unlabeled), "--ipet-generations", "1",
                          "--output", str(student)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    # 16 labelled + 32 per class scheduled, but only 24 unlabelled texts: all of them are added.
    assert summary["ipet_train_sizes"] == [[16, 16], [40, 40]]
    assert summary["student"] == "FineTuneClassifier" and summary["distilled_examples"] == len(UNLABELED)
    assert main(["evaluate", "--model-dir", str(student), "--data", str(train)]) == 0
    assert "accuracy" in capsys.readouterr().out

    assert main(common + ["--distill", "--output", str(tmp_path / "x")]) == 2
    assert "--unlabeled" in capsys.readouterr().err
    assert main(common + ["--verbalizer", str(verbalizer), "--verbalizer", str(verbalizer),
                          "--output", str(tmp_path / "x")]) == 2
    assert "--verbalizer" in capsys.readouterr().err
