"""Simulated app-promotion ad logs with incomplete, skewed multi-label conversions.

`simulator` is the public face: `SimulationConfig`, `simulate`, `default_schema` and the job
that writes a train window and a test day as TFRecord logs (`write_simulation`). It composes
`config`, `world` (drawn once per seed), `rows` (drawn day by day), `sampling` and `report`.
"""
