"""The training's progress line: steps, ETA, epoch, images/s and the main losses (a tqdm bar, utils/progress.py)."""
import logging
import time

from utils.progress import progress_bar


class Progress:
    def __init__(self, total_steps, start_step=0, stream=None, enabled=True, logger=logging.root):
        self.start_step = self.step = start_step
        self.t0 = time.time()
        self.bar = progress_bar(total_steps, "", stream=stream, initial=start_step, enabled=enabled, unit="step",
                                loggers=(logger,))

    def elapsed(self):
        return time.time() - self.t0

    def images_per_second(self, batch, step=None):
        """Images/s since the start, to `step` (default: the last update's)."""
        done = (self.step if step is None else step) - self.start_step
        return done * batch / max(self.elapsed(), 1e-9)

    def update(self, step, epoch, epochs, batch, metrics):
        losses = " ".join(f"{k}={metrics[k]:.3f}" for k in ("D/total", "G/total") if k in metrics)
        self.bar.set_postfix_str(f"epoch {epoch}/{epochs} {self.images_per_second(batch, step):.1f} img/s {losses}",
                                 refresh=False)
        self.bar.update(step - self.step)
        self.step = step

    def clear(self):
        """Erase the bar before other output (it is drawn again at the next update)."""
        self.bar.clear()

    def close(self):
        self.bar.close()
