"""The cluster a job runs on: which one (``--ray``, ``RAY_ADDRESS``, Ray's current-cluster file), one
that does not answer, one that goes away mid-job, and a job on a two-node cluster started with
``ray start`` (head + worker node on this machine).

A job that could hang runs in a subprocess with a ``timeout``: a regression fails instead of hanging.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from animevid.jobs.ray_cluster import ClusterAddress, current_cluster_file, fits, host_and_port, resolve_address
from animevid.errors import UsageError
from tests import CHECKOUT
from tests.clitools import run_cli
from tests.conftest import make_image
from tests.jobs.test_folder_videos import LOSSLESS, make_media_folder, packets, tree
from tests.jobs.test_ray import NODE_IP, RAY_ENV

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _free_port(host: str = NODE_IP) -> int:
    """A port nothing listens on (as soon as this returns)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _ray_start(arguments: list[str], log: Path, temp: Path) -> subprocess.Popen:
    """``ray start --block ...`` in a process group of its own (its daemons too), logging to ``log``,
    its state (and the current-cluster file it writes) in ``temp``."""
    ray = Path(sys.executable).with_name("ray")
    command = [str(ray), "start", "--block", "--disable-usage-stats", f"--node-ip-address={NODE_IP}", *arguments]
    env = {**os.environ, **RAY_ENV, "RAY_TMPDIR": str(temp)}
    with log.open("w") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _wait_started(process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while "Ray runtime started" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"ray start did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


def _stop(process: subprocess.Popen) -> None:
    """Stop a ``ray start --block`` and every daemon of its group: SIGTERM, then SIGKILL what is left
    (some daemons outlive a SIGTERM by tens of seconds; the test's cluster keeps nothing worth it)."""
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
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


@dataclasses.dataclass
class TwoNodes:
    address: str
    head: subprocess.Popen
    worker: subprocess.Popen


@pytest.fixture
def two_nodes(tmp_path, monkeypatch):
    """A head node without CPUs and a worker node with 2: every task must run on the second node.
    Its state goes to a short folder of its own (Ray's socket paths are limited), removed after."""
    pytest.importorskip("ray")
    for name, value in RAY_ENV.items():
        monkeypatch.setenv(name, value)
    temp = Path(tempfile.mkdtemp(prefix="rs"))  # in the session's temporary folder
    port = _free_port()
    started: list[subprocess.Popen] = []
    try:
        head = _ray_start(["--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false"], tmp_path / "head.log", temp)
        started.append(head)
        _wait_started(head, tmp_path / "head.log")
        worker = _ray_start([f"--address={NODE_IP}:{port}", "--num-cpus=2"], tmp_path / "worker.log", temp)
        started.append(worker)
        _wait_started(worker, tmp_path / "worker.log")
        yield TwoNodes(f"{NODE_IP}:{port}", head, worker)
    finally:
        for process in reversed(started):
            _stop(process)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.skipif(os.name != "posix", reason="process groups")
def test_a_job_on_a_second_node_started_with_ray_start(two_nodes, tmp_path, random_weights):
    source = make_media_folder(tmp_path / "media")
    assert run_cli("stylize", source, tmp_path / "local", "--weights", random_weights, *LOSSLESS).exit_code == 0
    result = run_cli("stylize", source, tmp_path / "out", "--weights", random_weights, *LOSSLESS[:-1], "--ray", two_nodes.address)
    assert result.exit_code == 0, result.output
    assert tree(tmp_path / "out") == tree(tmp_path / "local")
    for name in tree(tmp_path / "out"):
        ours, reference = tmp_path / "out" / name, tmp_path / "local" / name
        assert (ours.read_bytes() == reference.read_bytes()) if name.endswith(".png") else (packets(ours) == packets(reference))
    workers = [line for line in result.stderr.splitlines() if " pid " in line and "fps" in line]
    assert workers, result.stderr


# -- which cluster: the address ray.init would pick, and where it came from ---------------------------


def test_the_current_cluster_file_is_where_ray_looks_for_it(monkeypatch, tmp_path):
    utils = pytest.importorskip("ray._common.utils")
    if not hasattr(utils, "get_ray_address_file"):
        pytest.skip("this Ray names its current-cluster file elsewhere")
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "a"))
    assert current_cluster_file() == tmp_path / "a" / "ray" / "ray_current_cluster"
    assert current_cluster_file() == Path(utils.get_ray_address_file(None))
    monkeypatch.delenv("RAY_TMPDIR")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "b"))
    assert current_cluster_file() == Path(utils.get_ray_address_file(None))


def test_an_address_given_then_ray_address_then_the_file(monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert resolve_address(None) == ClusterAddress(None, "no address")  # nothing recorded: start one
    assert resolve_address("auto") == ClusterAddress("auto", "--ray auto")  # left to ray.init: a Ray process here
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text("10.1.2.3:6379\n")
    recorded = resolve_address(None)
    assert recorded.address == "10.1.2.3:6379" and recorded.from_file and str(tmp_path / "ray") in recorded.origin
    assert resolve_address("auto").address == "10.1.2.3:6379"
    monkeypatch.setenv("RAY_ADDRESS", "10.9.9.9:1234")
    assert resolve_address(None) == ClusterAddress("10.9.9.9:1234", "RAY_ADDRESS")
    assert resolve_address("10.5.5.5:6379") == ClusterAddress("10.5.5.5:6379", "--ray")
    assert resolve_address("local") == ClusterAddress(None, "--ray local")
    monkeypatch.setenv("RAY_ADDRESS", "local")
    assert resolve_address(None) == ClusterAddress(None, "RAY_ADDRESS")


def test_addresses_and_what_a_node_can_run():
    assert host_and_port("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert host_and_port("ray://head:10001") == ("head", 10001)
    assert host_and_port("[::1]:6379") == ("::1", 6379)
    with pytest.raises(UsageError, match="not a Ray address"):
        host_and_port("head")
    node = {"CPU": 2.0, "memory": 1e9, "node:10.0.0.5": 1.0}
    assert fits({"CPU": 1, "GPU": 0}, node)
    assert not fits({"CPU": 1, "GPU": 1}, node)
    assert not fits({"CPU": 4}, node)
    assert not fits({"CPU": 1, "a-custom-resource": 1}, node)


# -- a cluster that does not answer: an error naming it, or (no address asked for) a local cluster ----


def _photo(folder: Path) -> Path:
    from animevid.imageio import write_image

    folder.mkdir(parents=True, exist_ok=True)
    write_image(folder / "photo.png", make_image(20, 24))
    return folder / "photo.png"


def _animevid(*args: object, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``animevid ARGS`` in a process of its own, killed after ``timeout`` seconds (then the test fails)."""
    command = [sys.executable, "-m", "animevid", *(str(a) for a in args)]
    environment = {**os.environ, **RAY_ENV, **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, cwd=CHECKOUT, env=environment, timeout=timeout)


def _one_line_error(child: subprocess.CompletedProcess, *fragments: str, alone: bool = True) -> str:
    """The command failed with an ``error:`` line last on stderr (``alone``: and nothing else there)."""
    lines = [line for line in child.stderr.splitlines() if line.strip()]
    assert child.returncode not in (0, None) and lines and lines[-1].startswith("error: "), child.stderr
    assert len(lines) == 1 or not alone, child.stderr
    assert "Traceback" not in child.stderr, child.stderr
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]
    return lines[-1]


@pytest.fixture
def stale_ray_temp():
    """A Ray temporary folder whose current-cluster file names a cluster that is gone (as ``ray start``
    leaves it when its daemons die without ``ray stop``), and that address."""
    pytest.importorskip("ray")
    temp = Path(tempfile.mkdtemp(prefix="rt"))  # short: a local cluster started here keeps its sockets here
    address = f"127.0.0.1:{_free_port('127.0.0.1')}"
    (temp / "ray").mkdir()
    (temp / "ray" / "ray_current_cluster").write_text(address)
    yield temp, address
    shutil.rmtree(temp, ignore_errors=True)


def test_a_stale_current_cluster_file_without_an_address_starts_a_local_cluster(stale_ray_temp, tmp_path, random_weights):
    temp, address = stale_ray_temp
    photo = _photo(tmp_path / "in")
    child = _animevid("stylize", photo, tmp_path / "out.png", "--weights", random_weights, "-q", "--ray",
                      env={"RAY_TMPDIR": str(temp)}, timeout=240)  # fmt: skip
    assert child.returncode == 0, child.stderr
    assert (tmp_path / "out.png").is_file()
    warning = [line for line in child.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warning) == 1 and address in warning[0] and "current-cluster file" in warning[0], child.stderr
    assert "ray stop" in warning[0] and "starting a local cluster" in warning[0]
    assert (temp / "ray" / "ray_current_cluster").read_text() == address  # the user's file: `ray stop` forgets it


def test_a_stale_current_cluster_file_with_auto_is_an_error_naming_it(stale_ray_temp, tmp_path, random_weights):
    temp, address = stale_ray_temp
    photo = _photo(tmp_path / "in")
    child = _animevid("stylize", photo, tmp_path / "out.png", "--weights", random_weights, "--ray", "auto",
                      env={"RAY_TMPDIR": str(temp)})  # fmt: skip
    _one_line_error(child, f"no Ray cluster answers at {address}", str(temp / "ray" / "ray_current_cluster"), "ray stop")
    assert child.returncode == 2 and not (tmp_path / "out.png").exists()


def test_an_address_where_nothing_listens_is_a_one_line_error_naming_it(tmp_path, random_weights):
    address = f"127.0.0.1:{_free_port('127.0.0.1')}"
    photo = _photo(tmp_path / "in")
    child = _animevid("stylize", photo, tmp_path / "out.png", "--weights", random_weights, "--ray", address)
    _one_line_error(child, f"no Ray cluster answers at {address} (from --ray)", "refused", "--ray alone")
    assert child.returncode == 2 and not (tmp_path / "out.png").exists()


def test_ray_address_where_nothing_listens_is_a_one_line_error_naming_it(tmp_path, random_weights):
    address = f"127.0.0.1:{_free_port('127.0.0.1')}"
    photo = _photo(tmp_path / "in")
    child = _animevid("stylize", photo, tmp_path / "out.png", "--weights", random_weights, "--ray", env={"RAY_ADDRESS": address})
    _one_line_error(child, f"no Ray cluster answers at {address} (from RAY_ADDRESS)", "unset it")
    assert child.returncode == 2 and not (tmp_path / "out.png").exists()


@pytest.mark.slow
def test_a_port_that_answers_but_is_no_ray_cluster_fails_in_bounded_time(tmp_path, random_weights):
    """The probe passes (the port accepts connections) and ray.init, cut to one attempt, gives up."""
    photo = _photo(tmp_path / "in")
    with socket.socket() as listener:
        listener.bind(("", 0))  # every interface: Ray dials this machine's address for 127.0.0.1
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        child = _animevid("stylize", photo, tmp_path / "out.png", "--weights", random_weights, "--ray", address, timeout=180)
    _one_line_error(child, f"cannot join the Ray cluster at {address} (from --ray)", alone=False)  # Ray's log too


# -- a cluster that goes away mid-job ------------------------------------------------------------------


def stuck_video_task(weights, task, data):
    """b.mkv's task never ends (the cluster goes away meanwhile); a.mp4's and the photo's, submitted
    first, take the worker node's two CPUs first and finish."""
    from animevid.jobs.ray import stylize_file_task

    if task.name.endswith("b.mkv"):
        time.sleep(3600)
    return stylize_file_task(weights, task, data)


_LOST_DRIVER = """
import sys
import animevid.jobs.ray as ray_jobs
import animevid.jobs.ray_cluster as ray_cluster
from animevid._cli import main
from tests.jobs.test_ray_cluster import stuck_video_task

ray_jobs.stylize_file_task = stuck_video_task
ray_cluster.RAY_WAITS = ray_cluster.RayWaits(check_every=0.5, lost_after=5)  # the test's patience, not a user's
main(sys.argv[1:])
"""


@pytest.mark.skipif(os.name != "posix", reason="process groups")
def test_a_cluster_lost_mid_job_ends_in_a_one_line_error_and_keeps_the_finished_outputs(two_nodes, tmp_path, random_weights):
    source = make_media_folder(tmp_path / "media")
    out = tmp_path / "out"
    command = [sys.executable, "-c", _LOST_DRIVER, "stylize", source, out, "--weights", random_weights, *LOSSLESS, "--ray", two_nodes.address]
    driver = subprocess.Popen([str(c) for c in command], stderr=subprocess.PIPE, text=True, cwd=CHECKOUT, env={**os.environ, **RAY_ENV})
    try:
        deadline = time.monotonic() + 120
        while not ((out / "photo.png").exists() and (out / "a.mp4").exists()):
            assert driver.poll() is None and time.monotonic() < deadline, "the first two outputs were not written"
            time.sleep(0.5)
        os.killpg(two_nodes.head.pid, signal.SIGKILL)  # the head node dies: the cluster's GCS with it
        _, stderr = driver.communicate(timeout=120)  # bounded: lost_after, then the cleanup
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    error = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert driver.returncode == 1 and len(error) == 1, stderr
    assert f"the Ray cluster at {two_nodes.address} has not answered" in error[0], error[0]
    assert "2 of 3 files were written: rerun with --skip-existing" in error[0], error[0]
    assert tree(out) == ["a.mp4", "photo.png"]  # the finished outputs, and no temporaries
