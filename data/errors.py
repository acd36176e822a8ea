"""The one error type for bad user input.

Every reader raises `DataError(path, problem)`; the command-line entry points catch it, print one line
(`error: <path>: <problem>`) and exit with code 2, with no traceback and nothing half-written.
"""


class DataError(ValueError):
    """Bad input that the user can fix: a missing or corrupt file, wrong CSV columns, NaN AUs, ..."""

    def __init__(self, path, problem):
        self.path = str(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
