"""Simulated app-promotion ad logs with incomplete, skewed multi-label conversions.

`simulator` holds the generative model (`SimulationConfig`, `simulate`, `default_schema`) and
the job that writes a train window and a test day as TFRecord logs (`write_simulation`).
"""
