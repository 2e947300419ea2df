"""The base of errors whose message is complete for the user: a stage prints it and exits 2, no traceback."""


class StageError(RuntimeError):
    """An error whose message is complete for the user: printed without a traceback."""
