"""One exception type for mistakes the user can fix.

The command-line entry points catch it, print its message as one line and exit with
code 2, so bad input never surfaces as a traceback from deep inside a library.
"""


class UsageError(ValueError):
    """Bad input from the user: the message names the problem and the fix."""


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step."""
