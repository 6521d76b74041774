"""PromptClassifier's grouped configuration: nested parameters for scikit-learn (clone, set_params, grid search,
Pipeline), the deprecated flat keywords, tuning configs that carry their own learning rate, and folders saved in
format 1 (flat parameters) still loading."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer

from promptlearn import ConfigError, PromptClassifier
from promptlearn.estimators.options import DemonstrationOptions, ScoringOptions, TrainingOptions
from promptlearn.tuning import LEARNING_RATES, ManualConfig, PTuningConfig, SoftPromptConfig, tuning_config

TEMPLATE = "{{ text }} It was [MASK] ."
VERBALIZER = {"negative": ["terrible"], "positive": ["great"]}
TEXTS = ["a great film", "terrible", "great fun", "awful terrible", "great great", "terrible plot"]
LABELS = ["positive", "negative", "positive", "negative", "positive", "negative"]
FORMAT1 = Path(__file__).parent / "data" / "format1_soft"


def _classifier(model, **options):
    return PromptClassifier(str(model), TEMPLATE, VERBALIZER, show_progress=False, **options)


def test_init_takes_at_most_fifteen_parameters_and_stores_them_as_given():
    import inspect

    names = [n for n, p in inspect.signature(PromptClassifier.__init__).parameters.items()
             if n != "self" and p.kind is not p.VAR_KEYWORD]
    assert len(names) <= 15, names
    training = TrainingOptions(epochs=3)
    clf = PromptClassifier("m", TEMPLATE, VERBALIZER, training=training)
    assert clf.get_params(deep=False)["training"] is training  # scikit-learn: __init__ stores, fit works


def test_nested_parameters_are_visible_settable_and_cloned():
    clf = PromptClassifier("m", TEMPLATE, VERBALIZER, tuning=SoftPromptConfig(n_tokens=4),
                           training=TrainingOptions(epochs=3))
    params = clf.get_params(deep=True)
    assert params["training__epochs"] == 3 and params["tuning__n_tokens"] == 4
    assert params["scoring__batch_size"] == 16 and params["demonstrations__k"] == 0
    before = clf.training
    clf.set_params(training__epochs=5, scoring__batch_size=4, tuning__learning_rate=0.1)
    assert (clf.training.epochs, clf.scoring.batch_size, clf.tuning.learning_rate) == (5, 4, 0.1)
    assert before.epochs == 3  # the group is replaced, never changed: one shared by two classifiers stays
    copy = clone(clf)
    assert copy.get_params(deep=True) == clf.get_params(deep=True)
    assert copy.training is not None and copy.training == clf.training
    clf.set_params(training__epochs=7)
    assert copy.training.epochs == 5


def test_a_named_tuning_method_takes_nested_options_too():
    clf = PromptClassifier("m", TEMPLATE, VERBALIZER, tuning="ptuning")
    clf.set_params(tuning__encoder="mlp")
    assert clf.tuning == PTuningConfig(encoder="mlp") and clf.tuning.learning_rate == LEARNING_RATES["ptuning"]


def test_unknown_nested_names_are_one_line_errors():
    clf = PromptClassifier("m", TEMPLATE, VERBALIZER)
    with pytest.raises(ConfigError, match=r"TrainingOptions has no option\(s\) \['epoch'\]"):
        clf.set_params(training__epoch=3)
    with pytest.raises(ConfigError, match="no parameter group 'optimizer'"):
        clf.set_params(optimizer__lr=3)
    with pytest.raises(ConfigError, match=r"SoftPromptConfig has no option\(s\) \['trainable'\]"):
        clf.set_params(tuning=SoftPromptConfig(), tuning__trainable="top:1")


def test_each_tuning_method_carries_its_learning_rate():
    assert ManualConfig().learning_rate == 1e-5 and SoftPromptConfig().learning_rate == 3e-2
    assert tuning_config("lora").learning_rate == LEARNING_RATES["lora"] == 5e-4
    with pytest.raises(ConfigError, match="learning_rate"):
        tuning_config("soft", SoftPromptConfig(learning_rate=0))


def test_flat_keywords_still_work_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match=r"epochs -> training=TrainingOptions\(epochs=\.\.\.\)"):
        old = PromptClassifier("m", TEMPLATE, VERBALIZER, epochs=3, train_batch_size=4, demos=1, source="soft",
                               source_options={"n_tokens": 2}, learning_rate=0.5, batch_size=8)
    new = PromptClassifier("m", TEMPLATE, VERBALIZER, training=TrainingOptions(epochs=3, batch_size=4),
                           demonstrations=DemonstrationOptions(k=1), scoring=ScoringOptions(batch_size=8),
                           tuning=SoftPromptConfig(n_tokens=2, learning_rate=0.5))
    assert old.get_params(deep=True) == new.get_params(deep=True)
    with pytest.warns(DeprecationWarning):
        old.set_params(demos=2)
    assert old.demonstrations.k == 2
    with pytest.raises(ConfigError, match=r"unexpected keyword\(s\) \['epoch'\]"):
        PromptClassifier("m", TEMPLATE, VERBALIZER, epoch=3)
    with pytest.raises(ConfigError, match=r"SoftPromptConfig has no option\(s\) \['trainable'\]"):
        with pytest.warns(DeprecationWarning):
            PromptClassifier("m", TEMPLATE, VERBALIZER, source="soft", trainable="top:1")


def test_the_grouped_api_raises_no_warning(tiny_bert_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        clf = _classifier(tiny_bert_dir, training=TrainingOptions(max_steps=1, batch_size=2))
        clf.fit(TEXTS[:2], LABELS[:2])
        clone(clf).set_params(training__max_steps=2)


def test_grid_search_over_nested_parameters(tiny_bert_dir):
    clf = _classifier(tiny_bert_dir, training=TrainingOptions(max_steps=2, batch_size=2, checkpoint_minutes=None))
    search = GridSearchCV(clf, {"tuning__learning_rate": [1e-4, 3e-2], "scoring__aggregation": ["mean"]}, cv=2)
    search.fit(TEXTS, LABELS)
    assert {p["tuning__learning_rate"] for p in search.cv_results_["params"]} == {1e-4, 3e-2}
    assert search.best_estimator_.tuning.learning_rate == search.best_params_["tuning__learning_rate"]
    assert search.best_estimator_.predict(TEXTS[:2]).shape == (2,)


def test_a_pipeline_reaches_the_nested_parameters(tiny_bert_dir):
    pipe = make_pipeline(FunctionTransformer(lambda texts: [t.lower() for t in texts]), _classifier(tiny_bert_dir))
    assert isinstance(pipe, Pipeline)
    pipe.set_params(promptclassifier__scoring__batch_size=2, promptclassifier__calibrate=True,
                    promptclassifier__training=TrainingOptions(max_steps=1, batch_size=2))
    classifier = pipe.steps[-1][1]
    assert classifier.scoring.batch_size == 2 and classifier.calibrate and classifier.training.max_steps == 1
    pipe.fit(["A GREAT film", "TERRIBLE"], ["positive", "negative"])
    np.testing.assert_allclose(pipe.predict_proba(["A GREAT film"]), classifier.predict_proba(["a great film"]))


def test_saved_folders_hold_the_groups_and_load_identically(tiny_bert_dir, tmp_path):
    clf = _classifier(tiny_bert_dir, tuning=SoftPromptConfig(n_tokens=2, learning_rate=0.05), seed=3,
                      training=TrainingOptions(max_steps=2, batch_size=2), scoring=ScoringOptions(batch_size=4))
    clf.fit(TEXTS[:4], LABELS[:4])
    clf.save(tmp_path / "soft")
    config = json.loads((tmp_path / "soft" / "config.json").read_text())
    assert config["version"] == 2
    assert config["params"]["tuning"] == {"source": "soft", "learning_rate": 0.05, "n_tokens": 2, "init": "vocab",
                                          "init_text": None}
    assert config["params"]["training"]["max_steps"] == 2 and config["params"]["scoring"]["batch_size"] == 4
    loaded = PromptClassifier.load(tmp_path / "soft", model=str(tiny_bert_dir))
    assert loaded.get_params(deep=True) == {**clf.get_params(deep=True), "model": str(tiny_bert_dir),
                                            "template": loaded.template}
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS))


def test_a_format_1_folder_still_loads(tiny_bert_dir, tmp_path):
    """tests/data/format1_soft was written by the previous release (flat parameters): a soft prompt trained on
    the tiny BERT (learning_rate 0.05, 2 steps, seed 3, calibrated); its predictions were recorded then."""
    folder = tmp_path / "format1"
    shutil.copytree(FORMAT1, folder)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # loading an old folder is not the caller's old API
        clf = PromptClassifier.load(folder, model=str(tiny_bert_dir))
    assert clf.tuning == SoftPromptConfig(n_tokens=2, learning_rate=0.05)
    assert clf.training.max_steps == 2 and clf.training.batch_size == 2 and clf.calibrate and clf.seed == 3
    recorded = np.array([[0.52520869, 0.47479131], [0.52518456, 0.47481544]])
    np.testing.assert_allclose(clf.predict_proba(["a great film", "terrible plot"]), recorded, atol=1e-6)


def test_load_overrides_set_one_option_on_top_of_the_saved_group(tiny_bert_dir, tmp_path):
    clf = _classifier(tiny_bert_dir, scoring=ScoringOptions(batch_size=4, aggregation="max"))
    clf.save(tmp_path / "saved")
    model = str(tiny_bert_dir)
    nested = PromptClassifier.load(tmp_path / "saved", model=model, scoring__batch_size=2)
    assert nested.scoring == ScoringOptions(batch_size=2, aggregation="max")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # load()'s overrides may use the flat names
        flat = PromptClassifier.load(tmp_path / "saved", model=model, batch_size=3, epochs=2)
    assert flat.scoring == ScoringOptions(batch_size=3, aggregation="max") and flat.training.epochs == 2
    whole = PromptClassifier.load(tmp_path / "saved", model=model, scoring=ScoringOptions(batch_size=5))
    assert whole.scoring == ScoringOptions(batch_size=5)
    assert PromptClassifier.accepts_override("scoring__batch_size") and PromptClassifier.accepts_override("demos")
    assert not PromptClassifier.accepts_override("optimizer__lr")


def test_the_classifier_is_a_scikit_learn_classifier_without_importing_it_until_asked():
    import subprocess
    import sys

    code = ("import sys; from promptlearn import PromptClassifier, ScoringOptions; "
            "c = PromptClassifier('m', 't [MASK]', 'sst2', scoring=ScoringOptions(batch_size=4)); "
            "c.get_params(deep=True); repr(c); c.set_params(scoring__batch_size=2); "
            "import promptlearn.core.metrics, promptlearn.cli.diagnostics; "
            "assert 'sklearn' not in sys.modules, 'sklearn imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr  # a command line that scores does not wait ~2 s for scikit-learn
    from sklearn.base import is_classifier

    clf = PromptClassifier("m", TEMPLATE, VERBALIZER, training=TrainingOptions(epochs=3))
    assert is_classifier(clf)
    assert repr(clf) == ("PromptClassifier(model='m', template='{{ text }} It was [MASK] .', training=TrainingOptions("
                         "epochs=3, max_steps=None, batch_size=8, gradient_accumulation_steps=1, warmup_ratio=0.0, "
                         "weight_decay=0.01, eval_every=None, patience=None, checkpoint_dir=None, checkpoint_every=None, "
                         "checkpoint_minutes=10.0, log_every=10, tokens_per_pass=None), verbalizer={'negative': "
                         "['terrible'], 'positive': ['great']})")
    with pytest.raises(ValueError, match="Invalid parameter 'epochz'"):
        clf.set_params(epochz=3)


def test_cross_validation_stratifies_as_for_a_classifier(tiny_bert_dir):
    from sklearn.model_selection import cross_val_score

    clf = _classifier(tiny_bert_dir, training=TrainingOptions(max_steps=1, batch_size=2, checkpoint_minutes=None))
    scores = cross_val_score(clf, TEXTS, LABELS, cv=3)  # stratified folds: every fold holds both classes
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
