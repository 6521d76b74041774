"""Engines that run a saved classifier elsewhere than in one Python process.

- :mod:`.ray`: :class:`~promptlearn.integrations.ray.ClassifierPredictor`, a callable class for Ray Data's
  ``Dataset.map_batches`` (``pip install 'promptlearn[ray]'``); ``promptlearn classify --engine ray`` runs on it.

Nothing here is imported by the rest of the library, and importing this package imports no engine (nor ray).
"""
