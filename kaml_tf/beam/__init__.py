"""The data jobs as Apache Beam pipelines (`--runner`): statistics, Table 1 and conversion.

Beam is an extra (`pip install kaml-tf[beam]`): only the modules of this package import it,
and the jobs import them only when `--runner` is given, so that the library and the local
jobs run without it. `options.require_beam` fails with the install command when it is missing.
"""
