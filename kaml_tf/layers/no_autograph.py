"""`no_autograph`: keep AutoGraph away from a layer's `call`, without hiding its signature.

tf-keras wraps a custom layer's `call` in AutoGraph when it is called symbolically (functional
construction, `tf.function` training steps). Our calls have no Python control flow that depends
on tensor values, so conversion buys nothing; it costs a lot, because each nested sublayer call
makes AutoGraph transpile tf-keras' own `Layer.__call__` (tf_keras is not on AutoGraph's list of
modules to skip), and building one model becomes many times slower
(measured: docs/results/timings/library.md#autograph-and-model-building).

`tf.autograph.experimental.do_not_convert` alone would do, except that its wrapper has the
signature `(*args, **kwargs)`: Keras reads `call`'s signature to decide whether to pass
`training` and `mask`, and would then pass them to calls that take neither. Restoring
`__signature__` (which `inspect`, and so Keras, honours) keeps Keras' view of the arguments.
"""

import functools
import inspect
from typing import Callable, TypeVar

import kaml_tf  # noqa: F401  (pins Keras 2 before TensorFlow is imported)
import tensorflow as tf

_F = TypeVar("_F", bound=Callable)


def no_autograph(method: _F) -> _F:
  """Decorates a layer's `call` so AutoGraph leaves it (and what it calls) unconverted.

  Args:
    method: The undecorated `call(self, ...)`.

  Returns:
    The wrapped method, with `method`'s signature, name and docstring.
  """
  wrapped = tf.autograph.experimental.do_not_convert(method)
  functools.update_wrapper(wrapped, method)
  wrapped.__signature__ = inspect.signature(method)
  return wrapped
