"""Installs the kaml_tf library with the pinned runtime dependencies (see BUILD.md)."""

import pathlib

import setuptools

HERE = pathlib.Path(__file__).parent


def _requirements(name):
  lines = (HERE / name).read_text().splitlines()
  return [l.strip() for l in lines if l.strip() and not l.startswith("#")]


setuptools.setup(
  name="kaml-tf",
  version="0.1.0",
  description="KAML multi-task CVR prediction on incomplete, skewed multi-label ad data",
  long_description=(HERE / "README.md").read_text(),
  long_description_content_type="text/markdown",
  packages=setuptools.find_packages(include=["kaml_tf", "kaml_tf.*"]),
  python_requires=">=3.9,<3.13",
  install_requires=_requirements("requirements.txt"),
  extras_require={
    "test": _requirements("requirements-dev.txt"),
    # s3:// and hdfs:// for logs, checkpoints and exports (see BUILD.md for the pin).
    "io": ["tensorflow-io==0.37.1"],
    # --runner: the data jobs as Apache Beam pipelines; [tfrecord] adds crcmod, which Beam's
    # TFRecord sink needs (see BUILD.md for the pin).
    "beam": ["apache-beam[tfrecord]==2.77.0"],
  },
)
