"""The error of a table the protocol cannot apply to."""


class ConversionError(ValueError):
  """The input is malformed or a split would be empty; the message names the file, row and
  column where there is one."""
