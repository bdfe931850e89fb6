"""One exception type for mistakes the user can fix.

The command-line entry points catch it, print its message as one line and exit with
code 2, so bad input never surfaces as a traceback from deep inside a library.
"""


class UsageError(ValueError):
    """Bad input from the user: the message names the problem and the fix."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step."""


class StorageFull(RuntimeError):
    """The disk filled up while writing; nothing half-written was left behind."""


class Interrupted(RuntimeError):
    """SIGTERM or Ctrl-C stopped training; ``exit_code`` is 143 or 130, the message says how to go on."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code
