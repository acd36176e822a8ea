"""The one error type for bad user input, in every layer.

A reader, a flag check, a strategy or a model loader raises `UserError(path, problem)`; the command lines catch
it (utils.cli.run_main), print one line (`error: <path>: <problem>`) and exit with code 2, with no traceback and
nothing half-written.
"""


class UserError(ValueError):
    """Bad input that the user can fix: a missing or corrupt file, wrong CSV columns, NaN AUs, a bad flag, ..."""

    def __init__(self, path, problem):
        self.path = str(path) if path is not None else None
        self.problem = problem
        super().__init__(f"{self.path}: {problem}" if self.path else problem)
