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

A CSV without a header is refused (the message lists the expected column names): clear beats guessing.
Values up to `AU_TOLERANCE` outside [0, 5] (OpenFace sometimes writes 5.0x) are clipped; anything further out is
an error. Every problem is a `UserError` that names the file and says what is wrong, and for a bad cell the line
number and column; except that the AU tables of a data set (`read_au_table`, `read_au_pickle`) leave a bad row
out and record it in a data.problems.Problems (a data set reports bad samples that way only).
"""
import contextlib
import csv
import os
import pickle
import re
import stat
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np

from data.constants import AU_MAX, AU_NAMES, NUM_AUS
from data.images import IMAGE_EXTENSIONS
from data.problems import reports
from utils.errors import UserError

AU_TOLERANCE = 0.1  # values in [-0.1, 0) and (5, 5.1] are clipped to [0, 5]; further out is an error
ID_COLUMNS = ("id", "path", "file", "image")  # accepted names of a table's id column, in order of preference

_STRIP_EXTENSIONS = frozenset(IMAGE_EXTENSIONS + (".gif", ".csv"))
_R_NAMES = tuple(name + "_r" for name in AU_NAMES)
_EXPECTED = f"{_R_NAMES[0]} ... {_R_NAMES[-1]} or {AU_NAMES[0]} ... {AU_NAMES[-1]}"
_PANDAS_MIN_BYTES = 1 << 20  # files at least this big are parsed with pandas (fast); smaller ones with `csv`


def normalize_id(name) -> str:
    """An id as the readers compare them: the file name without directory and without an image/CSV extension.

    `imgs/N_0000000021_00562.jpg` -> `N_0000000021_00562`; `a\\b\\x.PNG` -> `x`; `subject.01` stays as it is
    (only known image/CSV extensions are removed).
    """
    text = str(name).strip()
    cut = max(text.rfind("/"), text.rfind("\\"))
    if cut >= 0:
        text = text[cut + 1:]
    dot = text.rfind(".")
    if dot > 0 and text[dot:].lower() in _STRIP_EXTENSIONS:
        return text[:dot]
    return text


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

    def where(r, c):
        label = rows[r] if rows is not None else f"row {r}"
        return f"{label}, column {names[c]}"

    bad = ~np.isfinite(flat)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        more = int(bad.sum()) - 1
        raise UserError(source, f"{where(r, c)}: {flat[r, c]} is not a finite number"
                                + (f" ({more} more non-finite values)" if more else ""))
    out = (flat < -AU_TOLERANCE) | (flat > AU_MAX + AU_TOLERANCE)
    if out.any():
        r, c = np.argwhere(out)[0]
        more = int(out.sum()) - 1
        raise UserError(source, f"{where(r, c)}: AU intensity {flat[r, c]:g} is outside [0, {AU_MAX:g}]"
                                + (f" ({more} more values out of range)" if more else "")
                                + "; OpenFace intensities lie in 0-5")
    result = np.clip(arr, 0.0, AU_MAX).astype(np.float32)
    result += np.float32(0.0)  # turns -0.0 into 0.0
    return result


AU_EMPTY = "AU value is empty"
AU_NAN = "AU value is NaN or infinite"
AU_NEGATIVE = "AU value is negative"
AU_TOO_HIGH = f"AU value is above {AU_MAX:g}"


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


class _NoRows(UserError):
    """A well-formed AU CSV with no usable row (header only, or every row skipped by success/confidence)."""


class _Relocate(Exception):
    """The fast pandas parse found something irregular: parse again with `csv` for an exact message."""


@dataclass
class _AuRows:
    aus: np.ndarray                      # (N, 17) float32, kept rows only
    lines: List[str]                     # where each kept row is, for messages: "line 7" (or "data row 5")
    confidence: Optional[np.ndarray]     # (N,) of kept rows, None without a confidence column
    extra: Dict[str, List[str]] = field(default_factory=dict)  # requested extra columns (stripped strings)
    problems: Optional[List[Optional[str]]] = None  # lenient reads: per row, None or what is wrong (NaN row)


@dataclass
class _Header:
    names: List[str]        # stripped column names
    data_start: int         # number of lines before the first data line
    au_idx: List[int]       # positions of the 17 AU columns, in AU_NAMES order
    success_idx: Optional[int]
    confidence_idx: Optional[int]
    extra_idx: Dict[str, int]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _find_columns(path, names: List[str], extra: Sequence[str]) -> _Header:
    upper = [n.upper() for n in names]
    for scheme in (_R_NAMES, AU_NAMES):
        for name in scheme:
            if upper.count(name.upper()) > 1:
                raise UserError(path, f"column {name} appears more than once in the header")
    found_r = [n for n in _R_NAMES if n.upper() in upper]
    found_plain = [n for n in AU_NAMES if n.upper() in upper]
    if not found_r and not found_plain:
        if names and all(_is_number(n) for n in names):
            raise UserError(path, f"no header line (the first line is {len(names)} numbers); the first line "
                                  f"must name the columns: {','.join(AU_NAMES)} (or OpenFace's "
                                  f"{_R_NAMES[0]} ... {_R_NAMES[-1]})")
        hint = ""
        if any(re.fullmatch(r"AU\d\d_C", n) for n in upper):
            hint = "; the file has only AU presence columns (AUxx_c, 0 or 1), which are no intensities"
        raise UserError(path, f"no AU intensity columns ({_EXPECTED}){hint}")
    scheme = _R_NAMES if len(found_r) >= len(found_plain) else AU_NAMES
    found = found_r if scheme is _R_NAMES else found_plain
    if len(found) < NUM_AUS:
        missing = [n for n in scheme if n not in found]
        raise UserError(path, f"missing AU columns: {', '.join(missing)} (found {len(found)} of {NUM_AUS})")

    def position(name):
        return upper.index(name.upper()) if name.upper() in upper else None

    lower = [n.lower() for n in names]
    extra_idx = {e: lower.index(e) for e in extra if e in lower}
    return _Header(names=names, data_start=0, au_idx=[position(n) for n in scheme],
                   success_idx=lower.index("success") if "success" in lower else None,
                   confidence_idx=lower.index("confidence") if "confidence" in lower else None,
                   extra_idx=extra_idx)


def _open_text(path):
    return open(path, newline="", encoding="utf-8-sig")


def _read_header(path, extra) -> _Header:
    with _open_text(path) as fh:
        reader = csv.reader(fh, skipinitialspace=True)
        for row in reader:
            if row and any(cell.strip() for cell in row):
                header = _find_columns(path, [cell.strip() for cell in row], extra)
                header.data_start = reader.line_num
                return header
    raise UserError(path, "empty file (no header line)")


def _number(path, text: str, line, column: str) -> float:
    text = text.strip()
    if not text:
        raise UserError(path, f"line {line}, column {column}: empty cell")
    try:
        return float(text)
    except ValueError:
        raise UserError(path, f"line {line}, column {column}: {text!r} is not a number") from None


def _parse_with_csv(path, header: _Header):
    """-> (cells: position -> list of strings, line numbers) for the columns the header selected."""
    wanted = sorted(set(header.au_idx) | set(header.extra_idx.values())
                    | {i for i in (header.success_idx, header.confidence_idx) if i is not None})
    width, last = len(header.names), max(wanted)
    cells = {i: [] for i in wanted}
    lines = []
    with _open_text(path) as fh:
        reader = csv.reader(fh, skipinitialspace=True)
        for row in reader:
            if reader.line_num <= header.data_start:
                continue
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank line
            if len(row) > width or len(row) <= last:
                raise UserError(path, f"line {reader.line_num}: {len(row)} fields, but the header has {width}")
            for i in wanted:
                cells[i].append(row[i])
            lines.append(reader.line_num)
    return cells, lines


def _rows_from_cells(path, header: _Header, cells, lines, min_confidence, lenient=False) -> _AuRows:
    names = header.names
    n = len(lines)
    if n == 0:
        raise _NoRows(path, "no data rows (only a header)")
    keep = np.ones(n, dtype=bool)
    why = []
    if header.success_idx is not None:
        col = names[header.success_idx]
        success = np.array([_number(path, s, ln, col) for s, ln in zip(cells[header.success_idx], lines)])
        if not np.isfinite(success).all():
            raise UserError(path, f"line {lines[int(np.argmin(np.isfinite(success)))]}, column {col}: "
                                  "success is not a finite number")
        keep &= success != 0
        if (success == 0).any():
            why.append(f"{int((success == 0).sum())} with success 0")
    confidence = None
    if header.confidence_idx is not None:
        col = names[header.confidence_idx]
        confidence = np.array([_number(path, s, ln, col) for s, ln in zip(cells[header.confidence_idx], lines)])
        if np.isnan(confidence).any():
            raise UserError(path, f"line {lines[int(np.argmax(np.isnan(confidence)))]}, column {col}: "
                                  "confidence is NaN")
    if min_confidence is not None:
        if confidence is None:
            raise UserError(path, f"min_confidence {min_confidence} given, but the file has no confidence column")
        low = keep & (confidence < min_confidence)
        keep &= ~low
        if low.any():
            why.append(f"{int(low.sum())} with confidence below {min_confidence:g}")
    if not keep.any():
        raise _NoRows(path, f"no usable rows: all {n} rows skipped ({'; '.join(why)})")
    kept = np.flatnonzero(keep)
    kept_lines = [f"line {lines[k]}" for k in kept]
    au_names = [names[i] for i in header.au_idx]
    raw = np.empty((len(kept), NUM_AUS), dtype=np.float64)
    empty = np.zeros(len(kept), dtype=bool)  # lenient reads: rows with an empty AU cell, left out like NaN rows
    for c, i in enumerate(header.au_idx):
        column = cells[i]
        if lenient:
            blank = np.array([not column[k].strip() for k in kept], dtype=bool)
            empty |= blank
            raw[:, c] = [np.nan if b else _number(path, column[k], lines[k], au_names[c]) for k, b in zip(kept, blank)]
        else:
            raw[:, c] = [_number(path, column[k], lines[k], au_names[c]) for k in kept]
    aus, problems = _checked_aus(path, raw, rows=kept_lines, columns=au_names, lenient=lenient)
    if lenient:
        problems = [AU_EMPTY if e else p for e, p in zip(empty, problems)]
    extra = {name: [cells[i][k].strip() for k in kept] for name, i in header.extra_idx.items()}
    return _AuRows(aus=aus, lines=kept_lines, confidence=None if confidence is None else confidence[kept],
                   extra=extra, problems=problems)


def _rows_with_pandas(path, header: _Header, min_confidence, lenient=False) -> _AuRows:
    """Fast path for big files; raises _Relocate on anything irregular (the csv path then explains it)."""
    import pandas as pd

    numeric = list(header.au_idx) + [i for i in (header.success_idx, header.confidence_idx) if i is not None]
    text = list(header.extra_idx.values())
    try:
        # Lenient reads turn "nan" in AU columns into NaN (a row to skip); anything else non-numeric, empty cells
        # included, still sends the file to the csv path for an exact message.
        nan_text = {i: ["nan", "NaN", "NAN", "-nan", "-NaN"] for i in header.au_idx} if lenient else None
        frame = pd.read_csv(path, header=None, skiprows=header.data_start, usecols=sorted(set(numeric + text)),
                            index_col=False, skipinitialspace=True, encoding="utf-8-sig", na_filter=lenient,
                            keep_default_na=False, na_values=nan_text, dtype={i: str for i in text}, engine="c")
    except Exception as exc:  # any parser complaint: let the csv path find and report it exactly
        raise _Relocate() from exc
    if len(frame) == 0:
        raise _Relocate()
    for i in numeric:
        nan_ok = lenient and i in header.au_idx  # lenient reads skip NaN AU rows instead of stopping
        if frame[i].dtype.kind not in "iuf" or (frame[i].dtype.kind == "f" and not nan_ok and frame[i].isna().any()):
            raise _Relocate()
    n = len(frame)
    keep = np.ones(n, dtype=bool)
    if header.success_idx is not None:
        keep &= frame[header.success_idx].to_numpy() != 0
    confidence = None
    if header.confidence_idx is not None:
        confidence = frame[header.confidence_idx].to_numpy(dtype=np.float64)
    if min_confidence is not None:
        if confidence is None:
            raise _Relocate()
        keep &= ~(confidence < min_confidence)
    if not keep.any():
        raise _Relocate()
    kept = np.flatnonzero(keep)
    raw = frame[header.au_idx].to_numpy(dtype=np.float64)[kept]
    if not lenient and any(au_row_problems(raw)):
        raise _Relocate()
    extra = {}
    for name, i in header.extra_idx.items():
        extra[name] = [s.strip() for s in frame[i].to_numpy(dtype=object)[kept]]
        if not all(extra[name]):
            raise _Relocate()  # empty cells: the caller's message should give the exact line
    lines = [f"data row {k + 1}" for k in kept]  # exact line numbers are only needed for messages
    aus, problems = _checked_aus(path, raw, lenient=lenient)
    return _AuRows(aus=aus, lines=lines, confidence=None if confidence is None else confidence[kept], extra=extra,
                   problems=problems)


def _read_au_rows(path, min_confidence=None, extra: Sequence[str] = (), lenient=False) -> _AuRows:
    """Read an AU CSV (OpenFace or plain): kept rows' AUs, line numbers, confidences and `extra` columns.

    lenient: rows with empty, NaN or out-of-range AUs are returned as NaN rows with `problems` saying why,
    instead of raising (malformed files are errors either way)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise UserError(path, "does not exist")
    if os.path.isdir(path):
        raise UserError(path, "is a folder, expected a CSV file")
    try:
        header = _read_header(path, extra)
        if os.path.getsize(path) >= _PANDAS_MIN_BYTES:
            try:
                return _rows_with_pandas(path, header, min_confidence, lenient)
            except _Relocate:
                pass
        cells, lines = _parse_with_csv(path, header)
        return _rows_from_cells(path, header, cells, lines, min_confidence, lenient)
    except UnicodeDecodeError as exc:
        raise UserError(path, f"not a text CSV file (not UTF-8: {exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise UserError(path, f"malformed CSV ({exc})") from None
    except OSError as exc:
        raise UserError(path, f"cannot read: {exc.strerror or exc}") from None


def read_au_csv(path, min_confidence: Optional[float] = None) -> np.ndarray:
    """AU intensities of every usable row of an OpenFace or plain AU CSV: float32 (N, 17) on 0-5.

    Rows with `success` == 0 are skipped, and rows with `confidence` < min_confidence when it is given
    (min_confidence on a file without a confidence column is an error). No usable row is an error.
    """
    return _read_au_rows(path, min_confidence).aus


def _id_column(path, found: Sequence[str]) -> str:
    for name in ID_COLUMNS:
        if name in found:
            return name
    raise UserError(path, f"no id column (one of: {', '.join(ID_COLUMNS)}) next to the AU columns")


@reports
def read_au_table(path, problems=None) -> Dict[str, np.ndarray]:
    """A CSV with an id column (`id`, `path`, `file` or `image`, first found in that order) and the 17 AU
    columns -> {id: float32 (17,)}; ids normalised with `normalize_id` (no directory, no extension).

    Empty ids are errors. Duplicate ids and rows with bad AU values are recorded in `problems`
    (data.problems.reports): ids whose row has bad values map to None, and of duplicates the first row is used.
    """
    rows = _read_au_rows(path, extra=ID_COLUMNS, lenient=True)
    name = _id_column(path, rows.extra)
    file_name = os.path.basename(path)
    table: Dict[str, np.ndarray] = {}
    first_line: Dict[str, str] = {}
    for k, (raw, aus, line) in enumerate(zip(rows.extra[name], rows.aus, rows.lines)):
        key = normalize_id(raw)
        if not key:
            raise UserError(path, f"{line}: empty {name}")
        if key in first_line:
            problems.skip(f"duplicate id in {file_name} (its first row is used)", key)
            continue
        first_line[key] = line
        if rows.problems[k] is not None:
            problems.skip(f"{rows.problems[k]} in {file_name}", key)
            aus = None
        table[key] = aus
    return table


# ----------------------------------------------------------------------------------------------- CSV writing


def _new_file_mode(path) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _csv_field(text: str) -> str:
    if any(c in text for c in ',"') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def write_au_csv(path, aus, ids: Optional[Sequence[str]] = None) -> None:
    """Write AUs as a plain CSV with header `id,AU01,...,AU45` (the id column only when ids are given).

    The AUs are validated with `parse_aus` first; the file is written to a temporary file in the same folder
    and moved into place with os.replace, so `path` is either the old file or the complete new one.
    """
    path = os.fspath(path)
    values = parse_aus(aus, path)
    if values.ndim != 2:
        raise UserError(path, f"expected AUs of shape (N, {NUM_AUS}), got {values.shape}")
    if ids is not None:
        ids = [str(i) for i in ids]
        if len(ids) != len(values):
            raise UserError(path, f"{len(ids)} ids for {len(values)} rows of AUs")
        bad = [i for i in ids if not i.strip() or "\n" in i or "\r" in i]
        if bad:
            raise UserError(path, f"ids must be non-empty single-line strings, got {bad[0]!r}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(path, f"cannot write: folder {folder} does not exist")
    header = (["id"] if ids is not None else []) + list(AU_NAMES)
    row_format = ",".join(["%.8g"] * NUM_AUS)  # float32 values, close to their shortest exact form
    lines = [row_format % tuple(row) for row in values.astype(np.float64).tolist()]
    if ids is not None:
        lines = [_csv_field(i) + "," + line for i, line in zip(ids, lines)]
    tmp = None
    try:
        mode = _new_file_mode(path)
        fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            fh.write(",".join(header) + "\n")
            if lines:
                fh.write("\n".join(lines) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise UserError(path, f"cannot write: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


# ----------------------------------------------------------------------------------------------- pickle


def _latin1_encode(obj, encoding="latin1", errors="strict"):
    """Stand-in for `_codecs.encode`, which Python 3 protocol-2 pickles use for bytes; latin-1 only."""
    if not isinstance(obj, str) or encoding.lower().replace("_", "-") not in ("latin1", "latin-1") \
            or errors != "strict":
        raise pickle.UnpicklingError("_codecs.encode is allowed only for latin-1 text")
    return obj.encode("latin1")


def _allowed_globals():
    from numpy._core import multiarray, numeric

    return {
        ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
        ("numpy.core.multiarray", "scalar"): multiarray.scalar,
        ("numpy._core.multiarray", "scalar"): multiarray.scalar,
        ("numpy.core.numeric", "_frombuffer"): numeric._frombuffer,    # protocol-5 pickles of arrays
        ("numpy._core.numeric", "_frombuffer"): numeric._frombuffer,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,                        # Python 3 protocol-2 pickles of bytes
    }


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
        if isinstance(key, bytes):
            key = key.decode("utf-8", errors="replace")
        if not isinstance(key, str):
            raise UserError(path, f"ids must be strings, got a {type(key).__name__} ({key!r})")
        keys.append(key)
        rows.append(_pickle_values(path, value, key))
    aus, bad = _checked_aus(path, np.stack(rows), rows=[f"id {k!r}" for k in keys], lenient=True)
    file_name = os.path.basename(path)
    table: Dict[str, np.ndarray] = {}
    seen = set()
    for k, (key, values) in enumerate(zip(keys, aus)):
        norm = normalize_id(key)
        if norm in seen:
            problems.skip(f"duplicate id in {file_name} (the first is used)", norm)
            continue
        seen.add(norm)
        if bad[k] is not None:
            problems.skip(f"{bad[k]} in {file_name}", norm)
            values = None
        table[norm] = values
    return table


__all__ = ["AU_TOLERANCE", "ID_COLUMNS", "normalize_id", "parse_aus", "au_row_problems", "read_au_csv",
           "read_au_table", "read_au_pickle", "write_au_csv"]
