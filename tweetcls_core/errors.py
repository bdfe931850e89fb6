"""The errors a command reports as one line, and how it reports them.

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


def report(program: str, err: Exception) -> int:
    """Print ``err`` as the one line a command ends with; return its exit code (2: usage, else 1)."""
    import sys

    print(f"{program}: error: {err}", file=sys.stderr)
    return 2 if isinstance(err, UsageError) else 1
