"""Choosing a run's settings on validation data: search space, strategies and the tuner."""
