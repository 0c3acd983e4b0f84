"""The daily loop's bad-input error and the exit codes a scheduler sees."""

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_BAD_INPUT = 2
# The day finished (promoted or kept) but its report holds alerts (`kaml_tf.daily.alerts`).
EXIT_ALERT = 3


class InputError(ValueError):
  """The day's input cannot be used (missing, invalid, or of another schema); nothing was
  changed in production. Its message says what and where."""
