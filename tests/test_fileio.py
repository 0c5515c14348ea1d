"""Atomic writes and the clean-up of what killed processes leave: only our own names, only stale ones."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from animevid.errors import OutputError
from animevid.fileio import atomic_path, remove_stale_temporaries, write_bytes_atomic
from tests.temporaries import dead_pid, kill_hard, left_by_a_killed_process, start_writer, temporary_name, this_host

DAY = 24 * 3600


def aged(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_failed_write_leaves_the_destination_as_it_was(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert names(tmp_path) == ["out.png"] and target.read_bytes() == b"old"
    write_bytes_atomic(target, b"new")
    assert names(tmp_path) == ["out.png"] and target.read_bytes() == b"new"


def test_temporaries_name_their_process_and_machine(tmp_path):
    with atomic_path(tmp_path / "out.png") as tmp:
        assert tmp.parent == tmp_path
        assert re.fullmatch(rf"\.out\.png\.{os.getpid()}-{this_host()}\.[a-z0-9_]{{8}}\.part\.png", tmp.name), tmp.name
        assert remove_stale_temporaries(tmp_path) == 0 and tmp.exists()  # its process runs: left alone


def test_only_stale_temporaries_of_ours_are_removed(tmp_path):
    gone = left_by_a_killed_process(tmp_path / "a.png", b"half")
    running = temporary_name(tmp_path / "b.png", os.getpid())
    running.write_bytes(b"being written")
    other_machine = temporary_name(tmp_path / "c.png", dead_pid(), host="0badf0")
    other_machine.write_bytes(b"a job elsewhere")
    running_old = temporary_name(tmp_path / "e.png", os.getpid())  # or a pid reused since
    running_old.write_bytes(b"nobody wrote to it for two days")
    aged(running_old, 2 * DAY)
    someone_elses = [
        tmp_path / ".notes.part.png", tmp_path / "g.png.part", tmp_path / ".h.png.a1b2c3d4.part.png",  # no owner
        tmp_path / f".i.png.{dead_pid()}-0badf0.UPPER123.part.png", tmp_path / f"j.png.{dead_pid()}-0badf0.a1b2c3d4.part.png",
    ]  # fmt: skip
    for path in someone_elses:
        path.write_bytes(b"not ours")
        aged(path, 2 * DAY)

    assert remove_stale_temporaries(tmp_path) == 2
    assert not gone.exists() and not running_old.exists()
    assert running.exists() and other_machine.exists()
    assert all(path.exists() for path in someone_elses)
    aged(other_machine, 2 * DAY)
    assert remove_stale_temporaries(tmp_path) == 1 and not other_machine.exists()


def test_recursive_clean_up_reaches_every_folder_below(tmp_path):
    deep = tmp_path / "x" / "y"
    deep.mkdir(parents=True)
    top = left_by_a_killed_process(tmp_path / "a.png", b"1")
    below = left_by_a_killed_process(deep / "b.png", b"2")
    assert remove_stale_temporaries(tmp_path) == 1 and below.exists() and not top.exists()
    assert remove_stale_temporaries(tmp_path, recursive=True) == 1 and not below.exists()
    assert remove_stale_temporaries(tmp_path / "missing") == 0


def test_unwritable_folder_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match="cannot write to"):
        with atomic_path(tmp_path / "missing" / "out.png"):
            pass


def test_a_real_killed_writers_temporary_is_removed_and_a_running_writers_is_kept(tmp_path):
    killed, leftover = start_writer(tmp_path / "a.safetensors")
    kill_hard(killed)
    running, in_progress = start_writer(tmp_path / "b.safetensors")
    try:
        assert leftover.exists()  # what kill -9 leaves
        (tmp_path / "notes.part").write_text("not ours")
        (tmp_path / "c.safetensors").write_text("a finished file")
        assert remove_stale_temporaries(tmp_path) == 1
        assert not leftover.exists()
        assert in_progress.exists() and (tmp_path / "notes.part").exists() and (tmp_path / "c.safetensors").exists()
    finally:
        kill_hard(running)
