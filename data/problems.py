"""What was wrong with a data set: the samples left out and the warnings, by reason, for one summary.

The readers (data/readers.py, data/aus.py) and the image checks (data/dataset.py) record into a `Problems`
instead of stopping at the first bad sample, so a user with 200k images sees every kind of problem at once, with
counts and the first few names of each. That is the only way they report a bad sample: whether any problem stops
the run (--strict) is decided once, by data.dataset.load_dataset.
"""
import functools
import logging
from typing import Dict, Iterable, List, Union

logger = logging.getLogger("data.readers")

SHOW = 5  # names shown per reason in a summary


class Problems:
    """Samples skipped (left out of the data set) and warnings (kept, but worth knowing), by reason."""

    def __init__(self):
        self.skipped: Dict[str, List[str]] = {}
        self.warnings: Dict[str, List[str]] = {}

    def skip(self, reason: str, names: Union[str, Iterable[str]]) -> None:
        _add(self.skipped, reason, names)

    def warn(self, reason: str, names: Union[str, Iterable[str]]) -> None:
        _add(self.warnings, reason, names)

    def count(self, kind: str = "all") -> int:
        """Number of names recorded: kind 'skipped', 'warnings' or 'all'."""
        groups = {"skipped": [self.skipped], "warnings": [self.warnings], "all": [self.skipped, self.warnings]}
        return sum(len(names) for group in groups[kind] for names in group.values())

    def __bool__(self):
        return self.count() > 0

    def lines(self, show: int = SHOW) -> List[str]:
        """One line per reason: `skipped  <count>  <reason>: first, names, ...`."""
        out = []
        for label, group in (("skipped", self.skipped), ("warning", self.warnings)):
            for reason, names in group.items():
                shown = ", ".join(names[:show]) + (", ..." if len(names) > show else "")
                out.append(f"  {label:7s} {len(names):>9,d}  {reason}: {shown}")
        return out

    def one_line(self) -> str:
        """All reasons with their counts in one line, for an error message."""
        parts = [f"{len(names):,d} {reason}" for group in (self.skipped, self.warnings)
                 for reason, names in group.items()]
        return "; ".join(parts)


def _add(group, reason, names):
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if names:
        group.setdefault(reason, []).extend(names)


def reports(reader):
    """A reader that records what it leaves out in its `problems` argument; called without one, it logs the
    summary (one warning) instead, so that nothing is left out unsaid."""
    @functools.wraps(reader)
    def read(*args, problems=None, **kwargs):
        own = Problems() if problems is None else problems
        result = reader(*args, problems=own, **kwargs)
        if problems is None and own:
            logger.warning("%s:\n%s", args[0] if args else reader.__name__, "\n".join(own.lines()))
        return result
    return read


def write_problems_csv(path, problems: Problems) -> None:
    """Every recorded problem as CSV rows `kind,reason,sample`, written atomically."""
    from utils.files import atomic_write_csv

    atomic_write_csv(path, ["kind", "reason", "sample"],
                     [[kind, reason, name] for kind, group in (("skipped", problems.skipped),
                                                               ("warning", problems.warnings))
                      for reason, names in group.items() for name in names])
