"""Measurement code behind `python -m pipelines.benchmark` (figures, never pass/fail tests).

Not part of the installed `kaml_tf` library: it runs from a checkout, next to `pipelines/`.
"""
