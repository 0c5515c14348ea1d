"""A job on a two-node Ray cluster started with ``ray start`` (head + worker node on this machine)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clitools import run_cli
from tests.jobs.test_folder_videos import LOSSLESS, make_media_folder, packets, tree
from tests.jobs.test_ray import NODE_IP, RAY_ENV

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((NODE_IP, 0))
        return probe.getsockname()[1]


def _ray_start(arguments: list[str], log: Path) -> subprocess.Popen:
    """``ray start --block ...`` in a process group of its own (its daemons too), logging to ``log``."""
    ray = Path(sys.executable).with_name("ray")
    command = [str(ray), "start", "--block", "--disable-usage-stats", f"--node-ip-address={NODE_IP}", *arguments]
    with log.open("w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **RAY_ENV}, start_new_session=True)


def _wait_started(process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while "Ray runtime started" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"ray start did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def _stop(process: subprocess.Popen) -> None:
    """Stop a ``ray start --block`` and every daemon of its group: SIGTERM, then SIGKILL what is left."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return  # the whole group is gone
            process.poll()
            time.sleep(0.2)


@pytest.fixture
def two_nodes(tmp_path, monkeypatch):
    """A head node without CPUs and a worker node with 2: every task must run on the second node."""
    pytest.importorskip("ray")
    for name, value in RAY_ENV.items():
        monkeypatch.setenv(name, value)
    port = _free_port()
    started: list[subprocess.Popen] = []
    try:
        head = _ray_start(["--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false"], tmp_path / "head.log")
        started.append(head)
        _wait_started(head, tmp_path / "head.log")
        worker = _ray_start([f"--address={NODE_IP}:{port}", "--num-cpus=2"], tmp_path / "worker.log")
        started.append(worker)
        _wait_started(worker, tmp_path / "worker.log")
        yield f"{NODE_IP}:{port}"
    finally:
        for process in reversed(started):
            _stop(process)


@pytest.mark.skipif(os.name != "posix", reason="process groups")
def test_a_job_on_a_second_node_started_with_ray_start(two_nodes, tmp_path, random_weights):
    source = make_media_folder(tmp_path / "media")
    assert run_cli("stylize", source, tmp_path / "local", "--weights", random_weights, *LOSSLESS).exit_code == 0
    result = run_cli("stylize", source, tmp_path / "out", "--weights", random_weights, *LOSSLESS[:-1], "--ray", two_nodes)
    assert result.exit_code == 0, result.output
    assert tree(tmp_path / "out") == tree(tmp_path / "local")
    for name in tree(tmp_path / "out"):
        ours, reference = tmp_path / "out" / name, tmp_path / "local" / name
        assert (ours.read_bytes() == reference.read_bytes()) if name.endswith(".png") else (packets(ours) == packets(reference))
    workers = [line for line in result.stderr.splitlines() if " pid " in line and "fps" in line]
    assert workers, result.stderr
