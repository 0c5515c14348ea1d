"""Temporary files as a killed process leaves them, named as the documented format says
(``.<name>.<pid>-<host>.<8 random chars>.part<suffix>``, host = 6 hex digits of SHA-1 of the host name)."""

from __future__ import annotations

import hashlib
import signal
import socket
import subprocess
import sys
from pathlib import Path


def dead_pid() -> int:
    """The id of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def this_host() -> str:
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]


def temporary_name(destination: Path, pid: int, host: str | None = None) -> Path:
    return destination.parent / f".{destination.name}.{pid}-{host or this_host()}.k9z8y7x6.part{destination.suffix}"


def left_by_a_killed_process(destination: Path, data: bytes) -> Path:
    """A temporary for ``destination`` whose process is gone, as ``kill -9`` leaves one."""
    path = temporary_name(destination, dead_pid())
    path.write_bytes(data)
    return path


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
