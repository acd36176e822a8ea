"""Benchmark: reading AU CSVs with data/aus.py against the reader of another git revision (default: main).

    python bench/au_csv.py                       # 2,000 one-row OpenFace CSVs, one 10,000-row CSV of each kind
    python bench/au_csv.py --against HEAD~3 --files 5000 --rows 20000 --repeats 3

Writes, into a temporary folder, `--files` one-row CSVs as OpenFace's FaceLandmarkImg writes them (one per face
crop: `face, confidence, AU01_r, ..., AU45_c` with ", " separators and CRLF line ends), a `--rows`-row `aus.csv`
(`id,AU01,...,AU45`, the official layout's AU table) and a `--rows`-row FeatureExtraction CSV of a video (frame,
face_id, timestamp, confidence, success, 12 gaze/pose/landmark columns, the 17 + 18 AU columns). Then times, warm
in the page cache, the best of --repeats runs, the two readers taking turns:

* the small files as a data set reads them (lenient): the other revision's `read_au_rows` on each file, and this
  tree's `read_au_rows` on each file and `read_au_files` on all of them (what data/readers.py calls);
* each big file: `read_au_rows` (strict), and `read_au_table` on aus.csv.

The other revision's data/aus.py is loaded from `git show REV:data/aus.py` beside this tree's modules.
"""
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import data.aus as ours  # noqa: E402
from data.constants import AU_NAMES  # noqa: E402
from utils.cli import ArgumentParser  # noqa: E402

R_NAMES = [n + "_r" for n in AU_NAMES]
C_NAMES = [n + "_c" for n in AU_NAMES[:-1]] + ["AU28_c", "AU45_c"]


def other_reader(rev, folder):
    """The module data/aus.py as it is at git revision `rev`."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(folder, "aus_other.py")
    with open(path, "wb") as f:
        f.write(subprocess.run(["git", "-C", root, "show", f"{rev}:data/aus.py"], check=True,
                               capture_output=True).stdout)
    spec = importlib.util.spec_from_file_location("aus_other", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cells(values, digits=2):
    return ", ".join(f"{v:.{digits}f}" for v in values)


def write_files(folder, n_files, n_rows):
    """-> (the one-row CSVs, aus.csv, the video CSV)."""
    rng = np.random.default_rng(0)
    aus = np.round(rng.uniform(0, 5, (max(n_files, n_rows), 17)), 2)
    header = ", ".join(["face", "confidence"] + R_NAMES + C_NAMES)
    small = []
    for k in range(n_files):
        small.append(os.path.join(folder, f"N_{k:010d}.csv"))
        with open(small[-1], "w", newline="") as f:
            f.write(f"{header}\r\n0, 0.975, {cells(aus[k])}, {cells(aus[k] > 1, 1)}, 0.0\r\n")
    table = os.path.join(folder, "aus.csv")
    with open(table, "w") as f:
        f.write("id," + ",".join(AU_NAMES) + "\n")
        f.writelines(f"N_{k:010d}," + ",".join(f"{v:g}" for v in aus[k]) + "\n" for k in range(n_rows))
    video = os.path.join(folder, "video.csv")
    rest = "0.1, -0.2, 0.3, -0.1, 0.05, 0.02, 12.5, 0.03, 310.2, 320.4, 200.1, 1.02"
    with open(video, "w") as f:
        f.write(", ".join(["frame", "face_id", "timestamp", "confidence", "success"] + [f"x_{i}" for i in range(12)]
                          + R_NAMES + C_NAMES) + "\n")
        f.writelines(f"{k + 1}, 0, {k * 0.033:.3f}, 0.98, 1, {rest}, {cells(aus[k])}, {cells(aus[k] > 1, 1)}, 0.0\n"
                     for k in range(n_rows))
    return small, table, video


def best_seconds(runs, repeats):
    """{name: fn} -> {name: the best time of `repeats` calls}, the functions taking turns."""
    best = {name: float("inf") for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def main():
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", default="main", metavar="REV", help="the git revision to compare with")
    parser.add_argument("--files", type=int, default=2000, help="how many one-row OpenFace CSVs")
    parser.add_argument("--rows", type=int, default=10_000, help="rows of each big CSV")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each timing; the best is reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        other = other_reader(args.against, folder)
        small, table, video = write_files(folder, args.files, args.rows)
        theirs = [other.read_au_rows(p, lenient=True).aus for p in small]
        assert np.array_equal(np.concatenate(theirs), np.concatenate([r.aus for r in ours.read_au_files(small)]))
        print(f"host: {'Zen 4 (avx512_bf16)' if 'avx512_bf16' in open('/proc/cpuinfo').read() else 'no avx512_bf16'}"
              f", {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; best of {args.repeats}, warm cache")
        print(f"{args.files:,} one-row OpenFace CSVs, per file:")
        best = best_seconds({
            f"{args.against} read_au_rows, file by file": lambda: [other.read_au_rows(p, lenient=True) for p in small],
            "this tree's read_au_rows, file by file": lambda: [ours.read_au_rows(p, lenient=True) for p in small],
            "this tree's read_au_files, all together": lambda: ours.read_au_files(small, lenient=True)}, args.repeats)
        for name, seconds in best.items():
            print(f"  {name:45s} {seconds / args.files * 1e6:7.1f} us  ({seconds / args.files * 2e5:5.1f} s per "
                  "200,000 files)")
        for title, path, calls in [("aus.csv", table, ("read_au_rows", "read_au_table")),
                                   ("FeatureExtraction CSV", video, ("read_au_rows",))]:
            print(f"one {args.rows:,}-row {title} ({os.path.getsize(path) / 1e6:.1f} MB):")
            for call in calls:
                best = best_seconds({args.against: lambda: getattr(other, call)(path),
                                     "this tree": lambda: getattr(ours, call)(path)}, args.repeats)
                print(f"  {call:14s} {args.against} {best[args.against] * 1e3:7.1f} ms   this tree "
                      f"{best['this tree'] * 1e3:7.1f} ms   ({best['this tree'] / best[args.against]:.2f}x)")


if __name__ == "__main__":
    main()
