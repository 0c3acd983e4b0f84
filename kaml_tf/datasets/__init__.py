"""Datasets in this project's log format: generated (`simulation`) and converted (`kuairand`).

Both write their logs through `output` (shards, `schema.json`, the report file, each atomic),
count their data report with `report` and declare their config fields with `fields`.
"""
