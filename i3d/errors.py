"""Errors that reach users as one clear line rather than a traceback."""


class UserError(Exception):
  """Bad input or a missing resource: the message says what is wrong and what to do."""


class CheckpointError(UserError):
  """A checkpoint is missing, corrupt, or does not fit the model."""


class DownloadError(UserError):
  """A file could not be fetched or failed verification; `status` is the HTTP status if any."""

  def __init__(self, message: str, status: int | None = None):
    super().__init__(message)
    self.status = status


class UsageError(UserError):
  """The flags given do not fit together; the command's usage is shown with the message."""
