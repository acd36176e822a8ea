"""data/shards.py (and its command, data/tfrecords.py) and the shard branch of data/pipeline.py: writing,
loading, epoch order, resume, workers."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import ROOT
from data.faceset import FaceSet
from data.pipeline import make_dataset, steps_per_epoch
from data.readers import detect_layout, read_dataset
from data.shards import ShardSet, load_shards, write_shards
from utils.errors import UserError

N, SIZE = 24, 16


def files_source(folder, n=N, size=SIZE):
    """n PNG files; sample k has AUs all equal to k / 10 (so a batch tells which samples it holds) and a flat
    colour k * 10. Every 5th image is 20 x 12, so that the writer has to resize it."""
    folder.mkdir(exist_ok=True)
    paths = []
    for k in range(n):
        shape = (12, 20, 3) if k % 5 == 4 else (size, size, 3)
        path = folder / f"s{k:02d}.png"
        cv2.imwrite(str(path), np.full(shape, k * 10, np.uint8))
        paths.append(str(path))
    aus = np.repeat(np.arange(n, dtype=np.float32)[:, None] / 10, 17, axis=1)
    return FaceSet(aus=aus, ids=[f"s{k:02d}" for k in range(n)], paths=paths, name="test files")


@pytest.fixture
def shards(tmp_path):
    source = files_source(tmp_path / "files")
    write_shards(source, tmp_path / "shards", shards=3, size=SIZE)
    return tmp_path / "shards", source


def sample_numbers(batches):
    """The sample k of each row of each batch, from its AUs (k / 10 on the 0-5 scale -> k / 50 on 0-1)."""
    return [[int(round(float(y[0]) * 50)) for y in ys.numpy()] for _, ys in batches]


def test_written_shards_hold_every_sample_once(shards):
    folder, source = shards
    index = json.loads((folder / "tfrecords.json").read_text())
    assert index["count"] == N and [s["count"] for s in index["shards"]] == [8, 8, 8]
    assert detect_layout(folder) == "shards" and detect_layout(folder / "tfrecords.json") == "shards"
    loaded = read_dataset(folder)
    assert isinstance(loaded, ShardSet) and len(loaded) == N and loaded.image_size == SIZE
    everything = loaded.subset(range(N))
    assert sorted(everything.ids) == source.ids
    assert everything.ids != source.ids  # spread over the shards in a seeded random order
    for sample_id, image, aus in zip(everything.ids, everything.images, everything.aus):
        k = int(sample_id[1:])
        assert image.shape == (SIZE, SIZE, 3) and abs(int(image.mean()) - k * 10) <= 1  # resized ones too
        np.testing.assert_allclose(aus, source.aus[k])


def test_image_of_the_right_size_is_stored_byte_for_byte(shards):
    import tensorflow as tf
    folder, source = shards
    loaded = load_shards(folder)
    record = next(iter(tf.data.TFRecordDataset(loaded.files[0])))
    example = tf.train.Example.FromString(record.numpy())
    k = example.features.feature["index"].int64_list.value[0]
    stored = example.features.feature["image"].bytes_list.value[0]
    if k % 5 != 4:
        assert stored == open(source.paths[k], "rb").read()
    else:
        assert stored[:3] == b"\xff\xd8\xff"  # resized, then encoded as JPEG


def test_epochs_are_deterministic_and_resume_exactly(shards):
    source = load_shards(shards[0])
    batch = 5
    assert steps_per_epoch(source, batch) == 4
    first = sample_numbers(make_dataset(source, batch, SIZE, epoch=1, seed=3))
    assert len(first) == 4 and all(len(b) == batch for b in first)
    flat = [k for b in first for k in b]
    assert len(set(flat)) == 20  # no sample twice in an epoch (4 dropped with the remainder)
    assert sample_numbers(make_dataset(source, batch, SIZE, epoch=1, seed=3)) == first
    assert sample_numbers(make_dataset(source, batch, SIZE, epoch=1, seed=3, skip_batches=3)) == first[3:]
    assert sample_numbers(make_dataset(source, batch, SIZE, epoch=2, seed=3)) != first
    assert sample_numbers(make_dataset(source, batch, SIZE, epoch=1, seed=4)) != first


def test_shuffle_off_reads_in_written_order_and_images_match_their_labels(shards):
    source = load_shards(shards[0])
    written = [int(i[1:]) for i in source.subset(range(N)).ids]
    batches = list(make_dataset(source, 6, SIZE, shuffle=False, flip=False))
    assert [k for b in sample_numbers(batches) for k in b] == written
    for (real, ys) in batches:  # the pixels travel with their own AUs
        levels = (real.numpy().mean(axis=(1, 2, 3)) + 1) * 127.5
        np.testing.assert_allclose(levels, ys.numpy()[:, 0] * 50 * 10, atol=1.5)


def test_workers_split_every_epoch_without_overlap(shards):
    source = load_shards(shards[0])
    one = [k for b in sample_numbers(make_dataset(source, 4, SIZE, epoch=0, seed=1)) for k in b]
    w0 = sample_numbers(make_dataset(source, 2, SIZE, epoch=0, seed=1, num_workers=2, worker_index=0))
    w1 = sample_numbers(make_dataset(source, 2, SIZE, epoch=0, seed=1, num_workers=2, worker_index=1))
    assert len(w0) == len(w1) == 6
    together = [k for a, b in zip(w0, w1) for pair in zip(a, b) for k in pair]
    assert together == one  # the two workers interleave to the single worker's order
    resumed = sample_numbers(make_dataset(source, 2, SIZE, epoch=0, seed=1, skip_batches=2, num_workers=2,
                                          worker_index=1))
    assert resumed == w1[2:]


def test_training_size_differs_from_the_shards(shards):
    source = load_shards(shards[0])
    (real, _), = list(make_dataset(source, N, 8, shuffle=False, flip=False))
    assert real.shape == (N, 8, 8, 3)
    samples = source.subset([0, 5])  # in memory at 16 px, as the training loop's sample grid takes them
    (real, _), = list(make_dataset(samples, 2, 8, shuffle=False, flip=False))
    assert real.shape == (2, 8, 8, 3)


def test_damaged_shards_are_refused(shards):
    folder, _ = shards
    first = sorted(folder.glob("*.tfrecord"))[0]
    first.write_bytes(first.read_bytes()[:-10])
    with pytest.raises(UserError, match="bytes, but was written with"):
        read_dataset(folder)
    first.unlink()
    with pytest.raises(UserError, match="missing"):
        read_dataset(folder)
    (folder / "tfrecords.json").write_text("{}")
    with pytest.raises(UserError, match="not a shard index"):
        read_dataset(folder)


def test_writer_leaves_nothing_on_failure(tmp_path):
    source = files_source(tmp_path / "files", n=6)
    (tmp_path / "files" / "s03.png").write_bytes(b"not a png any more")
    with pytest.raises(UserError, match="s03.png"):
        write_shards(source, tmp_path / "out", shards=2, size=SIZE)
    assert sorted(os.listdir(tmp_path)) == ["files"]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UserError, match="not an empty folder"):
        write_shards(source, tmp_path / "full", shards=2)
    with pytest.raises(UserError, match="--shards"):
        write_shards(source, tmp_path / "out", shards=7)


@pytest.mark.subprocess
@pytest.mark.slow
def test_tfrecords_command(tmp_path):
    source = files_source(tmp_path / "faces", n=6)
    lines = ["path," + ",".join(f"AU{n}" for n in "01 02 04 05 06 07 09 10 12 14 15 17 20 23 25 26 45".split())]
    lines += [f"{os.path.basename(p)}," + ",".join(f"{v:g}" for v in a) for p, a in zip(source.paths, source.aus)]
    (tmp_path / "faces" / "manifest.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "faces" / "s05.png").write_bytes(b"broken")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "data.tfrecords", *map(str, args)], cwd=ROOT,
                              env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True, text=True, timeout=120)

    ok = run("--data", tmp_path / "faces", "--out", tmp_path / "shards", "--shards", "2", "--size", SIZE)
    assert ok.returncode == 0, ok.stderr
    assert "5 usable samples, 1 left out" in ok.stdout and "wrote 5 samples in 2 shards" in ok.stdout
    assert len(read_dataset(tmp_path / "shards")) == 5
    bad = run("--data", tmp_path / "faces", "--out", tmp_path / "more", "--shards", "9")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--shards must be between 1 and" in bad.stderr
    assert not (tmp_path / "more").exists() and not [n for n in os.listdir(tmp_path) if n.startswith(".tmp")]


@pytest.mark.parametrize("flags, message", [
    (["--size", "4"], "--size: 4 is less than 8 pixels"),
    (["--quality", "0"], "--quality: 0 is not a JPEG quality between 1 and 100"),
])
def test_tfrecords_flag_values_are_checked_before_the_data(tmp_path, flags, message):
    from data.tfrecords import main
    with pytest.raises(UserError) as error:  # the data set does not exist: the flags were checked first
        main(["--data", str(tmp_path / "none"), "--out", str(tmp_path / "shards"), "--shards", "2", *flags])
    assert str(error.value) == message


def test_a_killed_write_is_finished_or_removed_by_the_next_one(tmp_path):
    """Kills injected at the writer's file operations (tests/test_folders.py): killed before the folder was
    complete, nothing is left at --out; killed after, the next write finds it complete. Either way the next
    write leaves exactly its folder, which follows the umask."""
    from test_folders import killed_at
    source = files_source(tmp_path / "files", n=6)
    for n in (1, 2):  # 1: tfrecords.json (the marker), 2: the folder into place
        parent = tmp_path / f"kill{n}"
        with killed_at(n):
            write_shards(source, parent / "shards", shards=2, size=SIZE)
        assert not (parent / "shards").exists() and len(os.listdir(parent)) == 1  # the hidden temporary folder
        umask = os.umask(0o027)
        try:
            write_shards(source, parent / "shards", shards=2, size=SIZE)
        finally:
            os.umask(umask)
        assert os.listdir(parent) == ["shards"] and len(load_shards(parent / "shards")) == 6
        assert os.stat(parent / "shards").st_mode & 0o777 == 0o750
