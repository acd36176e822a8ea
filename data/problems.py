"""What was wrong with a data set: the samples left out and the warnings, by reason, for one summary.

The readers and `data.validate` record into a `Problems` instead of stopping at the first bad sample, so a
user with 200k images sees every kind of problem at once, with counts and the first few names of each.
"""
from typing import Dict, Iterable, List, Union

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
