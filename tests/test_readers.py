"""Tests for data/aus.py and data/readers.py. Every test writes its own files in tmp_path."""
import logging
import os
import pickle
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from data.aus import (AU_TOLERANCE, NoRows, normalize_id, parse_aus, read_au_csv, read_au_files, read_au_pickle,
                      read_au_rows, read_au_table, write_au_csv)
from data.constants import AU_NAMES, NUM_AUS
from data.problems import Problems
from data.readers import detect_layout, load_manifest, load_official, load_openface_folder, read_dataset
from utils.errors import UserError

R_NAMES = [n + "_r" for n in AU_NAMES]
C_NAMES = [n + "_c" for n in AU_NAMES[:-1]] + ["AU28_c", "AU45_c"]  # OpenFace has AU28_c but no AU28_r

# Header of OpenFace's FaceLandmarkImg (one file per image), with its ", " separators.
LANDMARK_IMG_HEADER = ", ".join(["face", "confidence"] + R_NAMES + C_NAMES)
# Header of OpenFace 2.x FeatureExtraction (one row per frame), shortened: a few gaze/pose/landmark columns.
FEATURE_HEADER = ", ".join(
    ["frame", "face_id", "timestamp", "confidence", "success", "gaze_0_x", "gaze_0_y", "pose_Tx", "pose_Rx",
     "x_0", "x_1", "y_0", "y_1", "p_scale"] + R_NAMES + C_NAMES)


def au_row(seed):
    """17 AU intensities with two decimals, like OpenFace writes them."""
    return np.round(np.random.default_rng(seed).uniform(0, 5, NUM_AUS), 2)


def fmt(values, decimals=2):
    return ", ".join(f"{v:.{decimals}f}" for v in values)


def landmark_img_csv(path, aus, confidence=0.975, face=0, extra_rows=()):
    c = (np.asarray(aus) > 1).astype(float)
    presence = list(c[:-1]) + [0.0, c[-1]]
    lines = [LANDMARK_IMG_HEADER, f"{face}, {confidence}, {fmt(aus)}, {fmt(presence, 1)}"]
    for f, (conf, a) in enumerate(extra_rows, start=face + 1):
        lines.append(f"{f}, {conf}, {fmt(a)}, {fmt([0.0] * (NUM_AUS + 1), 1)}")
    Path(path).write_text("\n".join(lines) + "\n")
    return path


def feature_row(frame, confidence, success, aus):
    rest = "0.1, -0.2, 12.5, 0.03, 310.2, 320.4, 200.1, 210.5, 1.02"
    presence = fmt([0.0] * (NUM_AUS + 1), 1)
    return f"{frame}, 0, {(frame - 1) * 0.033:.3f}, {confidence}, {success}, {rest}, {fmt(aus)}, {presence}"


def write_text(path, text):
    Path(path).write_text(text)
    return path


def plain_csv(path, rows, names=AU_NAMES, ids=None, id_col="id"):
    header = ([id_col] if ids is not None else []) + list(names)
    lines = [",".join(header)]
    for k, row in enumerate(rows):
        lines.append(",".join(([ids[k]] if ids is not None else []) + [f"{v:g}" for v in row]))
    return write_text(path, "\n".join(lines) + "\n")


def jpeg(path, value=128):
    assert cv2.imwrite(str(path), np.full((8, 8, 3), value, np.uint8))
    return path


def error_of(func, *args, **kwargs):
    with pytest.raises(UserError) as info:
        func(*args, **kwargs)
    return str(info.value)


# ----------------------------------------------------------------------------------------------- read_au_csv


def test_landmark_img_style(tmp_path):
    aus = au_row(1)
    path = landmark_img_csv(tmp_path / "face.csv", aus)
    got = read_au_csv(path)
    assert got.dtype == np.float32 and got.shape == (1, NUM_AUS)
    np.testing.assert_allclose(got[0], aus, atol=1e-6)


def test_feature_extraction_style_skips_failed_and_low_confidence_rows(tmp_path):
    a1, a2, a3, a4 = au_row(1), au_row(2), au_row(3), au_row(4)
    lines = [FEATURE_HEADER,
             feature_row(1, 0.98, 1, a1),
             feature_row(2, 0.0, 0, a2),     # OpenFace lost the face: success 0
             feature_row(3, 0.35, 1, a3),    # tracked, but with low confidence
             feature_row(4, 0.93, 1, a4)]
    path = write_text(tmp_path / "video.csv", "\n".join(lines) + "\n")
    np.testing.assert_allclose(read_au_csv(path), [a1, a3, a4], atol=1e-6)
    np.testing.assert_allclose(read_au_csv(path, min_confidence=0.8), [a1, a4], atol=1e-6)


def test_columns_found_by_name_not_position(tmp_path):
    aus = au_row(5)
    order = np.random.default_rng(0).permutation(NUM_AUS)
    header = ", ".join(["confidence"] + ["AU28_c"] + [R_NAMES[i] for i in order] + ["face"])
    row = ", ".join(["0.9", "1.0"] + [f"{aus[i]:.2f}" for i in order] + ["0"])
    path = write_text(tmp_path / "shuffled.csv", f"{header}\n{row}\n")
    np.testing.assert_allclose(read_au_csv(path)[0], aus, atol=1e-6)


@pytest.mark.parametrize("names", [AU_NAMES, R_NAMES])
def test_plain_csv_with_extra_columns(tmp_path, names):
    rows = [au_row(1), au_row(2)]
    header = "id," + ",".join(names) + ",path"
    body = [f"a{k}," + ",".join(f"{v:g}" for v in r) + f",imgs/a{k}.jpg" for k, r in enumerate(rows)]
    path = write_text(tmp_path / "plain.csv", "\n".join([header] + body) + "\n")
    np.testing.assert_allclose(read_au_csv(path), rows, atol=1e-6)


def test_bom_crlf_and_blank_lines(tmp_path):
    rows = [au_row(1), au_row(2)]
    text = ",".join(AU_NAMES) + "\r\n" + ",".join(f"{v:g}" for v in rows[0]) + "\r\n\r\n" + \
        ",".join(f"{v:g}" for v in rows[1]) + "\r\n"
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    np.testing.assert_allclose(read_au_csv(path), rows, atol=1e-6)


def test_values_just_outside_range_are_clipped(tmp_path):
    row = au_row(3)
    row[0], row[1] = 5.04, -0.03
    path = plain_csv(tmp_path / "edge.csv", [row])
    got = read_au_csv(path)[0]
    assert got[0] == 5.0 and got[1] == 0.0 and not np.signbit(got[1])


def test_a_long_video_csv_with_the_exact_line_of_an_error(tmp_path):
    rng = np.random.default_rng(0)
    n = 6000
    aus = np.round(rng.uniform(0, 5, (n, NUM_AUS)), 2)
    success = np.ones(n, int)
    success[::7] = 0
    lines = [FEATURE_HEADER] + [feature_row(k + 1, 0.9, success[k], aus[k]) for k in range(n)]
    path = write_text(tmp_path / "long_video.csv", "\n".join(lines) + "\n")
    np.testing.assert_allclose(read_au_csv(path), aus[success == 1], atol=1e-6)
    # an error in a big file is still reported with its exact line and column
    lines[4001] = lines[4001].replace(f"{aus[4000, 2]:.2f}", "oops", 1)
    write_text(path, "\n".join(lines) + "\n")
    message = error_of(read_au_csv, path)
    assert str(path) in message and "line 4002" in message and "'oops' is not a number" in message


# ----------------------------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    message = error_of(read_au_csv, path)
    assert str(path) in message and "does not exist" in message


def test_folder_instead_of_file(tmp_path):
    message = error_of(read_au_csv, tmp_path)
    assert str(tmp_path) in message and "is a folder" in message


def test_empty_file(tmp_path):
    path = write_text(tmp_path / "empty.csv", "")
    message = error_of(read_au_csv, path)
    assert str(path) in message and "empty file" in message


def test_binary_file(tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x02\x9c\xfe")
    message = error_of(read_au_csv, path)
    assert str(path) in message and "not a text CSV file" in message


def test_header_only(tmp_path):
    path = write_text(tmp_path / "header.csv", LANDMARK_IMG_HEADER + "\n")
    message = error_of(read_au_csv, path)
    assert str(path) in message and "no data rows" in message


def test_no_au_columns(tmp_path):
    path = write_text(tmp_path / "other.csv", "name, age\nbob, 3\n")
    message = error_of(read_au_csv, path)
    assert str(path) in message and "no AU intensity columns (AU01_r ... AU45_r or AU01 ... AU45)" in message


def test_only_presence_columns(tmp_path):
    path = write_text(tmp_path / "presence.csv", "face, " + ", ".join(C_NAMES) + "\n0, " +
                      fmt([1.0] * len(C_NAMES), 1) + "\n")
    message = error_of(read_au_csv, path)
    assert "no AU intensity columns" in message and "AUxx_c" in message


def test_some_au_columns_missing_are_named(tmp_path):
    names = [n for n in R_NAMES if n not in ("AU09_r", "AU45_r")]
    path = write_text(tmp_path / "partial.csv", ", ".join(["face"] + names) + "\n0, " + fmt([1.0] * 15) + "\n")
    message = error_of(read_au_csv, path)
    assert str(path) in message and "missing AU columns: AU09_r, AU45_r" in message


def test_headerless_numbers_need_a_header(tmp_path):
    path = write_text(tmp_path / "bare.csv", "\n".join(",".join(f"{v:g}" for v in au_row(k)) for k in range(3)))
    message = error_of(read_au_csv, path)
    assert str(path) in message and "no header line" in message and ",".join(AU_NAMES) in message


def test_non_numeric_value_names_line_and_column(tmp_path):
    row = [f"{v:g}" for v in au_row(1)]
    row[2] = "high"
    path = write_text(tmp_path / "words.csv", ",".join(AU_NAMES) + "\n" + ",".join(f"{v:g}" for v in au_row(2))
                      + "\n" + ",".join(row) + "\n")
    message = error_of(read_au_csv, path)
    assert str(path) in message and "line 3, column AU04: 'high' is not a number" in message


def test_empty_cell(tmp_path):
    lines = [LANDMARK_IMG_HEADER, "0, 0.98, " + fmt(au_row(1)) + ", " + fmt([0.0] * 18, 1)]
    lines[1] = lines[1].replace(", 0.98, ", ", 0.98, , ", 1).replace(f"{au_row(1)[0]:.2f}, ", "", 1)
    path = write_text(tmp_path / "hole.csv", "\n".join(lines) + "\n")
    message = error_of(read_au_csv, path)
    assert str(path) in message and "line 2, column AU01_r: empty cell" in message


def test_nan_value(tmp_path):
    row = [f"{v:g}" for v in au_row(1)]
    row[16] = "nan"
    path = write_text(tmp_path / "nan.csv", ",".join(AU_NAMES) + "\n" + ",".join(row) + "\n")
    message = error_of(read_au_csv, path)
    assert str(path) in message and "line 2, column AU45: nan is not a finite number" in message


def test_out_of_range_value(tmp_path):
    row = au_row(1)
    row[4] = 7.5
    path = plain_csv(tmp_path / "big.csv", [row])
    message = error_of(read_au_csv, path)
    assert str(path) in message and "line 2, column AU06: AU intensity 7.5 is outside [0, 5]" in message


def test_wrong_number_of_fields(tmp_path):
    path = write_text(tmp_path / "ragged.csv", ",".join(AU_NAMES) + "\n1,2,3\n")
    message = error_of(read_au_csv, path)
    assert str(path) in message and "line 2: 3 fields, but the header has 17" in message


def test_lines_count_blank_lines_and_line_breaks_in_quoted_cells(tmp_path):
    """A record's line is the line it ends on, counting leading and blank lines and line breaks in quotes."""
    header, ones = "id," + ",".join(AU_NAMES), ",".join(["1"] * 17)
    path = write_text(tmp_path / "q.csv", f'\n\n{header}\n"two\nlines",{ones}\n\nb,{ones}\n')
    rows = read_au_rows(path, extra=("id",))
    assert rows.lines == ["line 5", "line 7"] and rows.extra == {"id": ["two\nlines", "b"]}
    write_text(path, f'{header}\n"two\nlines",{ones}\n\nb,{ones[:-1]}oops\n')
    assert error_of(read_au_csv, path) == f"{path}: line 5, column AU45: 'oops' is not a number"
    write_text(path, f'{header}\n"two\nlines",{ones}\n\nb,1,2\n')
    assert error_of(read_au_csv, path) == f"{path}: line 5: 3 fields, but the header has 18"


def test_no_rows_left(tmp_path):
    lines = [FEATURE_HEADER, feature_row(1, 0.0, 0, au_row(1)), feature_row(2, 0.2, 1, au_row(2))]
    path = write_text(tmp_path / "lost.csv", "\n".join(lines) + "\n")
    message = error_of(read_au_csv, path, min_confidence=0.5)
    assert str(path) in message and "no usable rows" in message
    assert "1 with success 0" in message and "1 with confidence below 0.5" in message


def test_min_confidence_needs_a_confidence_column(tmp_path):
    path = plain_csv(tmp_path / "plain.csv", [au_row(1)])
    message = error_of(read_au_csv, path, min_confidence=0.5)
    assert str(path) in message and "no confidence column" in message


def test_duplicate_au_column(tmp_path):
    path = write_text(tmp_path / "dup.csv", ",".join(list(AU_NAMES) + ["AU04"]) + "\n" + ",".join(["1"] * 18))
    message = error_of(read_au_csv, path)
    assert str(path) in message and "column AU04 appears more than once" in message


# ----------------------------------------------------------------------------------------------- read_au_files


def rows_or_no_rows(path, **kwargs):
    try:
        return read_au_rows(path, **kwargs)
    except NoRows as exc:
        return exc


def same_rows(a, b):
    if isinstance(a, NoRows) or isinstance(b, NoRows):
        return type(a) is type(b) and str(a) == str(b)
    return (np.array_equal(a.aus, b.aus, equal_nan=True) and a.lines == b.lines and a.problems == b.problems
            and np.array_equal(a.confidence, b.confidence))


def test_read_au_files_reads_each_file_as_read_au_rows_does(tmp_path):
    """Files parsed together give what each gives alone: one-row crops, blank lines, a header without rows,
    a video CSV of another header, failed and unsure faces, a NaN row, a quoted cell (read alone)."""
    paths = [landmark_img_csv(tmp_path / f"c{k}.csv", au_row(k)) for k in range(5)]
    paths.append(write_text(tmp_path / "blank.csv", f"{LANDMARK_IMG_HEADER}\n\n0, 0.9, {fmt(au_row(5))}, "
                            f"{fmt([0.0] * 18, 1)}\n\n"))
    paths.append(write_text(tmp_path / "header.csv", LANDMARK_IMG_HEADER + "\n"))
    paths.append(landmark_img_csv(tmp_path / "unsure.csv", au_row(6), confidence=0.2))
    paths.append(write_text(tmp_path / "video.csv", "\n".join(
        [FEATURE_HEADER, feature_row(1, 0.9, 0, au_row(7)), feature_row(2, 0.8, 1, au_row(8))])))
    paths.append(write_text(tmp_path / "failed.csv", "\n".join([FEATURE_HEADER, feature_row(1, 0.9, 0, au_row(9))])))
    paths.append(write_text(tmp_path / "nan.csv", f"{LANDMARK_IMG_HEADER}\n0, 0.9, nan, {fmt(au_row(10)[1:])}, "
                            f"{fmt([0.0] * 18, 1)}\n"))
    paths.append(write_text(tmp_path / "quoted.csv", f'{LANDMARK_IMG_HEADER}\n"0", 0.9, {fmt(au_row(11))}, '
                            f"{fmt([0.0] * 18, 1)}\n"))
    for kwargs in ({"lenient": True}, {"lenient": True, "min_confidence": 0.5}):
        for chunk in (1, 4, 1000):
            got = read_au_files(paths, chunk=chunk, **kwargs)
            expected = [rows_or_no_rows(p, **kwargs) for p in paths]
            assert all(same_rows(a, b) for a, b in zip(got, expected)), (kwargs, chunk)
    assert [r.lines for r in read_au_files(paths[5:6])] == [["line 3"]]


def test_read_au_files_reports_the_first_wrong_file_as_alone(tmp_path):
    paths = [landmark_img_csv(tmp_path / f"c{k}.csv", au_row(k)) for k in range(6)]
    text = paths[4].read_text().replace(f"{au_row(4)[2]:.2f}", "oops", 1)
    write_text(paths[4], text.replace("\n", "\n\n", 1))  # a blank line: the bad cell is on line 3
    write_text(paths[5], paths[5].read_text() + "1, 2\n")
    message = error_of(read_au_files, paths, chunk=4)
    assert message == f"{paths[4]}: line 3, column AU04_r: 'oops' is not a number"


# ----------------------------------------------------------------------------------------------- parse_aus


def test_parse_aus():
    values = np.stack([au_row(1), au_row(2)])
    got = parse_aus(values, "src")
    assert got.dtype == np.float32 and got.shape == (2, NUM_AUS)
    assert parse_aus(values[0], "src").shape == (NUM_AUS,)
    assert parse_aus([[5 + AU_TOLERANCE / 2] * NUM_AUS], "src").max() == 5.0
    assert "src: expected 17 AU values" in error_of(parse_aus, np.zeros((2, 16)), "src")
    assert "src: row 1, column AU02: inf is not a finite number" in \
        error_of(parse_aus, np.array([[0.0] * 17, [0.0, np.inf] + [0.0] * 15]), "src")
    assert "src: id 'b', column AU01: AU intensity -1 is outside" in \
        error_of(parse_aus, [[0.0] * 17, [-1.0] + [0.0] * 16], "src", rows=["id 'a'", "id 'b'"])
    assert "src: AU values are not all numbers" in error_of(parse_aus, [["x"] * 17], "src")


# ----------------------------------------------------------------------------------------------- tables


def test_normalize_id():
    assert normalize_id(" imgs/N_0000000021_00562.jpg\n") == "N_0000000021_00562"
    assert normalize_id(r"C:\faces\x.PNG") == "x"
    assert normalize_id("subject.01") == "subject.01"
    assert normalize_id("plain") == "plain"


def test_read_au_table_normalises_ids(tmp_path):
    rows = [au_row(1), au_row(2)]
    path = plain_csv(tmp_path / "t.csv", rows, names=R_NAMES, ids=["imgs/a.jpg", "b"], id_col="path")
    table = read_au_table(path)
    assert sorted(table) == ["a", "b"]
    np.testing.assert_allclose(table["a"], rows[0], atol=1e-6)
    assert table["b"].dtype == np.float32 and table["b"].shape == (NUM_AUS,)


def test_read_au_table_prefers_id_column(tmp_path):
    path = write_text(tmp_path / "t.csv", "path,id," + ",".join(AU_NAMES) + "\nx/y.jpg,z," + ",".join(["1"] * 17))
    assert list(read_au_table(path)) == ["z"]


def test_read_au_table_errors(tmp_path):
    path = plain_csv(tmp_path / "noid.csv", [au_row(1)])
    message = error_of(read_au_table, path)
    assert str(path) in message and "no id column (one of: id, path, file, image)" in message
    path = plain_csv(tmp_path / "dup.csv", [au_row(1), au_row(2)], ids=["d/a.jpg", "e/a.png"])
    problems = Problems()  # a repeated id is a sample left out (the first row is used), not a malformed file
    assert list(read_au_table(path, problems=problems)) == ["a"]
    assert problems.skipped == {"duplicate id in dup.csv (its first row is used)": ["a"]}
    path = plain_csv(tmp_path / "blank.csv", [au_row(1), au_row(2)], ids=["a", " "])
    message = error_of(read_au_table, path)
    assert str(path) in message and "line 3: empty id" in message


def test_write_au_csv_round_trip(tmp_path):
    aus = np.random.default_rng(0).uniform(0, 5, (5, NUM_AUS)).astype(np.float32)
    ids = ["a", "b,with comma", "c", "d", "e"]
    path = tmp_path / "out.csv"
    write_au_csv(path, aus, ids)
    assert path.read_text().splitlines()[0] == "id," + ",".join(AU_NAMES)
    table = read_au_table(path)
    assert list(table) == ids
    np.testing.assert_allclose(np.stack(list(table.values())), aus, rtol=1e-7)
    write_au_csv(path, aus)  # without ids: no id column
    assert path.read_text().splitlines()[0] == ",".join(AU_NAMES)
    np.testing.assert_allclose(read_au_csv(path), aus, rtol=1e-7)
    assert sorted(os.listdir(tmp_path)) == ["out.csv"]


def test_write_au_csv_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "out.csv"
    path.write_text("old\n")
    message = error_of(write_au_csv, path, np.full((2, NUM_AUS), 9.0))
    assert str(path) in message and "outside [0, 5]" in message
    message = error_of(write_au_csv, path, np.ones((2, NUM_AUS)), ids=["a"])
    assert str(path) in message and "1 ids for 2 rows" in message

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)  # where utils.files renames the finished file
    message = error_of(write_au_csv, path, np.ones((2, NUM_AUS)))
    assert str(path) in message and "cannot write: No space left on device" in message
    assert path.read_text() == "old\n" and sorted(os.listdir(tmp_path)) == ["out.csv"]
    monkeypatch.undo()
    message = error_of(write_au_csv, tmp_path / "missing" / "out.csv", np.ones((1, NUM_AUS)))
    assert "does not exist" in message


# ----------------------------------------------------------------------------------------------- pickles


class _Evil:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def py2_pickle(table):
    """The bytes Python 2's cPickle.dump(table, f, 2) writes for a dict of str -> float64 arrays (numpy 1.x)."""
    def binstring(b):
        return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)

    out = b"\x80\x02}q\x00("
    for key, arr in table.items():
        arr = np.ascontiguousarray(arr, dtype="<f8")
        out += binstring(key.encode("latin1"))
        out += (b"cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85U\x01b\x87Rq\x03"
                b"(K\x01K" + bytes([arr.shape[0]]) + b"\x85cnumpy\ndtype\nq\x04U\x02f8K\x00K\x01\x87Rq\x05"
                b"(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" + binstring(arr.tobytes())
                + b"tb")
    return out + b"u."


def test_pickle_needs_allow_pickle(tmp_path):
    path = tmp_path / "aus_openface.pkl"
    path.write_bytes(pickle.dumps({"a": au_row(1)}, protocol=2))
    message = error_of(read_au_pickle, path)
    assert str(path) in message and "--allow-pickle" in message and "aus.csv" in message


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle_of_numpy_arrays_loads(tmp_path, protocol):
    table = {"N_0000000021_00562": au_row(1), "N_0000000021_00563": au_row(2)}
    path = tmp_path / "aus_openface.pkl"
    path.write_bytes(pickle.dumps(table, protocol=protocol))
    got = read_au_pickle(path, allow_pickle=True)
    assert list(got) == list(table)
    for key in table:
        assert got[key].dtype == np.float32
        np.testing.assert_allclose(got[key], table[key], atol=1e-6)


def test_python2_pickle_loads(tmp_path):
    table = {"N_0000000021_00562": au_row(1), "N_0000000021_00563": au_row(2)}
    path = tmp_path / "aus_openface.pkl"
    path.write_bytes(py2_pickle(table))
    got = read_au_pickle(path, allow_pickle=True)
    assert sorted(got) == sorted(table)
    np.testing.assert_allclose(got["N_0000000021_00563"], table["N_0000000021_00563"], atol=1e-6)


def test_pickle_of_lists_loads(tmp_path):
    path = tmp_path / "aus_openface.pkl"
    path.write_bytes(pickle.dumps({"a.jpg": [float(v) for v in au_row(1)]}, protocol=2))
    assert list(read_au_pickle(path, allow_pickle=True)) == ["a"]


@pytest.mark.parametrize("payload", ["top", "value", "in_list"])
def test_malicious_pickle_is_refused_without_running(tmp_path, payload):
    marker = tmp_path / "pwned"
    evil = _Evil(marker)
    obj = {"top": evil, "value": {"a": evil}, "in_list": {"a": [0.0, evil]}}[payload]
    path = tmp_path / "aus_openface.pkl"
    path.write_bytes(pickle.dumps(obj, protocol=2))
    message = error_of(read_au_pickle, path, allow_pickle=True)
    assert str(path) in message and "refused to load" in message and "system" in message
    assert not marker.exists()
    error_of(read_au_pickle, path)  # without allow_pickle it is not even opened
    assert not marker.exists()


def test_pickle_with_wrong_content(tmp_path):
    path = tmp_path / "aus_openface.pkl"
    cases = [([1, 2, 3], "expected a pickled dict"),
             ({"a": np.zeros(16)}, "id 'a': expected 17 AU values"),
             ({"a": np.array(["x"] * 17)}, "id 'a': AUs are a <U1 array"),
             ({1: np.zeros(17)}, "ids must be strings"),
             ({}, "the pickled dict is empty")]
    for obj, problem in cases:
        path.write_bytes(pickle.dumps(obj, protocol=2))
        message = error_of(read_au_pickle, path, allow_pickle=True)
        assert str(path) in message and problem in message, message
    path.write_bytes(b"\x80\x02}q\x00(U\x01a")  # truncated
    message = error_of(read_au_pickle, path, allow_pickle=True)
    assert str(path) in message and "not a readable pickle" in message


# ----------------------------------------------------------------------------------------------- official layout


def official(tmp_path, with_csv=True, with_pickle=False):
    """imgs/ with a, b, c (no image for x), AUs for a, b, x (none for c); train: a b c x, test: b."""
    root = tmp_path / "ganimation"
    (root / "imgs").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        jpeg(root / "imgs" / name)
    table = {"a": au_row(1), "b": au_row(2), "x": au_row(3)}
    if with_csv:
        plain_csv(root / "aus.csv", list(table.values()), ids=list(table))
    if with_pickle:
        (root / "aus_openface.pkl").write_bytes(py2_pickle({k: v[::-1] for k, v in table.items()}))
    write_text(root / "train_ids.csv", "a.jpg\nb.jpg\n\nc.jpg\nx.jpg\n")
    write_text(root / "test_ids.csv", "b.jpg\r\n")
    return root, table


def test_load_official(tmp_path, caplog):
    root, table = official(tmp_path)
    with caplog.at_level(logging.WARNING, logger="data.readers"):
        source = load_official(root)  # without a Problems to record in: one warning says what was left out
    assert source.ids == ["a", "b"] and source.images is None
    assert source.paths == [str((root / "imgs" / f"{i}.jpg").resolve()) for i in ("a", "b")]
    np.testing.assert_allclose(source.aus, [table["a"], table["b"]], atol=1e-6)
    lines = [" ".join(line.split()) for line in caplog.text.splitlines()]
    assert "skipped 1 no image in imgs/: x" in lines and "skipped 1 no AUs in aus.csv: c" in lines
    problems = Problems()
    load_official(root, problems=problems)
    assert problems.skipped == {"no image in imgs/": ["x"], "no AUs in aus.csv": ["c"]}
    assert problems.warnings == {"also in test_ids.csv": ["b"]}
    test = load_official(root, split="test")
    assert test.ids == ["b"]


def test_load_official_png_and_pickle(tmp_path):
    root, table = official(tmp_path, with_csv=False, with_pickle=True)
    os.remove(root / "imgs" / "a.jpg")
    jpeg(root / "imgs" / "a.png")
    message = error_of(load_official, root)
    assert "aus_openface.pkl" in message and "--allow-pickle" in message
    source = load_official(root, allow_pickle=True)
    assert source.ids == ["a", "b"] and source.paths[0].endswith("a.png")
    np.testing.assert_allclose(source.aus[1], table["b"][::-1], atol=1e-6)


def test_load_official_prefers_aus_csv(tmp_path):
    root, table = official(tmp_path, with_csv=True)
    marker = tmp_path / "pwned"
    (root / "aus_openface.pkl").write_bytes(pickle.dumps(_Evil(marker), protocol=2))
    source = load_official(root, allow_pickle=True)
    np.testing.assert_allclose(source.aus[0], table["a"], atol=1e-6)
    assert not marker.exists()


def test_load_official_errors(tmp_path):
    root, _ = official(tmp_path)
    message = error_of(load_official, root, split="val")
    assert str(root / "val_ids.csv") in message and "does not exist" in message and "test, train" in message
    write_text(root / "test_ids.csv", "c.jpg\nx.jpg\n")
    message = error_of(load_official, root, split="test")
    assert str(root / "test_ids.csv") in message and "no usable samples" in message
    write_text(root / "test_ids.csv", "\n\n")
    assert "no ids" in error_of(load_official, root, split="test")
    os.remove(root / "aus.csv")
    message = error_of(load_official, root)
    assert str(root) in message and "no AU file" in message
    message = error_of(load_official, tmp_path / "nothing")
    assert "does not exist" in message


# ----------------------------------------------------------------------------------------------- OpenFace folder


def test_load_openface_folder(tmp_path, caplog):
    root = tmp_path / "faces"
    (root / "processed").mkdir(parents=True)
    (root / "aus").mkdir()
    for name in ("p1.jpg", "p2.png", "p3.jpeg", "p4.jpg", "p5.jpg"):
        jpeg(root / name)
    landmark_img_csv(root / "p1.csv", au_row(1))
    landmark_img_csv(root / "aus" / "p2.csv", au_row(2))
    # two faces in p3: the higher-confidence one is used
    landmark_img_csv(root / "processed" / "p3.csv", au_row(3), confidence=0.6, extra_rows=[(0.95, au_row(30))])
    landmark_img_csv(root / "processed" / "p5.csv", au_row(5), confidence=0.2)  # too unsure with min_confidence
    with caplog.at_level(logging.WARNING, logger="data.readers"):
        source = load_openface_folder(root)
    assert source.ids == ["p1", "p2", "p3", "p5"]
    assert source.paths[1] == str((root / "p2.png").resolve())
    np.testing.assert_allclose(source.aus, [au_row(1), au_row(2), au_row(30), au_row(5)], atol=1e-6)
    assert "no OpenFace CSV (<stem>.csv next to the image or in aus/ or processed/): p4" in caplog.text
    assert load_openface_folder(root, min_confidence=0.5).ids == ["p1", "p2", "p3"]


def test_load_openface_folder_errors(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    message = error_of(load_openface_folder, root)
    assert str(root) in message and "no images" in message
    jpeg(root / "p1.jpg")
    message = error_of(load_openface_folder, root)
    assert str(root) in message and "no usable images" in message and "1 have no OpenFace CSV" in message
    bad = write_text(root / "p1.csv", "face, confidence, AU01_r\n0, 0.9, 1.0\n")
    message = error_of(load_openface_folder, root)
    assert str(bad) in message and "missing AU columns" in message


# ----------------------------------------------------------------------------------------------- manifest


def test_load_manifest(tmp_path, caplog):
    (tmp_path / "img").mkdir()
    jpeg(tmp_path / "img" / "a.jpg")
    jpeg(tmp_path / "b.png")
    rows = [au_row(1), au_row(2), au_row(3)]
    path = plain_csv(tmp_path / "manifest.csv", rows, ids=["img/a.jpg", "b.png", "img/gone.jpg"], id_col="path")
    with caplog.at_level(logging.WARNING, logger="data.readers"):
        source = load_manifest(path)
    assert source.ids == ["a", "b"]
    assert source.paths == [str((tmp_path / "img" / "a.jpg").resolve()), str((tmp_path / "b.png").resolve())]
    np.testing.assert_allclose(source.aus, rows[:2], atol=1e-6)
    assert "image file does not exist: gone" in caplog.text


def test_load_manifest_errors(tmp_path):
    path = plain_csv(tmp_path / "m.csv", [au_row(1)], ids=["a"])
    message = error_of(load_manifest, path)
    assert str(path) in message and "no path column" in message
    path = plain_csv(tmp_path / "m.csv", [au_row(1)], ids=["gone.jpg"], id_col="path")
    message = error_of(load_manifest, path)
    assert str(path) in message and "no usable rows" in message


# ----------------------------------------------------------------------------------------------- read_dataset


def test_read_dataset_dispatch(tmp_path):
    root, _ = official(tmp_path)
    assert detect_layout(root) == "official"
    assert read_dataset(root, split="test").ids == ["b"]

    folder = tmp_path / "own"
    folder.mkdir()
    jpeg(folder / "a.jpg")
    plain_csv(folder / "manifest.csv", [au_row(1)], ids=["a.jpg"], id_col="path")
    assert detect_layout(folder) == "manifest"
    assert read_dataset(folder).ids == ["a"]
    assert read_dataset(folder / "manifest.csv", split="test").ids == ["a"]  # no splits: the whole set

    faces = tmp_path / "faces"
    faces.mkdir()
    jpeg(faces / "f.jpg")
    landmark_img_csv(faces / "f.csv", au_row(4), confidence=0.9)
    assert detect_layout(faces) == "openface"
    assert read_dataset(faces).ids == ["f"]
    assert "no usable images" in error_of(read_dataset, faces, min_confidence=0.95)


def test_read_dataset_errors(tmp_path):
    message = error_of(read_dataset, tmp_path / "missing")
    assert str(tmp_path / "missing") in message and "does not exist" in message
    (tmp_path / "junk").mkdir()
    write_text(tmp_path / "junk" / "notes.txt", "hello")
    message = error_of(read_dataset, tmp_path / "junk")
    assert str(tmp_path / "junk") in message and "no data set found" in message
    assert "GANimation" in message and "manifest" in message and "OpenFace" in message
    message = error_of(read_dataset, tmp_path / "junk" / "notes.txt")
    assert "not a dataset" in message


# ----------------------------------------------------------------------------------------------- bad samples
# The readers leave bad samples out and record why in a data.problems.Problems (the one way they report them).


def test_au_table_with_problems_skips_bad_rows_and_duplicates(tmp_path):
    rows = [au_row(1), au_row(2), au_row(3), au_row(4), au_row(5)]
    rows[1][3], rows[2][0], rows[3][16] = np.nan, -2.0, 5.5
    path = plain_csv(tmp_path / "aus.csv", rows, ids=["a", "nan", "neg", "high", "a"])
    problems = Problems()
    table = read_au_table(path, problems=problems)
    assert list(table) == ["a", "nan", "neg", "high"] and table["nan"] is None and table["high"] is None
    np.testing.assert_allclose(table["a"], rows[0], atol=1e-6)  # the first of the duplicates
    assert problems.skipped == {"AU value is NaN or infinite in aus.csv": ["nan"],
                                "AU value is negative in aus.csv": ["neg"],
                                "AU value is above 5 in aus.csv": ["high"],
                                "duplicate id in aus.csv (its first row is used)": ["a"]}


def test_big_table_with_a_nan_row_leaves_it_out(tmp_path):
    n = 12000
    aus = np.round(np.random.default_rng(1).uniform(0, 5, (n, NUM_AUS)), 2)
    ids = [f"f{k}" for k in range(n)]
    text = "id," + ",".join(AU_NAMES) + "\n" + "".join(
        f"{i}," + ",".join("nan" if (k == 77 and c == 5) else f"{v:.2f}" for c, v in enumerate(row)) + "\n"
        for k, (i, row) in enumerate(zip(ids, aus)))
    path = write_text(tmp_path / "aus.csv", text)
    problems = Problems()
    table = read_au_table(path, problems=problems)
    assert table["f77"] is None and problems.skipped == {"AU value is NaN or infinite in aus.csv": ["f77"]}
    np.testing.assert_allclose(table["f11999"], aus[-1], atol=1e-6)


def test_pickle_with_problems_skips_bad_ids(tmp_path):
    bad = au_row(2)
    bad[0] = np.nan
    path = tmp_path / "aus_openface.pkl"
    path.write_bytes(py2_pickle({"good": au_row(1), "bad": bad}))
    problems = Problems()
    table = read_au_pickle(path, allow_pickle=True, problems=problems)
    assert table["bad"] is None and table["good"] is not None
    assert problems.skipped == {"AU value is NaN or infinite in aus_openface.pkl": ["bad"]}


def test_openface_folder_with_per_video_csvs_and_bad_rows(tmp_path):
    """Frames with FeatureExtraction CSVs: failed frames (success 0) are never used; a CSV whose only usable
    row has NaN AUs leaves its image out, recorded."""
    root = tmp_path / "frames"
    root.mkdir()
    for name in ("f1.jpg", "f2.jpg", "f3.jpg"):
        jpeg(root / name)
    write_text(root / "f1.csv", "\n".join([FEATURE_HEADER, feature_row(1, 0.99, 0, au_row(10)),
                                           feature_row(1, 0.80, 1, au_row(11))]) + "\n")
    write_text(root / "f2.csv", "\n".join([FEATURE_HEADER, feature_row(2, 0.0, 0, au_row(12))]) + "\n")
    nan_row = feature_row(3, 0.95, 1, au_row(13)).replace(f"{au_row(13)[0]:.2f}", "nan", 1)
    write_text(root / "f3.csv", "\n".join([FEATURE_HEADER, nan_row]) + "\n")
    problems = Problems()
    source = load_openface_folder(root, problems=problems)
    assert source.ids == ["f1"]
    np.testing.assert_allclose(source.aus[0], au_row(11), atol=1e-6)  # the failed frame's higher score ignored
    assert problems.skipped == {"no usable face row in the OpenFace CSV": ["f2"],
                                "AU value is NaN or infinite in its OpenFace CSV": ["f3"]}


def test_manifest_split_column_through_read_dataset(tmp_path):
    for name in ("a", "b", "c"):
        jpeg(tmp_path / f"{name}.jpg")
    header = "path,split," + ",".join(AU_NAMES)
    body = [f"{n}.jpg,{s}," + ",".join(f"{v:g}" for v in au_row(k))
            for k, (n, s) in enumerate([("a", "train"), ("b", "test"), ("c", "train")])]
    write_text(tmp_path / "manifest.csv", "\n".join([header] + body) + "\n")
    assert read_dataset(tmp_path).ids == ["a", "c"]
    assert read_dataset(tmp_path, split="test").ids == ["b"]
    assert load_manifest(tmp_path / "manifest.csv").ids == ["a", "b", "c"]  # no split asked: every row
    assert "no rows of split 'val'" in error_of(read_dataset, tmp_path, split="val")


def test_manifest_empty_and_nan_au_cells_are_left_out_alike(tmp_path):
    """An empty AU cell used to stop the whole data set while a `nan` cell left its row out."""
    from data.aus import AU_EMPTY, AU_NAN
    for name in ("a", "b", "c"):
        jpeg(tmp_path / f"{name}.jpg")
    cells = [[f"{v:g}" for v in au_row(k)] for k in range(3)]
    cells[1][4], cells[2][0] = "", "nan"
    write_text(tmp_path / "manifest.csv", "\n".join(["path," + ",".join(AU_NAMES)] + [
        f"{n}.jpg," + ",".join(row) for n, row in zip("abc", cells)]) + "\n")
    problems = Problems()
    assert load_manifest(tmp_path / "manifest.csv", problems=problems).ids == ["a"]
    assert problems.skipped == {f"{AU_EMPTY} in manifest.csv": ["b"], f"{AU_NAN} in manifest.csv": ["c"]}


def test_manifest_repeated_ids_on_different_images_are_reported(tmp_path):
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        jpeg(tmp_path / folder / "x.jpg")
    jpeg(tmp_path / "y.jpg")
    write_text(tmp_path / "ids.csv", "\n".join(["path,id," + ",".join(AU_NAMES)] + [
        f"{p},{i}," + ",".join(f"{v:g}" for v in au_row(k))
        for k, (p, i) in enumerate([("one/x.jpg", "s1"), ("y.jpg", "s1"), ("two/x.jpg", "s2")])]) + "\n")
    problems = Problems()
    assert load_manifest(tmp_path / "ids.csv", problems=problems).ids == ["s1", "s2"]
    assert problems.skipped == {"duplicate id in ids.csv on another image (its first row is used)": ["s1 (y.jpg)"]}
    plain_csv(tmp_path / "names.csv", [au_row(1), au_row(2)], ids=["one/x.jpg", "two/x.jpg"], id_col="path")
    problems = Problems()
    assert load_manifest(tmp_path / "names.csv", problems=problems).ids == ["x", "x"]  # both kept
    assert list(problems.warnings.values()) == [["x (two/x.jpg)"]] and not problems.skipped
