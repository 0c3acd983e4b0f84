"""Per-action Platt scaling of a trained model's scores (`--calibrate`).

Modules: `platt` (the two-parameter fit, the `Calibration` of a checkpoint, its
`calibration.json` and how it is applied) and `fitting` (fits a model directory's calibration
on validation logs and saves it).
"""
