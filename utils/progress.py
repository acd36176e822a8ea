"""Progress bars, drawn by tqdm.

On a terminal a bar is one line redrawn in place, and log records are printed above it while it is open
(tqdm.contrib.logging). Into a log file or a pipe the same line is written at most once every 30 s, each time as
a line of its own, so a log gets no carriage returns. Nothing is drawn before 0.2 s (terminal) or 30 s (file):
short jobs print nothing.
"""
import logging
import sys

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm


class _Bar(tqdm):
    """tqdm on a terminal, with `loggers`' console output routed through tqdm.write while the bar is open."""

    def __init__(self, *args, loggers=(), **kwargs):
        self._redirect = logging_redirect_tqdm(list(loggers) or None) if not kwargs.get("disable") else None
        if self._redirect:
            self._redirect.__enter__()
        super().__init__(*args, **kwargs)

    def close(self):
        super().close()
        if self._redirect:
            self._redirect, redirect = None, self._redirect
            redirect.__exit__(None, None, None)


class _Lines(tqdm):
    """tqdm into a file or a pipe: every refresh is a new line; nothing is erased."""

    def __init__(self, *args, loggers=(), **kwargs):
        super().__init__(*args, **kwargs)

    def display(self, msg=None, pos=None):
        if msg == "":  # tqdm erasing its line
            return False
        self.fp.write(f"{self if msg is None else msg}\n")
        self.fp.flush()
        return True

    def clear(self, nolock=False):
        pass  # a written line stays

    def close(self):
        if not self.disable and self.last_print_t >= self.start_t + self.delay:  # drawn before: the final count
            self.display()
        super().close()


def progress_bar(total, label, stream=None, initial=0, enabled=True, unit="it", loggers=(logging.root,)):
    """A tqdm bar counting to `total` on `stream` (default: sys.stderr as it is now). `loggers`: whose console
    handlers print above the bar while it is open. A disabled bar does nothing."""
    stream = stream or sys.stderr
    tty = hasattr(stream, "isatty") and stream.isatty()
    kind = _Bar if tty else _Lines
    return kind(total=total, desc=label, initial=initial, file=stream, disable=not enabled, unit=unit,
                dynamic_ncols=tty, mininterval=0.2 if tty else 30.0, delay=0.2 if tty else 30.0, leave=tty,
                loggers=loggers)
