"""A one-line progress bar: steps, epoch, images/s, ETA and the main losses."""
import sys
import time


class Progress:
    def __init__(self, total_steps, start_step=0, stream=None, min_interval=0.5, enabled=True):
        self.total, self.start_step, self.enabled = total_steps, start_step, enabled
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.time()
        self.last_print = 0.0
        self.step = start_step
        self.min_interval = min_interval if self.tty else 30.0  # a log file gets a line every 30 s
        self._width = 0

    def elapsed(self):
        return time.time() - self.t0

    def images_per_second(self, batch, step=None):
        """Images/s since the start, to `step` (default: the last update's)."""
        done = (self.step if step is None else step) - self.start_step
        return done * batch / max(self.elapsed(), 1e-9)

    def update(self, step, epoch, epochs, batch, metrics):
        self.step = step
        now = time.time()
        if not self.enabled:
            return
        if now - self.last_print < self.min_interval and step != self.total and step - self.start_step > 1:
            return
        self.last_print = now
        done = step - self.start_step
        eta = (self.total - step) * self.elapsed() / max(done, 1)
        frac = step / self.total
        bar = "#" * int(20 * frac) + "-" * (20 - int(20 * frac))
        losses = " ".join(f"{k}={metrics[k]:.3f}" for k in ("D/total", "G/total") if k in metrics)
        line = (f"[{bar}] {step}/{self.total} epoch {epoch}/{epochs} "
                f"{self.images_per_second(batch):.1f} img/s ETA {_hms(eta)} {losses}")
        if self.tty:
            self.stream.write("\r" + line.ljust(self._width))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def clear(self):
        """End the in-place line before other output."""
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


def _hms(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
