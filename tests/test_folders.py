"""utils.files.replace_folder, the one way every folder is written (export, TFRecord shards, prepared data sets,
imported run directories): a kill at any point between its file operations leaves a complete folder, the next
write or read recovers it, and no leftovers survive the next write. Kills are injected, not raced: the n-th file
operation and every one after it raise, as if the process had died there."""
import contextlib
import os
import shutil
import subprocess
import sys

import pytest

from utils.files import atomic_write_text, recover_folder, replace_folder


class Killed(BaseException):
    """The process died here: neither this file operation nor any later one (cleanup included) happens."""


@contextlib.contextmanager
def killed_at(n):
    """Make the n-th call (from 1) of os.replace / shutil.rmtree and every later one raise Killed.
    Yields a list whose first item counts the calls; n=None counts without killing."""
    calls = [0]
    real = {"replace": os.replace, "rmtree": shutil.rmtree}

    def wrap(kind):
        def operation(*args, **kwargs):
            calls[0] += 1
            if n is not None and calls[0] >= n:
                raise Killed(kind)
            return real[kind](*args, **kwargs)
        return operation

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "replace", wrap("replace"))
        mp.setattr(shutil, "rmtree", wrap("rmtree"))
        try:
            yield calls
        except Killed:
            pass


def write_version(path, version):
    """A folder holding `version`: two files, the marker `done` written last."""
    with replace_folder(path, "done") as tmp:
        os.makedirs(os.path.join(tmp, "sub"))
        with open(os.path.join(tmp, "sub", "data"), "w") as f:
            f.write(version)
        atomic_write_text(os.path.join(tmp, "done"), version)


def version(path):
    return open(os.path.join(path, "sub", "data")).read()


def operations(tmp_path, existing):
    """How many file operations one write makes (the kill points to try)."""
    path = str(tmp_path / "count" / "x")
    if existing:
        write_version(path, "old")
    with killed_at(None) as calls:
        write_version(path, "new")
    return calls[0]


@pytest.mark.parametrize("existing", [True, False], ids=["replacing", "new"])
def test_a_kill_at_any_point_leaves_a_complete_folder(tmp_path, existing):
    total = operations(tmp_path, existing)
    assert total == (4 if existing else 2)  # marker, [old aside], new into place, [old removed]
    for n in range(1, total + 2):
        parent = tmp_path / f"kill{n}"
        path = str(parent / "x")
        if existing:
            write_version(path, "old")
        with killed_at(n):
            write_version(path, "new")
        recover_folder(path, "done", clean=False)  # what a reader does first
        if existing or os.path.exists(path):
            assert version(path) in ("old", "new"), n
            assert version(path) == open(os.path.join(path, "done")).read()  # never a mix
        if n > total:
            assert version(path) == "new" and os.listdir(parent) == ["x"]
        write_version(path, "newer")  # the next write recovers, replaces and cleans up
        assert version(path) == "newer" and os.listdir(parent) == ["x"], n


def test_the_complete_new_folder_wins_over_the_old_one(tmp_path):
    """Killed between moving the old folder aside and the new one in: the new one is moved in."""
    path = str(tmp_path / "x")
    write_version(path, "old")
    with killed_at(3):  # 1 marker, 2 old aside, 3 new into place
        write_version(path, "new")
    assert not os.path.exists(path) and len(os.listdir(tmp_path)) == 2  # .x-old-*, .x-tmp-*
    assert recover_folder(path, "done", clean=False) and version(path) == "new"


def test_an_error_while_building_keeps_the_old_folder_and_leaves_nothing(tmp_path):
    path = str(tmp_path / "x")
    write_version(path, "old")
    with pytest.raises(ValueError):
        with replace_folder(path, "done") as tmp:
            atomic_write_text(os.path.join(tmp, "done"), "new")
            raise ValueError("disk full")
    with pytest.raises(RuntimeError, match="without its completion marker"):
        with replace_folder(path, "done"):
            pass
    assert version(path) == "old" and os.listdir(tmp_path) == ["x"]


def test_a_partial_folder_is_never_moved_in_and_is_removed_by_the_next_write(tmp_path):
    path = str(tmp_path / "x")
    with killed_at(1):  # the marker's rename: the new folder is not complete
        write_version(path, "new")
    assert not recover_folder(path, "done") and not os.path.exists(path)
    assert os.listdir(tmp_path) == []  # clean: the partial folder is gone


@pytest.mark.subprocess
def test_leftovers_of_a_running_writer_are_left_alone(tmp_path):
    """Another process (alive) is writing x: a reader or writer here neither moves nor removes its folder."""
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as other:
        try:
            busy = tmp_path / f".x-tmp-{other.pid}-abc"
            (busy / "sub").mkdir(parents=True)
            (busy / "done").write_text("")
            assert not recover_folder(str(tmp_path / "x"), "done") and busy.is_dir()
        finally:
            other.kill()
    assert recover_folder(str(tmp_path / "x"), "done") and not busy.exists()  # its writer is gone


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_folders_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_version(str(tmp_path / "x"), "v")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "x").st_mode & 0o777 == 0o777 & ~umask
