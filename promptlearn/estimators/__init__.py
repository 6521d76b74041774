"""The scikit-learn estimators: PromptClassifier, the baselines, PromptEnsemble, PromptBank; saved folders."""
