"""Reading and writing Action Unit (AU) intensity files.

Accepted inputs (all validated: 17 finite AU intensities per row on OpenFace's 0-5 scale):

* OpenFace CSVs of either header style, `FaceLandmarkImg` (`face, confidence, AU01_r, ...`) or
  `FeatureExtraction` (`frame, face_id, timestamp, confidence, success, ...`). The 17 `AUxx_r` columns are found
  by name (never by position), leading/trailing spaces in the header are ignored, rows with `success` == 0 are
  skipped, and so are rows with `confidence` below `min_confidence` when one is given.
* Plain CSVs whose header names the 17 AUs (`AU01` ... `AU45`, or `AU01_r` ... `AU45_r`), in any order, with
  optional extra columns such as `id` or `path`.
* The official GANimation `aus_openface.pkl` (a pickled dict id -> 17 floats), only when the caller allows
  pickles, and then through a restricted unpickler that can build nothing but numpy arrays (`read_au_pickle`).

A CSV is parsed by pandas (every cell read as the string it is, so that a bad cell is reported with its line
and column) and its columns are converted by numpy. Many one-row OpenFace CSVs, one per face crop, are parsed
together (`read_au_files`): one pd.read_csv costs more to start than a one-row file costs to read. A CSV
without a header is refused, the message listing the expected column names: clear beats guessing. Values up to
`AU_TOLERANCE` outside [0, 5] (OpenFace sometimes writes 5.0x) are clipped; anything further out is an error.
Every problem is a `UserError` that names the file and says what is wrong, and for a bad cell the line number and
column; except that the AU tables of a data set (`read_au_table`, `read_au_pickle`, `read_au_rows(lenient=True)`)
leave a bad row out and say why, the one way a data set reports bad samples.
"""
import io
import os
import pickle
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

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
_EXPECTED = f"{_R_NAMES[0]} ... {_R_NAMES[-1]} or {AU_NAMES[0]} ... {AU_NAMES[-1]}"


def normalize_id(name) -> str:
    """An id as the readers compare them: the file name without directory and without an image/CSV extension.

    `imgs/N_0000000021_00562.jpg` -> `N_0000000021_00562`; `a\\b\\x.PNG` -> `x`; `subject.01` stays as it is
    (only known image/CSV extensions are removed).
    """
    text = str(name).strip()
    text = text[max(text.rfind("/"), text.rfind("\\")) + 1:]
    stem, ext = os.path.splitext(text)
    return stem if ext.lower() in _STRIP_EXTENSIONS else text


# ----------------------------------------------------------------------------------------------- validation


def parse_aus(values, source, rows: Optional[Sequence] = None, columns: Optional[Sequence[str]] = None
              ) -> np.ndarray:
    """Validate AU intensities and return them as a new float32 array of the same shape (..., 17).

    Every value must be a finite number in [0, 5]; values at most `AU_TOLERANCE` outside are clipped.
    source:  the file (or other name) that `UserError` reports.
    rows:    optional labels for the rows of a 2-D array, used in messages (e.g. "line 7" or an id);
             by default "row <0-based index>".
    columns: optional names of the 17 columns for messages (e.g. the CSV's "AU04_r"); default `AU_NAMES`.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UserError(source, f"AU values are not all numbers ({exc})") from None
    if arr.ndim == 0 or arr.shape[-1] != NUM_AUS:
        raise UserError(source, f"expected {NUM_AUS} AU values per row ({', '.join(AU_NAMES)}), "
                                f"got an array of shape {arr.shape}")
    flat = arr.reshape(-1, NUM_AUS)
    names = list(columns) if columns is not None else list(AU_NAMES)
    with np.errstate(invalid="ignore"):
        checks = [(~np.isfinite(flat), "{} is not a finite number", "non-finite values", ""),
                  ((flat < -AU_TOLERANCE) | (flat > AU_MAX + AU_TOLERANCE), f"AU intensity {{:g}} is outside "
                   f"[0, {AU_MAX:g}]", "values out of range", "; OpenFace intensities lie in 0-5")]
    for bad, problem, what, hint in checks:
        if bad.any():
            r, c = np.argwhere(bad)[0]
            more = int(bad.sum()) - 1
            label = rows[r] if rows is not None else f"row {r}"
            raise UserError(source, f"{label}, column {names[c]}: {problem.format(flat[r, c])}"
                                    + (f" ({more} more {what})" if more else "") + hint)
    return np.clip(arr, 0.0, AU_MAX).astype(np.float32) + np.float32(0.0)  # + 0 turns -0.0 into 0.0


def au_row_problems(values) -> List[Optional[str]]:
    """For each row of (N, 17) AU values: None when `parse_aus` accepts it, else what is wrong with it
    (`AU_NAN`, `AU_NEGATIVE` or `AU_TOO_HIGH`, in that order of precedence)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1, NUM_AUS)
    with np.errstate(invalid="ignore"):
        nan = ~np.isfinite(flat).all(axis=1)
        negative = (flat < -AU_TOLERANCE).any(axis=1)
        high = (flat > AU_MAX + AU_TOLERANCE).any(axis=1)
    return [AU_NAN if a else AU_NEGATIVE if b else AU_TOO_HIGH if c else None
            for a, b, c in zip(nan, negative, high)]


def _checked_aus(path, raw, rows=None, columns=None, lenient=False):
    """-> (float32 (N, 17) AUs, per-row problems or None). Strict: any bad value is a UserError (parse_aus).
    Lenient: bad rows are kept as NaN rows, and `problems[k]` says what is wrong with row k."""
    if not lenient:
        return parse_aus(raw, path, rows=rows, columns=columns), None
    problems = au_row_problems(raw)
    aus = np.full(np.shape(raw), np.nan, dtype=np.float32)
    good = [k for k, problem in enumerate(problems) if problem is None]
    if good:
        aus[good] = parse_aus(np.asarray(raw)[good], path)
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


def _au_columns(path, names: List[str]) -> List[int]:
    """The positions of the 17 AU columns in a header, in AU_NAMES order (`AUxx_r` or `AUxx` names)."""
    upper = [n.upper() for n in names]
    for name in _R_NAMES + AU_NAMES:
        if upper.count(name.upper()) > 1:
            raise UserError(path, f"column {name} appears more than once in the header")
    found_r = [n for n in _R_NAMES if n.upper() in upper]
    found_plain = [n for n in AU_NAMES if n.upper() in upper]
    if not found_r and not found_plain:
        if names and all(_is_number(n) for n in names):
            raise UserError(path, f"no header line (the first line is {len(names)} numbers); the first line "
                                  f"must name the columns: {','.join(AU_NAMES)} (or OpenFace's "
                                  f"{_R_NAMES[0]} ... {_R_NAMES[-1]})")
        hint = ("; the file has only AU presence columns (AUxx_c, 0 or 1), which are no intensities"
                if any(re.fullmatch(r"AU\d\d_C", n) for n in upper) else "")
        raise UserError(path, f"no AU intensity columns ({_EXPECTED}){hint}")
    scheme, found = (_R_NAMES, found_r) if len(found_r) >= len(found_plain) else (AU_NAMES, found_plain)
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


def _numbers(path, cells, lines, names, empty_ok=False):
    """Cells (an (N, C) object array of strings) -> (float64 (N, C), which are empty). An empty cell is NaN
    with empty_ok, else an error; a cell that is no number is an error naming its line and column."""
    text = np.asarray(cells, dtype=object).reshape(len(lines), len(names))
    empty = text == ""
    if empty.any() and not empty_ok:
        r, c = np.argwhere(empty)[0]
        raise UserError(path, f"line {lines[r]}, column {names[c]}: empty cell")
    try:
        return np.where(empty, "nan", text).astype(np.float64), empty
    except ValueError:
        r, c = next((r, c) for r, c in np.ndindex(*text.shape) if text[r, c] and not _is_number(text[r, c]))
        cell = text[r, c].strip()
        raise UserError(path, f"line {lines[r]}, column {names[c]}: {cell!r} is not a number") from None


_PANDAS = dict(header=None, dtype=str, keep_default_na=False, skipinitialspace=True, skip_blank_lines=False)
# every cell as the file writes it, a string ("" when empty, and for the missing fields of a short record); blank
# lines are records too, so that each record's line is known


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
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _parse(path, text):
    """One pd.read_csv of a CSV's text -> the records but blank lines: (cells (R, C) str, the line each ends on
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


def _rows(path, cells, lines, widths, min_confidence, extra, lenient):
    """read_au_rows of parsed records, the header first -> (AuRows, the kept records' indices after the header)."""
    names = [cell.strip() for cell in cells[0]]
    au_idx = _au_columns(path, names)
    lower = [n.lower() for n in names]
    named = {n: lower.index(n) for n in ("success", "confidence", *extra) if n in lower}
    short = np.flatnonzero(widths <= max(au_idx + list(named.values())))
    if len(short):
        raise UserError(path, f"line {lines[short[0]]}: {widths[short[0]]} fields, but the header has {len(names)}")
    if len(cells) == 1:
        raise NoRows(path, "no data rows (only a header)")
    cells, lines = cells[1:], lines[1:]

    def column(name):  # (N,) float64 values of the success or confidence column
        return _numbers(path, cells[:, [named[name]]], lines, [names[named[name]]])[0][:, 0]

    keep, why = np.ones(len(lines), dtype=bool), []
    if "success" in named:
        success = column("success")
        if not np.isfinite(success).all():
            raise UserError(path, f"line {lines[int(np.argmin(np.isfinite(success)))]}, column "
                                  f"{names[named['success']]}: success is not a finite number")
        keep &= success != 0
        why += [f"{int((success == 0).sum())} with success 0"] if (success == 0).any() else []
    confidence = column("confidence") if "confidence" in named else None
    if confidence is not None and np.isnan(confidence).any():
        raise UserError(path, f"line {lines[int(np.argmax(np.isnan(confidence)))]}, column "
                              f"{names[named['confidence']]}: confidence is NaN")
    if min_confidence is not None:
        if confidence is None:
            raise UserError(path, f"min_confidence {min_confidence} given, but the file has no confidence column")
        low = keep & (confidence < min_confidence)
        keep &= ~low
        why += [f"{int(low.sum())} with confidence below {min_confidence:g}"] if low.any() else []
    if not keep.any():
        raise NoRows(path, f"no usable rows: all {len(lines)} rows skipped ({'; '.join(why)})")

    kept = np.flatnonzero(keep)
    au_names = [names[i] for i in au_idx]
    raw, empty = _numbers(path, cells[kept][:, au_idx], lines[kept], au_names, lenient)
    labels = [f"line {lines[k]}" for k in kept]
    aus, problems = _checked_aus(path, raw, labels, au_names, lenient)
    if lenient:
        problems = [AU_EMPTY if e else p for e, p in zip(empty.any(axis=1), problems)]
    return AuRows(aus=aus, lines=labels, confidence=None if confidence is None else confidence[kept],
                  extra={n: [cell.strip() for cell in cells[kept, i]] for n, i in named.items() if n in extra},
                  problems=problems), kept


def read_au_rows(path, min_confidence=None, extra: Sequence[str] = (), lenient=False) -> AuRows:
    """Read an AU CSV (OpenFace or plain): the kept rows' AUs, line numbers, confidences and `extra` columns
    (by lower-case name, when the file has them).

    lenient: rows with empty, NaN or out-of-range AUs are returned as NaN rows with `problems` saying why,
    instead of raising (malformed files are errors either way). No usable row raises NoRows."""
    path = os.fspath(path)
    text = _read_text(path)
    if not text.strip():
        raise UserError(path, "empty file (no header line)")
    return _rows(path, *_parse(path, text), min_confidence, extra, lenient)[0]


def read_au_files(paths, min_confidence=None, lenient=False, chunk=1000) -> list:
    """read_au_rows(path, min_confidence, lenient=lenient) of many files: for each, in order, its AuRows or the
    NoRows it raises. Any other error is raised, for the first file that has one, as read_au_rows words it.

    A data set of face crops has a one-row OpenFace CSV per image, and pandas takes longer to start a parse than
    to parse one row; so the files with the same header line are parsed together, their bodies one after another
    under it, `chunk` files at a time. A file with a quote (which may hide a line break) is read alone."""
    results = []
    for start in range(0, len(paths), chunk):
        part = [os.fspath(p) for p in paths[start:start + chunk]]
        try:
            results += _read_together(part, min_confidence, lenient)
        except UserError:  # one of them is wrong: read one by one, so that the first is reported as on its own
            results += [_alone(p, min_confidence, lenient) for p in part]
    return results


def _read_together(paths, min_confidence, lenient):
    texts = [_read_text(p) for p in paths]
    results, groups = [None] * len(paths), {}
    for k, text in enumerate(texts):
        if '"' in text or not text[:1].strip():
            results[k] = _alone(paths[k], min_confidence, lenient)
        else:
            groups.setdefault(text.partition("\n")[0], []).append(k)
    for header, members in groups.items():
        bodies = [texts[k].partition("\n")[2] for k in members]
        bodies = [b + "\n" if b and not b.endswith("\n") else b for b in bodies]
        starts = np.cumsum([2] + [b.count("\n") for b in bodies])  # the line where each body starts
        cells, lines, widths = _parse(paths[members[0]], header + "\n" + "".join(bodies))
        owner = np.searchsorted(starts, lines[1:], side="right") - 1  # the file of each record after the header
        lines = np.concatenate([[1], lines[1:] - starts[owner] + 2])  # each record's line in its own file
        try:
            rows, kept = _rows(paths[members[0]], cells, lines, widths, min_confidence, (), lenient)
        except NoRows:  # no file of the group has a usable row
            rows, kept = None, np.zeros(0, int)
        found = np.searchsorted(owner[kept], np.arange(len(members) + 1))  # each file's kept rows
        records = np.searchsorted(owner, np.arange(len(members) + 1)) + 1  # and its records
        for j, k in enumerate(members):
            if found[j + 1] > found[j]:
                results[k] = _take(rows, slice(found[j], found[j + 1]))
            else:  # no usable row: the file's own header and records say why
                own = np.r_[0, records[j]:records[j + 1]]
                results[k] = _alone(paths[k], min_confidence, lenient, (cells[own], lines[own], widths[own]))
    return results


def _alone(path, min_confidence, lenient, parsed=None):
    """read_au_rows of one file (from its records when they are parsed already), or the NoRows it raises."""
    try:
        if parsed is None:
            return read_au_rows(path, min_confidence, lenient=lenient)
        return _rows(path, *parsed, min_confidence, (), lenient)[0]
    except NoRows as exc:
        return exc


def _take(rows: AuRows, part: slice) -> AuRows:
    return AuRows(rows.aus[part], rows.lines[part], None if rows.confidence is None else rows.confidence[part],
                  {name: values[part] for name, values in rows.extra.items()},
                  None if rows.problems is None else rows.problems[part])


def read_au_csv(path, min_confidence: Optional[float] = None) -> np.ndarray:
    """AU intensities of every usable row of an OpenFace or plain AU CSV: float32 (N, 17) on 0-5.

    Rows with `success` == 0 are skipped, and rows with `confidence` < min_confidence when it is given
    (min_confidence on a file without a confidence column is an error). No usable row is an error.
    """
    return read_au_rows(path, min_confidence).aus


@reports
def read_au_table(path, problems=None) -> Dict[str, np.ndarray]:
    """A CSV with an id column (`id`, `path`, `file` or `image`, first found in that order) and the 17 AU
    columns -> {id: float32 (17,)}; ids normalised with `normalize_id` (no directory, no extension).

    Empty ids are errors. Duplicate ids and rows with bad AU values are recorded in `problems`
    (data.problems.reports): ids whose row has bad values map to None, and of duplicates the first row is used.
    """
    rows = read_au_rows(path, extra=ID_COLUMNS, lenient=True)
    name = next((n for n in ID_COLUMNS if n in rows.extra), None)
    if name is None:
        raise UserError(path, f"no id column (one of: {', '.join(ID_COLUMNS)}) next to the AU columns")
    file_name = os.path.basename(path)
    table: Dict[str, np.ndarray] = {}
    for raw, aus, line, problem in zip(rows.extra[name], rows.aus, rows.lines, rows.problems):
        key = normalize_id(raw)
        if not key:
            raise UserError(path, f"{line}: empty {name}")
        if key in table:
            problems.skip(f"duplicate id in {file_name} (its first row is used)", key)
            continue
        if problem is not None:
            problems.skip(f"{problem} in {file_name}", key)
        table[key] = aus if problem is None else None
    return table


def write_au_csv(path, aus, ids: Optional[Sequence[str]] = None) -> None:
    """Write AUs as a plain CSV with header `id,AU01,...,AU45` (the id column only when ids are given).

    The AUs are validated with `parse_aus` first; the file is written atomically (utils.files), so `path` is
    either the old file or the complete new one.
    """
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


# ----------------------------------------------------------------------------------------------- pickle


def _latin1_encode(obj, encoding="latin1", errors="strict"):
    """Stand-in for `_codecs.encode`, which Python 3 protocol-2 pickles use for bytes; latin-1 only."""
    if not isinstance(obj, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1") \
            or errors != "strict":
        raise pickle.UnpicklingError("_codecs.encode is allowed only for latin-1 text")
    return obj.encode("latin1")


def _allowed_globals():
    from numpy._core import multiarray, numeric

    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
               ("_codecs", "encode"): _latin1_encode}                # Python 3 protocol-2 pickles of bytes
    for package in ("numpy.core", "numpy._core"):                    # numpy 1.x and 2.x names
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol-5 pickles of arrays
    return allowed


class _AuUnpickler(pickle.Unpickler):
    """Builds only dicts, lists, strings, numbers and numpy arrays/scalars; any other global is refused."""

    def __init__(self, file, path):
        super().__init__(file, encoding="latin1")
        self._path = path
        self._allowed = _allowed_globals()

    def find_class(self, module, name):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UserError(self._path, f"refused to load: the pickle wants {module}.{name}, but an AU pickle "
                                        "may only hold a dict of ids to numpy arrays") from None

    def persistent_load(self, pid):
        raise UserError(self._path, "refused to load: the pickle uses persistent ids")


def _pickle_values(path, value, key):
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iuf":
            raise UserError(path, f"id {key!r}: AUs are a {value.dtype} array, expected numbers")
        arr = value.astype(np.float64)
    elif isinstance(value, (list, tuple)):
        if not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                   for v in value):
            raise UserError(path, f"id {key!r}: AUs must be numbers")
        arr = np.array(value, dtype=np.float64)
    else:
        raise UserError(path, f"id {key!r}: AUs are a {type(value).__name__}, expected 17 numbers")
    if arr.shape != (NUM_AUS,):
        raise UserError(path, f"id {key!r}: expected {NUM_AUS} AU values, got shape {arr.shape}")
    return arr


@reports
def read_au_pickle(path, allow_pickle: bool = False, problems=None) -> Dict[str, np.ndarray]:
    """The official GANimation `aus_openface.pkl` (dict id -> 17 floats) -> {id: float32 (17,)}.

    Loading a pickle can run code, so without allow_pickle this is a UserError that says to pass --allow-pickle
    or to convert the file to aus.csv. With it, the file goes through an unpickler that can only build numpy
    arrays, and the result must be a dict of str -> 17 finite numbers on 0-5. Keys are normalised with
    `normalize_id`. Ids with bad AU values (which then map to None), and second ids that normalise to the same
    name, are recorded in `problems` (data.problems.reports).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UserError(path, "does not exist")
    if not allow_pickle:
        raise UserError(path, "is a pickle, and loading a pickle can run code: pass --allow-pickle if you trust "
                              f"the file, or convert it to aus.csv (columns id,{','.join(AU_NAMES)})")
    try:
        with open(path, "rb") as fh:
            obj = _AuUnpickler(fh, path).load()
    except UserError:
        raise
    except OSError as exc:
        raise UserError(path, f"cannot read: {exc.strerror or exc}") from None
    except Exception as exc:  # corrupt or truncated pickles raise all sorts of errors
        raise UserError(path, f"not a readable pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise UserError(path, f"expected a pickled dict of id -> {NUM_AUS} AUs, got a {type(obj).__name__}")
    if not obj:
        raise UserError(path, "the pickled dict is empty")
    keys, rows = [], []
    for key, value in obj.items():
        key = key.decode("utf-8", errors="replace") if isinstance(key, bytes) else key
        if not isinstance(key, str):
            raise UserError(path, f"ids must be strings, got a {type(key).__name__} ({key!r})")
        keys.append(key)
        rows.append(_pickle_values(path, value, key))
    aus, bad = _checked_aus(path, np.stack(rows), rows=[f"id {k!r}" for k in keys], lenient=True)
    file_name = os.path.basename(path)
    table: Dict[str, np.ndarray] = {}
    for key, values, problem in zip(keys, aus, bad):
        norm = normalize_id(key)
        if norm in table:
            problems.skip(f"duplicate id in {file_name} (the first is used)", norm)
            continue
        if problem is not None:
            problems.skip(f"{problem} in {file_name}", norm)
        table[norm] = values if problem is None else None
    return table


__all__ = ["AU_TOLERANCE", "ID_COLUMNS", "AuRows", "NoRows", "normalize_id", "parse_aus", "au_row_problems",
           "read_au_rows", "read_au_files", "read_au_csv", "read_au_table", "read_au_pickle", "write_au_csv"]
