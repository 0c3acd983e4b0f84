"""Checkpoints that make a killed training job resumable, and strict restores for export.

The checkpoint holds the network, the optimizer (and the embedding tables' own optimizer, when
the run has one: `kaml_tf.training.optimizers`), and where training stood: the epoch and the
number of batches already done within it. A rerun restores the latest checkpoint, reopens the
epoch's deterministic shuffle (seeded by epoch) and skips the batches already done, so a run
interrupted mid-epoch ends where an uninterrupted one would.
"""

import os
from typing import Dict, Optional

import kaml_tf  # noqa: F401
import tensorflow as tf

from kaml_tf.training import cluster


class CheckpointMismatchError(ValueError):
  """A model directory's checkpoint does not fit the network its config and schema build.

  Attributes:
    model_dir: The model directory.
    checkpoint: The checkpoint path that was restored.
    detail: TensorFlow's message (unmatched objects, or the mismatching shapes).
  """

  def __init__(self, model_dir: str, checkpoint: str, detail: str):
    super().__init__(
      f"{model_dir}: the checkpoint {checkpoint} does not match the network built from its "
      f"config.json and schema.json (were they replaced after training, e.g. by another "
      f"schema's?): {detail}"
    )
    self.model_dir = model_dir
    self.checkpoint = checkpoint
    self.detail = detail


class CheckpointState:
  """Network + optimizer + progress counters, saved by a `tf.train.CheckpointManager`.

  Attributes:
    epoch: Epochs completed (int64 variable).
    step_in_epoch: Batches done within the current epoch (int64 variable).
    global_step: Batches trained in total (int64 variable). Not `optimizer.iterations`: when
      a dataset of unknown length runs out, tf-keras's train function still increments that
      counter once per epoch (its assign has no data dependency on the failed read).
  """

  def __init__(
    self,
    network: tf.keras.Model,
    optimizer: tf.keras.optimizers.Optimizer,
    directory: str,
    max_to_keep: int = 3,
    extra: Optional[Dict[str, tf.Variable]] = None,
    embedding_optimizer: Optional[tf.keras.optimizers.Optimizer] = None,
  ):
    """Creates the counters and the manager.

    Args:
      network: The network.
      optimizer: Its optimizer.
      directory: Where the manager keeps the checkpoints.
      max_to_keep: Checkpoints kept.
      extra: More state saved and restored with the progress (e.g. the early-stopping
        state); a checkpoint written without it restores it to its initial value.
      embedding_optimizer: The embedding tables' optimizer, if not `optimizer`; saved as
        `embedding_optimizer` (a run without one writes the same checkpoint as before it
        existed).
    """
    self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    self.step_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="step_in_epoch")
    self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
    self.checkpoint = tf.train.Checkpoint(
      network=network,
      optimizer=optimizer,
      epoch=self.epoch,
      step_in_epoch=self.step_in_epoch,
      global_step=self.global_step,
      **optional_optimizer(embedding_optimizer),
      **(extra or {}),
    )
    self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=max_to_keep)

  def restore_latest(self) -> Optional[str]:
    """Restores the newest checkpoint, if any; returns its path."""
    path = self.manager.latest_checkpoint
    if path:
      # Optimizer slots only exist after the first step; `expect_partial` keeps them deferred.
      self.checkpoint.restore(path).assert_existing_objects_matched().expect_partial()
    return path

  def save(self) -> str:
    return self.manager.save()


def optional_optimizer(
  embedding_optimizer: Optional[tf.keras.optimizers.Optimizer],
) -> Dict[str, tf.keras.optimizers.Optimizer]:
  """The checkpoint entry of the embedding tables' optimizer: {} when the run has none."""
  return {"embedding_optimizer": embedding_optimizer} if embedding_optimizer is not None else {}


class CheckpointCallback(tf.keras.callbacks.Callback):
  """Saves every `every_steps` batches and at the end of every epoch.

  With a `validation` hook (`kaml_tf.training.validation_loop.ValidationLoop`), the hook is
  asked after every batch and at every epoch end whether it evaluated (and so changed state
  held in the checkpoint); if so a checkpoint is saved there, then the hook's `after_save`
  runs (it writes the best checkpoint), and training stops when the hook says so.
  `batches_done` is how many batches of the current epoch a resumed run had already done,
  so that the epoch's step count continues from there.

  Under parameter-server training Keras calls the batch hooks when it has scheduled a step,
  with logs that are still `RemoteValue`s (this callback reads none of them); a save first
  waits for the scheduled steps to run, so the checkpoint holds the steps it counts.
  """

  def __init__(self, state: CheckpointState, every_steps: int, batches_done: int, validation=None):
    super().__init__()
    # Tells Keras that the batch hooks accept RemoteValue logs (else it refuses the callback
    # under ParameterServerStrategy).
    self._supports_tf_logs = True
    self._state = state
    self._every = every_steps
    self._resumed_at = batches_done
    self._done = batches_done
    self._validation = validation

  def on_train_batch_end(self, batch, logs=None):
    done = self._resumed_at + batch + 1
    self._done = done
    self._state.step_in_epoch.assign(done)
    self._state.global_step.assign_add(1)
    evaluated = self._validation is not None and self._validation.after_step(
      int(self._state.epoch), done, int(self._state.global_step)
    )
    if evaluated or (self._every and done % self._every == 0):
      self._save()
    if evaluated:
      self._after_save()

  def on_epoch_end(self, epoch, logs=None):
    self._state.epoch.assign(epoch + 1)
    self._state.step_in_epoch.assign(0)
    evaluated = self._validation is not None and self._validation.after_epoch(
      epoch, self._done, int(self._state.global_step)
    )
    self._save()
    if evaluated:
      self._after_save()

  def _save(self) -> None:
    cluster.wait_for_scheduled_steps(self.model.distribute_strategy)
    self._state.save()

  def _after_save(self) -> None:
    self._validation.after_save()
    if self._validation.stopped:
      self.model.stop_training = True


def restore_network(
  network: tf.keras.Model,
  model_dir: str,
  checkpoint_dir: str = "checkpoints",
  path: Optional[str] = None,
) -> str:
  """Restores the latest trained weights (or those of `path`) into `network`, strictly.

  Every variable of `network` must be found in the checkpoint (a network built from another
  config fails loudly); optimizer state and counters in the checkpoint are ignored.

  Args:
    network: The network built from the model directory's config and schema.
    model_dir: The model directory.
    checkpoint_dir: Its training checkpoints' folder.
    path: A checkpoint prefix to restore instead of the latest (e.g. the best checkpoint).

  Returns:
    The checkpoint path restored.

  Raises:
    FileNotFoundError: if the model directory has no checkpoint.
    CheckpointMismatchError: naming `model_dir`, if a variable of the network is not in the
      checkpoint or has another shape there.
  """
  path = path or tf.train.latest_checkpoint(os.path.join(model_dir, checkpoint_dir))
  if not path:
    raise FileNotFoundError(
      f"{model_dir}: no checkpoint under {checkpoint_dir}/; train first "
      "with `python -m pipelines.train`"
    )
  try:
    status = tf.train.Checkpoint(network=network).restore(path)
    status.assert_existing_objects_matched().expect_partial()
  except (AssertionError, ValueError) as e:
    # Unmatched objects (AssertionError) or shape mismatches (ValueError): TF's messages name
    # a variable but not the directory, which is what the user has to fix.
    raise CheckpointMismatchError(model_dir, path, str(e)) from e
  return path
