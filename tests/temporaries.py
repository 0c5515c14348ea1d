"""Temporary files as a killed process leaves them, named as the documented format says
(``.<name>.<pid>-<host>.<8 random chars>.part<suffix>``, host = 6 hex digits of SHA-1 of the host name)."""

from __future__ import annotations

import hashlib
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
