"""The torch-free core: templates, verbalizers, calibration, input normalisation, errors, metrics."""
