"""Loading the official GANimation `aus_openface.pkl`: only when the caller allows pickles (loading one can run
code), and then through a restricted unpickler that builds nothing but dicts, lists, strings, numbers and numpy
arrays. data/aus.py's `read_au_pickle` validates the AU values and builds the table."""
import os
import pickle
from typing import List, Tuple

import numpy as np

from data.constants import AU_NAMES, NUM_AUS
from utils.errors import UserError


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


def load_au_pickle(path, allow_pickle: bool) -> Tuple[List[str], np.ndarray]:
    """A pickled dict of id -> 17 numbers (an array or a list) -> (the ids, float64 (N, 17) values, unchecked).
    Without allow_pickle the file is not opened: the error says to pass --allow-pickle or to convert it."""
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
        rows.append(_values(path, value, key))
    return keys, np.stack(rows)


def _values(path, value, key) -> np.ndarray:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iuf":
            raise UserError(path, f"id {key!r}: AUs are a {value.dtype} array, expected numbers")
    elif not isinstance(value, (list, tuple)):
        raise UserError(path, f"id {key!r}: AUs are a {type(value).__name__}, expected 17 numbers")
    elif not all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in value):
        raise UserError(path, f"id {key!r}: AUs must be numbers")
    arr = np.array(value, dtype=np.float64)
    if arr.shape != (NUM_AUS,):
        raise UserError(path, f"id {key!r}: expected {NUM_AUS} AU values, got shape {arr.shape}")
    return arr
