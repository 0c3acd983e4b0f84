"""A trained network rebuilt from its model directory, for evaluation and export.

The network is rebuilt from the saved `config.json` and `schema.json` and its weights restored
strictly from a checkpoint: by default the best one (`MODEL_DIR/best/`, kept by early stopping
on the validation metric) when there is one, else the latest. `predict_all` scores every action as if it were the
sample's target: with HKE that is the "original" sub-tower of every action (indicator all
ones), which is what the serving selector returns for a row's target action.

When the model directory holds a `calibration.json` fitted for the restored checkpoint
(`pipelines.train --calibrate`), `predict_all` returns the calibrated probabilities
sigmoid(a_j * logit_j + b_j); `logits_all` stays the network's raw logits.
"""

import dataclasses
import os
from typing import Callable, Dict, Optional, Tuple

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf import schema as schema_lib
from kaml_tf.calibration import platt
from kaml_tf.models import builder
from kaml_tf.training import checkpointing
from kaml_tf.training import config as config_lib
from kaml_tf.training import early_stopping
from kaml_tf.training import model_dir as model_dir_lib

HKE_INPUT = schema_lib.HKE_INDICATOR
BEST = "best"
LATEST = "latest"
CHECKPOINTS = (BEST, LATEST)


@dataclasses.dataclass
class TrainedModel:
  """A restored network with its schema, run config and (if any) calibration.

  Attributes:
    checkpoint: Absolute path prefix of the checkpoint restored.
    checkpoint_name: The same, relative to the model directory (e.g. `best/ckpt-12` or
      `checkpoints/ckpt-3`): what metrics and exports record.
    calibration: The Platt scaling fitted for `checkpoint`, or None: raw probabilities.
  """

  schema: schema_lib.Schema
  run_config: config_lib.RunConfig
  network: tf.keras.Model
  checkpoint: str
  checkpoint_name: str = ""
  calibration: Optional[platt.Calibration] = None
  _traced: Optional[Callable] = dataclasses.field(
    default=None, init=False, repr=False, compare=False
  )

  @property
  def uses_indicator(self) -> bool:
    return HKE_INPUT in self.network.input_names

  def logits_all(self, features: Dict[str, tf.Tensor]) -> tf.Tensor:
    """Logits (batch, N), each action scored as the target (HKE original sub-towers).

    Args:
      features: `{feature name: (batch,) tensor}`; extra keys are ignored.
    """
    inputs = {k: features[k] for k in self.schema.feature_names}
    if self.uses_indicator:
      batch = tf.shape(inputs[self.schema.feature_names[0]])[0]
      inputs[HKE_INPUT] = tf.ones([batch, self.schema.num_actions], tf.float32)
    return self.network(inputs, training=False)

  def calibrated_logits(self, logits: tf.Tensor) -> tf.Tensor:
    """The logits (batch, N) of the served probabilities: a_j * logits_j + b_j if calibrated."""
    return logits if self.calibration is None else self.calibration.calibrated_logits(logits)

  def probabilities(self, logits: tf.Tensor) -> tf.Tensor:
    """The served probabilities (batch, N) of raw logits (batch, N): calibrated if calibrated."""
    return tf.sigmoid(self.calibrated_logits(logits))

  def predict_all(self, features: Dict[str, tf.Tensor]) -> tf.Tensor:
    """Probabilities (batch, N), each action scored as the target (calibrated if calibrated)."""
    return self.probabilities(self.logits_all(features))

  def scores(self, features: Dict[str, tf.Tensor]) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """(raw logits, raw probabilities, served probabilities), each (batch, N)."""
    logits = self.logits_all(features)
    return logits, tf.sigmoid(logits), self.probabilities(logits)

  def traced_scores(self) -> Callable[[Dict[str, tf.Tensor]], Tuple[tf.Tensor, ...]]:
    """`scores` as one `tf.function`, made once per model and reused by every caller.

    A model scored again and again (the validation set during training) then traces once,
    not once per pass.
    """
    if self._traced is None:
      self._traced = tf.function(self.scores, reduce_retracing=True, autograph=False)
    return self._traced


def checkpoint_path(model_dir: str, checkpoint: str = BEST) -> Optional[str]:
  """The checkpoint prefix `load` restores, or None when the directory has none.

  Args:
    model_dir: The model directory.
    checkpoint: `best` (the best checkpoint if the run kept one, else the latest) or `latest`.

  Raises:
    ValueError: for another `checkpoint`, naming the flag.
  """
  if checkpoint not in CHECKPOINTS:
    raise ValueError(f"checkpoint: expected one of {list(CHECKPOINTS)}, got {checkpoint!r}")
  best = early_stopping.read_best(model_dir) if checkpoint == BEST else None
  if best is not None:
    return os.path.join(model_dir, best["checkpoint"])
  return tf.train.latest_checkpoint(os.path.join(model_dir, model_dir_lib.CHECKPOINT_DIR))


def load(model_dir: str, checkpoint: str = BEST) -> TrainedModel:
  """Rebuilds and strictly restores the network trained in `model_dir`.

  Args:
    model_dir: The model directory.
    checkpoint: `best` (default: the best checkpoint if the run kept one, else the latest)
      or `latest`.

  Raises:
    platt.CalibrationError: if `calibration.json` is malformed or of other actions.
  """
  run_config = config_lib.RunConfig.load(model_dir)
  schema = schema_lib.Schema.load(schema_lib.schema_path(model_dir))
  network = builder.build_model(schema, run_config.model)
  path = checkpointing.restore_network(
    network, model_dir, path=checkpoint_path(model_dir, checkpoint)
  )
  return TrainedModel(
    schema=schema,
    run_config=run_config,
    network=network,
    checkpoint=os.path.abspath(path),
    checkpoint_name=os.path.relpath(path, model_dir),
    calibration=platt.for_checkpoint(model_dir, schema.actions, path),
  )
