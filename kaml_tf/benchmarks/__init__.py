"""Measurement code behind `python -m pipelines.benchmark` (figures, never pass/fail tests)."""
