import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from animevid.fileio import STALE_AFTER_SECONDS, atomic_path, is_temporary_name, remove_stale_temporaries

# A writer that starts an atomic write, says where its temporary is, and waits to be killed.
_WRITER = """
import sys, time
from animevid.fileio import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half of it")
    print(tmp, flush=True)
    time.sleep(120)
"""


def start_writer(destination: Path) -> tuple[subprocess.Popen, Path]:
    """A real process in the middle of an atomic write to ``destination``; returns it and its temporary."""
    process = subprocess.Popen([sys.executable, "-c", _WRITER, str(destination)], stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline().strip()
    assert line, "the writer did not start"
    return process, Path(line)


def kill_hard(process: subprocess.Popen) -> None:
    """kill -9, as power loss or the OOM killer would: no cleanup code runs."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def test_temporaries_name_their_writer_and_keep_the_extension(tmp_path):
    with atomic_path(tmp_path / "photo.png") as tmp:
        assert tmp.name.startswith(f".photo.png.pid{os.getpid()}.") and tmp.name.endswith(".part.png")
        assert is_temporary_name(tmp.name)
    assert not is_temporary_name("photo.png") and not is_temporary_name(".photo.png.part")


def test_a_killed_writers_temporary_is_removed_and_a_running_writers_is_kept(tmp_path):
    killed, leftover = start_writer(tmp_path / "a.safetensors")
    kill_hard(killed)
    running, in_progress = start_writer(tmp_path / "b.safetensors")
    try:
        assert leftover.exists()  # what kill -9 leaves
        (tmp_path / "notes.part").write_text("not ours")
        (tmp_path / "c.safetensors").write_text("a finished file")
        assert remove_stale_temporaries(tmp_path) == [leftover]
        assert in_progress.exists() and (tmp_path / "notes.part").exists() and (tmp_path / "c.safetensors").exists()
    finally:
        kill_hard(running)


def test_a_temporary_untouched_for_a_day_is_stale_even_if_its_pid_runs(tmp_path):
    # The pid may belong to an unrelated process by now (pids are reused); our own pid stands for one that runs.
    old = tmp_path / f".x.png.pid{os.getpid()}.abcd1234.part.png"
    recent = tmp_path / f".y.png.pid{os.getpid()}.abcd1234.part.png"
    for path in (old, recent):
        path.write_bytes(b"x")
    a_day_ago = time.time() - STALE_AFTER_SECONDS - 60
    os.utime(old, (a_day_ago, a_day_ago))
    assert remove_stale_temporaries(tmp_path) == [old]
    assert recent.exists()


def test_temporaries_of_versions_that_did_not_record_the_pid_are_stale(tmp_path):
    legacy = tmp_path / ".x.png.a1b2c3d4.part.png"
    legacy.write_bytes(b"x")
    assert remove_stale_temporaries(tmp_path) == [legacy]


def test_a_missing_folder_has_nothing_to_clean(tmp_path):
    assert remove_stale_temporaries(tmp_path / "no-such-folder") == []
