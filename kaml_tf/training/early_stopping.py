"""Early stopping on the validation metric, and the best checkpoint it keeps.

`EarlyStopping` is the rule: every validation evaluation is recorded; one whose selection
score (`SELECTION_METRIC`, the paper's per-target overall AUC; higher is better) beats the
best so far strictly becomes the best, any other counts against the patience, and after
`patience` evaluations in a row without improvement training stops. An undefined score (None
or NaN: a validation set without positives or negatives) never improves.

The rule's whole state (best, evaluations since the best, stopped, history) is one JSON
string. The trainer keeps it in a string `tf.Variable` of the training checkpoint, so a rerun
after SIGKILL restores the state that belongs to the restored weights and counters.

The best network is kept as

  MODEL_DIR/best/ckpt-<global step>.*   `tf.train.Checkpoint(network=...)` of the best network
  MODEL_DIR/best/best.json              `{"score", "metric", "epoch", "step", "global_step",
                                          "checkpoint": "best/ckpt-<global step>"}`

The checkpoint is written first under a new name, then best.json is replaced atomically, then
the older checkpoints are removed: best.json always names a complete checkpoint.
"""

import dataclasses
import json
import math
import os
from typing import Any, Dict, List, Optional

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

from kaml_tf import atomic

SELECTION_METRIC = "per_target_overall_auc"
BEST_DIR = "best"
BEST_FILE = "best.json"
_PREFIX = "ckpt-"

Entry = Dict[str, Any]


@dataclasses.dataclass
class EarlyStopping:
  """The stopping rule and its state.

  Attributes:
    patience: Evaluations in a row without improvement that stop training (0: never stop).
    best: The best evaluation so far, `{"score", "metric", "epoch", "step", "global_step",
      "checkpoint"}`, or None before any defined score.
    evaluations_since_best: Evaluations after the best one (all of them while `best` is None).
    stopped: Whether the rule has stopped training.
    history: Every evaluation, `{"epoch", "step", "global_step", <metric>: value, ...}`.
  """

  patience: int = 0
  best: Optional[Entry] = None
  evaluations_since_best: int = 0
  stopped: bool = False
  history: List[Entry] = dataclasses.field(default_factory=list)

  @property
  def last_global_step(self) -> Optional[int]:
    """The global step of the latest evaluation, or None before the first."""
    return int(self.history[-1]["global_step"]) if self.history else None

  def update(self, entry: Entry) -> bool:
    """Records one evaluation; returns whether it is the new best.

    Args:
      entry: `{"epoch", "step", "global_step", SELECTION_METRIC: score or None, ...}`.
    """
    self.history.append(dict(entry))
    score = entry[SELECTION_METRIC]
    defined = score is not None and not math.isnan(score)
    improved = defined and (self.best is None or score > self.best["score"])
    if improved:
      self.best = {
        "score": float(score),
        "metric": SELECTION_METRIC,
        "epoch": int(entry["epoch"]),
        "step": int(entry["step"]),
        "global_step": int(entry["global_step"]),
        "checkpoint": best_checkpoint_name(int(entry["global_step"])),
      }
      self.evaluations_since_best = 0
    else:
      self.evaluations_since_best += 1
    if self.patience and self.evaluations_since_best >= self.patience:
      self.stopped = True
    return improved

  def to_json(self) -> str:
    """The state (not the patience, which the run config holds) as JSON."""
    return json.dumps(
      {
        "best": self.best,
        "evaluations_since_best": self.evaluations_since_best,
        "stopped": self.stopped,
        "history": self.history,
      },
      sort_keys=True,
    )

  @classmethod
  def from_json(cls, text: str, patience: int) -> "EarlyStopping":
    """The rule with `patience` in the state of `to_json`; "" is the state before training."""
    if not text:
      return cls(patience=patience)
    state = json.loads(text)
    return cls(
      patience=patience,
      best=state["best"],
      evaluations_since_best=int(state["evaluations_since_best"]),
      stopped=bool(state["stopped"]),
      history=list(state["history"]),
    )


def best_checkpoint_name(global_step: int) -> str:
  """The best checkpoint's prefix relative to the model directory, e.g. `best/ckpt-12`."""
  return f"{BEST_DIR}/{_PREFIX}{int(global_step)}"


def read_best(directory: str) -> Optional[Entry]:
  """The best.json of a model directory (or a worker's scratch), or None without one."""
  path = os.path.join(directory, BEST_DIR, BEST_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def save_best(network: tf.keras.Model, directory: str, best: Entry) -> str:
  """Writes `network` as the best checkpoint of `directory`, then best.json naming it.

  Under MultiWorkerMirroredStrategy every worker must call it (a checkpoint write may be a
  collective); the non-chief ones with a scratch `directory`.

  Args:
    network: The network whose weights scored `best["score"]`.
    directory: The model directory (or a worker's scratch directory).
    best: `EarlyStopping.best`.

  Returns:
    The path prefix of the checkpoint written.
  """
  folder = os.path.join(directory, BEST_DIR)
  tf.io.gfile.makedirs(folder)
  prefix = os.path.join(directory, best["checkpoint"])
  checkpoint = tf.train.Checkpoint(network=network)
  # `write` saves the save counter only if it exists; the strict restore of a trained
  # network (`checkpointing.restore_network`) expects it, as in the training checkpoints.
  checkpoint.save_counter.assign(0)
  checkpoint.write(prefix)
  atomic.write_text(os.path.join(folder, BEST_FILE), json.dumps(best, indent=2) + "\n")
  keep = os.path.basename(prefix) + "."
  for name in tf.io.gfile.listdir(folder):
    path = os.path.join(folder, name.rstrip("/"))
    # Older best checkpoints, and what a write killed midway left (TF's `<prefix>_temp`).
    if name.startswith(_PREFIX) and not name.startswith(keep):
      if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
      else:
        tf.io.gfile.remove(path)
  return prefix
