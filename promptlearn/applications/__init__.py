"""What is built on the estimators: prompt search and continued pretraining (adapt)."""
