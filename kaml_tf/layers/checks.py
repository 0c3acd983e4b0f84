"""Argument checks shared by the layers and the model config.

Every check raises `ValueError` naming the owner (layer or config), the argument and quoting the
bad value, so a wrong hyper-parameter fails where it is set rather than deep inside a graph.
"""

from typing import Any, Optional, Sequence, Tuple

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf


def positive_int(value: Any, name: str, owner: str) -> int:
  """Returns `value` if it is an int >= 1 (bools are rejected)."""
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
  return value


def non_negative_float(value: Any, name: str, owner: str) -> float:
  """Returns `value` as a float if it is a finite number >= 0."""
  is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
  if not is_number or not 0 <= value < float("inf"):
    raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")
  return float(value)


def dropout_rate(value: Any, owner: str) -> float:
  """Returns `value` as a float if it is a rate in [0, 1)."""
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
    raise ValueError(f"{owner}: dropout must be in [0, 1), got {value!r}")
  return float(value)


def units(value: Any, name: str, owner: str, allow_empty: bool = True) -> Tuple[int, ...]:
  """Returns layer widths as a tuple of positive ints (a list, e.g. from JSON, is accepted)."""
  if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
    raise ValueError(f"{owner}: {name} must be a sequence of positive integers, got {value!r}")
  if not value and not allow_empty:
    raise ValueError(f"{owner}: {name} needs at least one layer, got {value!r}")
  for u in value:
    if isinstance(u, bool) or not isinstance(u, int) or u < 1:
      raise ValueError(f"{owner}: {name} must contain positive integers, got {value!r}")
  return tuple(value)


def activation(value: Any, owner: str) -> Optional[str]:
  """Returns the name of a Keras activation (`None` means linear); rejects unknown names.

  Only names are accepted (not callables) so that every layer config stays JSON-serialisable.
  """
  if value is None:
    return None
  if not isinstance(value, str):
    raise ValueError(f"{owner}: activation must be the name of a Keras activation, got {value!r}")
  try:
    tf.keras.activations.get(value)
  except ValueError:
    raise ValueError(f"{owner}: unknown activation {value!r}") from None
  return value
