"""The errors a command reports as one line, and how it reports them.

The command-line entry points catch it, print its message as one line and exit with
code 2, so bad input never surfaces as a traceback from deep inside a library.
"""

from collections.abc import Iterator
from contextlib import contextmanager


class UsageError(ValueError):
    """Bad input from the user: the message names the problem and the fix."""


class ParameterError(UsageError):
    """A bad argument of a library function, named as the library names it: ``batch_size must be
    > 0, got 0`` (a Python user passed ``batch_size``). A command that filled the argument from a
    flag names the flag instead (``report(..., flags=...)``): ``--batch-size must be > 0, got 0``."""

    def __init__(self, parameter: str, problem: str) -> None:
        super().__init__(f"{parameter} {problem}")
        self.parameter = parameter
        self.problem = problem


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the step."""


class StorageFull(RuntimeError):
    """The disk filled up while writing; nothing half-written was left behind."""


class Interrupted(RuntimeError):
    """SIGTERM or Ctrl-C stopped training; ``exit_code`` is 143 or 130, the message says how to go on."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code



@contextmanager
def lightning_interruptions(trainer, doing: str, way_on: str) -> Iterator[None]:
    """Ctrl-C or SIGTERM during a Lightning ``validate``/``test``/``predict`` call, as ``Interrupted``
    (exit 130 / 143, one line: ``stopped by SIGTERM while <doing>; <way_on>``).

    Lightning turns Ctrl-C into ``sys.exit(1)`` after its own line; SIGTERM into a bare
    ``SystemExit`` (exit status 0: a killed evaluate.py looked like a success) in a test loop, and
    into nothing at all in ``predict``, which only notes it and runs on (a teacher's labelling pass
    ignored ``kill``)."""
    try:
        yield
    except SystemExit as stop:
        by_sigterm = type(stop).__name__ == "SIGTERMException" or bool(getattr(trainer, "received_sigterm", False))
        raise Interrupted(f"{'stopped by SIGTERM' if by_sigterm else 'interrupted'} while {doing}; {way_on}",
                          143 if by_sigterm else 130) from None
    if getattr(trainer, "received_sigterm", False):
        raise Interrupted(f"stopped by SIGTERM while {doing}; {way_on}", 143)

# what each errno means for the user, and the way on; the path comes first in the line
OS_ERRORS = {
    "EROFS": (2, "the file system is read-only; choose a folder on a writable disk"),
    "EACCES": (2, "permission denied; choose a folder you may write to"),
    "EPERM": (2, "operation not permitted; choose a folder you may write to"),
    "ENAMETOOLONG": (2, "a name in this path is too long for the file system; choose a shorter name"),
    "ENOTDIR": (2, "a part of this path is a file, not a folder; choose another path"),
    "EISDIR": (2, "this is a folder, not a file; give a file name"),
    "ENOENT": (2, "no such file or folder; check the path"),
    "EEXIST": (2, "this already exists; choose another name"),
    "ENOSPC": (1, "no space left on the device; free some space and run the command again"),
    "EDQUOT": (1, "the disk quota is used up; free some space and run the command again"),
    "EFBIG": (1, "the file grew past the file-size limit (ulimit -f) or what the file system allows; "
                 "raise the limit or write elsewhere"),
    "EMFILE": (1, "too many open files; raise ulimit -n"),
    "EIO": (1, "input/output error from the device; check the disk"),
}
REPORTED = (UsageError, TrainingDiverged, StorageFull, OSError)  # what a command's main() reports as one line


def os_error_line(err: OSError) -> tuple[int, str]:
    """(exit code, one line naming the path) for any OSError: a read-only disk, a name too long,
    a file where a folder should be, a full disk or a file-size limit (2: the path given is the
    problem, 1: the machine is)."""
    import errno

    code, meaning = OS_ERRORS.get(errno.errorcode.get(err.errno or -1, ""), (1, err.strerror or str(err) or
                                                                              type(err).__name__))
    path = err.filename if err.filename2 is None else f"{err.filename} -> {err.filename2}"
    if path is None:
        return code, meaning if err.strerror else (str(err) or meaning)
    return code, f"{path}: {meaning}"


def flags_of(parser, **aliases: str) -> dict[str, str]:
    """Library parameter -> the flag that fills it: each option's dest (``batch_size`` ->
    ``--batch-size``), and ``aliases`` where the library's name differs (``r="--lora-r"``)."""
    flags = {a.dest: a.option_strings[-1] for a in parser._actions if a.option_strings and a.dest != "help"}
    return flags | aliases


def report(program: str, err: Exception, flags: dict[str, str] | None = None) -> int:
    """Print ``err`` as the one line a command ends with; return its exit code (2: usage, else 1).
    A ParameterError whose parameter came from a flag (``flags``, see ``flags_of``) names the flag."""
    import sys

    if isinstance(err, ParameterError) and err.parameter in (flags or {}):
        err = UsageError(f"{flags[err.parameter]} {err.problem}")
    if isinstance(err, OSError):
        code, line = os_error_line(err)
        print(f"{program}: error: {' '.join(line.split())}", file=sys.stderr)
        return code
    print(f"{program}: error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2 if isinstance(err, UsageError) else 1
