"""Datasets in this project's log format: generated (`simulation`) and converted (`kuairand`)."""
