"""A minimal progress bar for the data commands (validation, preparation, TFRecord writing).

On a terminal it redraws one line; into a file or pipe it writes a line every 30 s at most, so logs stay short.
"""
import sys
import time


class ProgressBar:
    def __init__(self, total, label, stream=None):
        self.total, self.label = max(int(total), 0), label
        self._stream = stream
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.min_interval = 0.2 if self.tty else 30.0
        self.done, self.t0, self.last = 0, time.time(), time.time()
        self._drawn = False

    @property
    def stream(self):
        """The stream given, else sys.stderr as it is now (utils.cli.quiet_native_stderr swaps it for a while)."""
        return self._stream or sys.stderr

    def update(self, n=1):
        self.done += n
        now = time.time()
        if now - self.last >= self.min_interval:
            self.last = now
            self._draw(now)

    def _draw(self, now):
        frac = self.done / self.total if self.total else 1.0
        rate = self.done / max(now - self.t0, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        bar = "#" * int(30 * frac) + "-" * (30 - int(30 * frac))
        line = f"{self.label} [{bar}] {self.done:,}/{self.total:,} {rate:,.0f}/s ETA {eta:.0f} s"
        self.stream.write(("\r" + line) if self.tty else line + "\n")
        self.stream.flush()
        self._drawn = True

    def close(self):
        """Draw the final state and end the line (only when something was drawn)."""
        if self._drawn:
            self._draw(time.time())
            if self.tty:
                self.stream.write("\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
