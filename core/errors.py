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


def report(program: str, err: Exception) -> int:
    """Print ``err`` as the one line a command ends with; return its exit code (2: usage, else 1)."""
    import sys

    if isinstance(err, OSError):
        code, line = os_error_line(err)
        print(f"{program}: error: {' '.join(line.split())}", file=sys.stderr)
        return code
    print(f"{program}: error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2 if isinstance(err, UsageError) else 1
