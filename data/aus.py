"""Reading and writing Action Unit (AU) intensity files: 17 finite intensities per row on OpenFace's 0-5 scale.

Read: OpenFace CSVs (`FaceLandmarkImg` or `FeatureExtraction` style), plain CSVs whose header names the 17 AUs
(`AU01` ... `AU45` or `AU01_r` ... `AU45_r`) among other columns, and the official `aus_openface.pkl` when pickles are
allowed (data/au_pickle.py). pandas parses a CSV with every cell a string, so that each problem is a `UserError`
naming the file and, for a bad cell, its line and column; the AU tables of a data set leave a bad row out instead.
"""
import io
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from data.au_pickle import load_au_pickle
from data.constants import AU_MAX, AU_NAMES, NUM_AUS
from data.images import IMAGE_EXTENSIONS
from data.problems import reports
from utils.errors import UserError
from utils.files import atomic_write_csv

AU_TOLERANCE = 0.1  # values in [-0.1, 0) and (5, 5.1] are clipped to [0, 5]; further out is an error
ID_COLUMNS = ("id", "path", "file", "image")  # accepted names of a table's id column, in order of preference
AU_EMPTY = "AU value is empty"
AU_NAN = "AU value is NaN or infinite"
AU_NEGATIVE = "AU value is negative"
AU_TOO_HIGH = f"AU value is above {AU_MAX:g}"

_STRIP_EXTENSIONS = frozenset(IMAGE_EXTENSIONS + (".gif", ".csv"))
_R_NAMES = tuple(name + "_r" for name in AU_NAMES)
_PANDAS = dict(header=None, dtype=str, keep_default_na=False, skipinitialspace=True, skip_blank_lines=False)
# every cell as the file writes it ("" when empty or missing); blank lines are records too, so that lines are known


def normalize_id(name) -> str:
    """An id as the readers compare them: no directory, no image/CSV extension (`imgs/N_0021.jpg` -> `N_0021`,
    `a\\b\\x.PNG` -> `x`, `subject.01` as it is)."""
    text = str(name).strip()
    text = text[max(text.rfind("/"), text.rfind("\\")) + 1:]
    stem, ext = os.path.splitext(text)
    return stem if ext.lower() in _STRIP_EXTENSIONS else text


def parse_aus(values, source, rows: Optional[Sequence] = None, columns: Optional[Sequence[str]] = None
              ) -> np.ndarray:
    """Validated AU intensities (..., 17) as a new float32 array, values within AU_TOLERANCE of [0, 5] clipped.
    A UserError names `source`, and a 2-D array's `rows` and `columns` (by default "row <k>" and AU_NAMES)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UserError(source, f"AU values are not all numbers ({exc})") from None
    if arr.ndim == 0 or arr.shape[-1] != NUM_AUS:
        raise UserError(source, f"expected {NUM_AUS} AU values per row ({', '.join(AU_NAMES)}), "
                                f"got an array of shape {arr.shape}")
    flat, names = arr.reshape(-1, NUM_AUS), AU_NAMES if columns is None else columns
    with np.errstate(invalid="ignore"):
        outside = (flat < -AU_TOLERANCE) | (flat > AU_MAX + AU_TOLERANCE)
    for bad, problem, what, hint in [
            (~np.isfinite(flat), "{} is not a finite number", "non-finite values", ""),
            (outside, f"AU intensity {{:g}} is outside [0, {AU_MAX:g}]", "values out of range",
             "; OpenFace intensities lie in 0-5")]:
        if bad.any():
            r, c = np.argwhere(bad)[0]
            more = int(bad.sum()) - 1
            label = rows[r] if rows is not None else f"row {r}"
            raise UserError(source, f"{label}, column {names[c]}: {problem.format(flat[r, c])}"
                                    + (f" ({more} more {what})" if more else "") + hint)
    return np.clip(arr, 0.0, AU_MAX).astype(np.float32) + np.float32(0.0)  # + 0 turns -0.0 into 0.0


def _lenient_aus(path, raw):
    """(N, 17) AU values -> (float32 AUs, a NaN row where parse_aus would refuse the row; for each row None or what
    is wrong with it: AU_NAN, AU_NEGATIVE or AU_TOO_HIGH, in that order of precedence)."""
    with np.errstate(invalid="ignore"):
        nan, negative, high = ~np.isfinite(raw), raw < -AU_TOLERANCE, raw > AU_MAX + AU_TOLERANCE
    problems = [AU_NAN if a else AU_NEGATIVE if b else AU_TOO_HIGH if c else None
                for a, b, c in zip(nan.any(axis=1), negative.any(axis=1), high.any(axis=1))]
    good = ~(nan | negative | high).any(axis=1)
    aus = np.full(raw.shape, np.nan, dtype=np.float32)
    aus[good] = parse_aus(raw[good], path)
    return aus, problems


# ----------------------------------------------------------------------------------------------- CSV reading


class NoRows(UserError):
    """A well-formed AU CSV with no usable row (header only, or every row skipped by success/confidence)."""


@dataclass
class AuRows:
    """What `read_au_rows` returns: the kept rows of an AU CSV."""
    aus: np.ndarray                      # (N, 17) float32
    lines: List[str]                     # where each row is, for messages: "line 7"
    confidence: Optional[np.ndarray]     # (N,), None without a confidence column
    extra: Dict[str, List[str]] = field(default_factory=dict)  # the requested extra columns (stripped strings)
    problems: Optional[List[Optional[str]]] = None  # lenient reads: per row, None or what is wrong (a NaN row)


def read_au_rows(path, min_confidence=None, extra: Sequence[str] = (), lenient=False) -> AuRows:
    """Read an AU CSV (OpenFace or plain): the AUs, line numbers, confidences and `extra` columns (by lower-case
    name, when the file has them) of the rows kept: not `success` 0, nor `confidence` below min_confidence when given.
    No kept row raises NoRows. lenient: rows with empty, NaN or out-of-range AUs are NaN rows with `problems` saying
    why, instead of errors (malformed files are errors either way)."""
    rows = _read([os.fspath(path)], min_confidence, extra, lenient)[0]
    if isinstance(rows, NoRows):
        raise rows
    return rows


def read_au_files(paths, min_confidence=None, lenient=False, chunk=1000) -> list:
    """read_au_rows(path, min_confidence, lenient=lenient) of many files: for each, in order, its AuRows or the
    NoRows it raises. Any other error is raised, for the first file that has one, as read_au_rows words it. pandas
    takes longer to start a parse than to parse a face crop's one-row CSV: `chunk` files are parsed together."""
    results = []
    for start in range(0, len(paths), chunk):
        part = [os.fspath(p) for p in paths[start:start + chunk]]
        try:
            results += _read(part, min_confidence, (), lenient)
        except UserError:  # one of them is wrong: read one by one, so that the first is reported as on its own
            results += [_read([p], min_confidence, (), lenient)[0] for p in part]
    return results


def _read(paths, min_confidence, extra, lenient) -> list:
    """Each file's AuRows or NoRows. The files with the same header line are parsed as one CSV, but a file with a
    quote (which may hide a line break) or without its header on the first line is parsed alone."""
    texts = [_read_text(p) for p in paths]
    groups = {}  # header line (for a file parsed alone: its index) -> the files
    for k, text in enumerate(texts):
        groups.setdefault(k if '"' in text or not text[:1].strip() else text.partition("\n")[0], []).append(k)
    results = {}
    for members in groups.values():
        rows = _read_group([paths[k] for k in members], [texts[k] for k in members], min_confidence, extra, lenient)
        results.update(zip(members, rows))
    return [results[k] for k in range(len(paths))]


def _read_text(path) -> str:
    """A CSV file's text (UTF-8, a BOM dropped), with "\\n" line ends."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8-sig")
    except FileNotFoundError:
        raise UserError(path, "does not exist") from None
    except IsADirectoryError:
        raise UserError(path, "is a folder, expected a CSV file") from None
    except UnicodeDecodeError as exc:
        raise UserError(path, f"not a text CSV file (not UTF-8: {exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UserError(path, f"cannot read: {exc.strerror or exc}") from None
    if not text.strip():
        raise UserError(path, "empty file (no header line)")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text  # the test: 100x faster


def _read_group(paths, texts, min_confidence, extra, lenient) -> list:
    """Files with the same header line, parsed as one CSV (the first file, then the others' bodies) -> each
    file's AuRows or NoRows. An error names the first file (read_au_files then reads the files alone)."""
    pieces = [texts[0]] + [text.partition("\n")[2] for text in texts[1:]]
    pieces = [p if p.endswith("\n") or not p else p + "\n" for p in pieces]
    before = np.cumsum([0] + [p.count("\n") for p in pieces[:-1]])  # the lines before each file's piece
    path = paths[0]
    cells, lines, widths = _parse(path, "".join(pieces))
    owner = np.searchsorted(before, lines) - 1  # the file of each record
    lines = lines - before[owner] + (owner > 0)  # its line in that file (the others' bodies start on line 2)

    names = [cell.strip() for cell in cells[0]]
    au_idx = _au_columns(path, names)
    lower = [n.lower() for n in names]
    named = {n: lower.index(n) for n in ("success", "confidence", *extra) if n in lower}
    short = np.flatnonzero(widths <= max(au_idx + list(named.values())))
    if len(short):
        raise UserError(path, f"line {lines[short[0]]}: {widths[short[0]]} fields, but the header has {len(names)}")
    cells, lines, owner = cells[1:], lines[1:], owner[1:]
    if not len(lines):
        return [NoRows(p, "no data rows (only a header)") for p in paths]
    confidence, failed, unsure = _skipped(path, cells, lines, names, named, min_confidence)

    kept = np.flatnonzero(~failed & ~unsure)
    au_names = [names[i] for i in au_idx]
    raw, empty = _numbers(path, cells[kept][:, au_idx], lines[kept], au_names, lenient)
    labels = [f"line {line}" for line in lines[kept]]
    if lenient:
        aus, problems = _lenient_aus(path, raw)
        problems = [AU_EMPTY if e else p for e, p in zip(empty.any(axis=1), problems)]
    else:
        aus, problems = parse_aus(raw, path, rows=labels, columns=au_names), None
    confidence = None if confidence is None else confidence[kept]
    extras = {n: [cell.strip() for cell in cells[kept, i]] for n, i in named.items() if n in extra}

    records, n_failed, n_unsure = [np.bincount(owner[m], minlength=len(paths)).tolist()  # per file
                                   for m in (slice(None), failed, unsure)]
    bounds = np.searchsorted(owner[kept], np.arange(len(paths) + 1)).tolist()  # each file's kept rows
    results = []
    for k, (a, b) in enumerate(zip(bounds, bounds[1:])):
        if a == b:
            results.append(_no_rows(paths[k], records[k], n_failed[k], n_unsure[k], min_confidence))
        else:
            results.append(AuRows(aus[a:b], labels[a:b], None if confidence is None else confidence[a:b],
                                  {n: values[a:b] for n, values in extras.items()},
                                  None if problems is None else problems[a:b]))
    return results


def _parse(path, text):
    """One pd.read_csv of a CSV's text -> its records but blank lines: (cells (R, C) str, the line each ends on
    (R,), its number of fields (R,)). A record longer than the header is an error."""
    import pandas as pd  # here: 0.35 s to import, which only a CSV needs
    body = text.lstrip()
    first = text.count("\n", 0, len(text) - len(body)) + 1  # the header's line
    try:
        cells = pd.read_csv(io.StringIO(body), **_PANDAS).to_numpy()
    except ValueError as exc:  # pandas' ParserError, in the words of the other messages
        long = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        if long:
            raise UserError(path, f"line {int(long[2]) + first - 1}: {long[3]} fields, but the header has "
                                  f"{long[1]}") from None
        open_quote = re.search(r"EOF inside string starting at row (\d+)", str(exc))
        if open_quote:
            raise UserError(path, f"line {int(open_quote[1]) + first}: a quote that is never closed") from None
        raise UserError(path, f"malformed CSV ({str(exc).split('C error: ')[-1].strip()})") from None
    breaks = np.zeros(len(cells), int)  # line breaks inside quoted fields
    if '"' in body:
        breaks = np.array([sum(cell.count("\n") for cell in row) for row in cells])
    lines = first + np.arange(len(cells)) + np.cumsum(breaks)
    widths = np.full(len(cells), cells.shape[1])
    padded = np.flatnonzero(cells[:, -1] == "")  # maybe short (pandas pads those with ""): count their fields
    physical = body.split("\n") if len(padded) else []
    for k in padded:
        record = "\n".join(physical[lines[k] - first - breaks[k]:lines[k] - first + 1])
        widths[k] = pd.read_csv(io.StringIO(record), **_PANDAS).shape[1] if '"' in record else record.count(",") + 1
    blank = (widths == 1) & (cells[:, 0] == "")
    return cells[~blank], lines[~blank], widths[~blank]


def _au_columns(path, names: List[str]) -> List[int]:
    """The positions of the 17 AU columns in a header, in AU_NAMES order (`AUxx_r` or `AUxx` names)."""
    upper = [n.upper() for n in names]
    twice = next((n for n in _R_NAMES + AU_NAMES if upper.count(n.upper()) > 1), None)
    if twice:
        raise UserError(path, f"column {twice} appears more than once in the header")
    scheme = max(_R_NAMES, AU_NAMES, key=lambda s: sum(n.upper() in upper for n in s))  # a tie: _R_NAMES
    found = [n for n in scheme if n.upper() in upper]
    if not found and all(_is_number(n) for n in names):
        raise UserError(path, f"no header line (the first line is {len(names)} numbers); the first line must name "
                              f"the columns: {','.join(AU_NAMES)} (or OpenFace's {_R_NAMES[0]} ... {_R_NAMES[-1]})")
    if not found:
        hint = ("; the file has only AU presence columns (AUxx_c, 0 or 1), which are no intensities"
                if any(re.fullmatch(r"AU\d\d_C", n) for n in upper) else "")
        raise UserError(path, f"no AU intensity columns ({_R_NAMES[0]} ... {_R_NAMES[-1]} or {AU_NAMES[0]} ... "
                              f"{AU_NAMES[-1]}){hint}")
    if len(found) < NUM_AUS:
        missing = [n for n in scheme if n not in found]
        raise UserError(path, f"missing AU columns: {', '.join(missing)} (found {len(found)} of {NUM_AUS})")
    return [upper.index(n.upper()) for n in scheme]


def _is_number(text) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _numbers(path, text, lines, names, empty_ok=False):
    """Cells (an (N, C) object array of strings) -> (float64 (N, C), which are empty). An empty cell is NaN
    with empty_ok, else an error; a cell that is no number is an error naming its line and column."""
    empty = text == ""
    if empty.any() and not empty_ok:
        r, c = np.argwhere(empty)[0]
        raise UserError(path, f"line {lines[r]}, column {names[c]}: empty cell")
    try:
        return np.where(empty, "nan", text).astype(np.float64), empty
    except ValueError:
        r, c = next((r, c) for r, c in np.ndindex(*text.shape) if text[r, c] and not _is_number(text[r, c]))
        raise UserError(path, f"line {lines[r]}, column {names[c]}: {text[r, c].strip()!r} is not a number") from None


def _skipped(path, cells, lines, names, named, min_confidence):
    """-> (the records' confidences or None, which have success 0, which others have a confidence too low)."""
    def column(name, bad, problem):  # (N,) float64
        values = _numbers(path, cells[:, [named[name]]], lines, [names[named[name]]])[0][:, 0]
        if bad(values).any():
            raise UserError(path, f"line {lines[np.argmax(bad(values))]}, column {names[named[name]]}: {problem}")
        return values

    failed = np.zeros(len(lines), dtype=bool)
    if "success" in named:
        failed = column("success", lambda v: ~np.isfinite(v), "success is not a finite number") == 0
    confidence = column("confidence", np.isnan, "confidence is NaN") if "confidence" in named else None
    if min_confidence is None:
        return confidence, failed, np.zeros_like(failed)
    if confidence is None:
        raise UserError(path, f"min_confidence {min_confidence} given, but the file has no confidence column")
    return confidence, failed, ~failed & (confidence < min_confidence)


def _no_rows(path, records, failed, unsure, min_confidence) -> NoRows:
    if not records:
        return NoRows(path, "no data rows (only a header)")
    why = ([f"{failed} with success 0"] if failed else []) + (
        [f"{unsure} with confidence below {min_confidence:g}"] if unsure else [])
    return NoRows(path, f"no usable rows: all {records} rows skipped ({'; '.join(why)})")


def read_au_csv(path, min_confidence: Optional[float] = None) -> np.ndarray:
    """AU intensities of every usable row of an OpenFace or plain AU CSV (read_au_rows): float32 (N, 17) on 0-5."""
    return read_au_rows(path, min_confidence).aus


@reports
def read_au_table(path, problems=None) -> Dict[str, np.ndarray]:
    """A CSV with an id column (`id`, `path`, `file` or `image`, the first found in that order) and the 17 AU
    columns -> {normalize_id(id): float32 (17,)}. An empty id is an error; a row with bad AUs (its id maps to
    None) and a repeated id (the first row is used) are recorded in `problems` (data.problems.reports)."""
    rows = read_au_rows(path, extra=ID_COLUMNS, lenient=True)
    name = next((n for n in ID_COLUMNS if n in rows.extra), None)
    if name is None:
        raise UserError(path, f"no id column (one of: {', '.join(ID_COLUMNS)}) next to the AU columns")
    ids = [normalize_id(raw) for raw in rows.extra[name]]
    if "" in ids:
        raise UserError(path, f"{rows.lines[ids.index('')]}: empty {name}")
    return _id_table(path, ids, rows.aus, rows.problems, problems, "its first row is used")


@reports
def read_au_pickle(path, allow_pickle: bool = False, problems=None) -> Dict[str, np.ndarray]:
    """The official GANimation `aus_openface.pkl` (dict id -> 17 floats; read only with allow_pickle, by the
    restricted unpickler of data/au_pickle.py) -> {normalize_id(id): float32 (17,)}. Ids with bad AU values (which
    map to None) and second ids that normalise to the same name are recorded in `problems`."""
    keys, raw = load_au_pickle(os.fspath(path), allow_pickle)
    aus, bad = _lenient_aus(path, raw)
    return _id_table(path, [normalize_id(key) for key in keys], aus, bad, problems, "the first is used")


def _id_table(path, ids, aus, bad, problems, first) -> Dict[str, Optional[np.ndarray]]:
    """{id: AUs, or None for a bad row}; bad rows and repeated ids (`first`: which is used) recorded in problems."""
    file_name = os.path.basename(path)
    table = {}
    for key, values, problem in zip(ids, aus, bad):
        if key in table:
            problems.skip(f"duplicate id in {file_name} ({first})", key)
            continue
        if problem is not None:
            problems.skip(f"{problem} in {file_name}", key)
        table[key] = values if problem is None else None
    return table


def write_au_csv(path, aus, ids: Optional[Sequence[str]] = None) -> None:
    """Write AUs (validated by parse_aus) as a plain CSV `id,AU01,...,AU45` (the id column only when ids are
    given), atomically: `path` is either the old file or the complete new one."""
    path = os.fspath(path)
    values = parse_aus(aus, path)
    if values.ndim != 2:
        raise UserError(path, f"expected AUs of shape (N, {NUM_AUS}), got {values.shape}")
    ids = None if ids is None else [str(i) for i in ids]
    if ids is not None and len(ids) != len(values):
        raise UserError(path, f"{len(ids)} ids for {len(values)} rows of AUs")
    bad = [i for i in ids or () if not i.strip() or "\n" in i or "\r" in i]
    if bad:
        raise UserError(path, f"ids must be non-empty single-line strings, got {bad[0]!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(path, f"cannot write: folder {folder} does not exist")
    rows = [[f"{v:.8g}" for v in row] for row in values.astype(np.float64).tolist()]  # float32: 8 digits
    try:
        atomic_write_csv(path, (["id"] if ids is not None else []) + list(AU_NAMES),
                         rows if ids is None else [[i] + row for i, row in zip(ids, rows)])
    except OSError as exc:
        raise UserError(path, f"cannot write: {exc.strerror or exc}") from None


__all__ = ["AU_TOLERANCE", "ID_COLUMNS", "AuRows", "NoRows", "normalize_id", "parse_aus", "read_au_rows",
           "read_au_files", "read_au_csv", "read_au_table", "read_au_pickle", "write_au_csv"]
