"""Which Ray cluster a job runs on, joining or starting it, and watching it: every wait bounded.

``ray.init()`` alone can wait a quarter of an hour for a cluster that is gone: without an address
it joins the one named in Ray's current-cluster file, which ``ray start`` writes and nothing removes
when the cluster dies (only ``ray stop`` does), and its client retries the dead address 20 times,
half a minute each. And once joined, a task that no live node can run waits for ever, and a driver
whose cluster vanished gets no answer until Ray ends the whole process. So, in stages:

* :func:`resolve_address`: the address ``ray.init`` would pick, and where it came from (``--ray``,
  ``RAY_ADDRESS``, or the current-cluster file), for messages that say what to change.
* :func:`answers`: a TCP connection to that address, bounded (a dead cluster refuses it at once).
* :func:`join_or_start`: an address that does not answer is a one-line :class:`UsageError` naming
  it and its origin; with no address asked for, a stale current-cluster file is a warning and a
  fresh local cluster (as documented: "start or join"). ``ray.init`` itself is cut to one attempt
  at the cluster's GCS, so that a port that answers but is no Ray cluster fails in tens of seconds.
* :class:`ClusterWatch`: a thread that looks at the cluster every few seconds; the job's waits ask
  it (without blocking) whether their tasks can still finish, and stop with a
  :class:`ClusterError` when the cluster has stopped answering or no live node could run a task.

Every bound is in :data:`RAY_WAITS`. The ``ray`` module is passed in: :mod:`animevid.jobs.ray`
imports it, only when a job asks for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ClusterError, UsageError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RayWaits:
    """How long any Ray path of a job waits, in seconds: the one place for these bounds."""

    probe: float = 5.0  # one TCP connection to a cluster's address (a dead one refuses it at once)
    # GCS connection attempts ray.init makes once the address answered; each can take ~40 s in Ray
    # 2.60 (its default is 20 attempts: about 14 minutes for a port that answers but is no cluster).
    join_attempts: int = 1
    check_every: float = 2.0  # how often the watch looks at the cluster, and the job's waits at the watch
    # The cluster not answering mid-job: long enough for a busy head node, and shorter than the
    # 60 s after which Ray ends a driver whose GCS is gone (a page of log, no message of ours).
    lost_after: float = 20.0
    # A task no live node could run: the time an autoscaler has to bring up a node that can.
    infeasible_grace: float = 60.0


RAY_WAITS = RayWaits()  # what jobs use (read when a job starts: a test may swap it)


# -- which cluster ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterAddress:
    """The cluster ``ray.init`` would use, and where that address came from."""

    address: str | None  # host:port, ray://host:port or "auto"; None: start a local cluster
    origin: str  # for messages: "--ray", "RAY_ADDRESS", "Ray's current-cluster file ...", ...

    @property
    def from_file(self) -> bool:
        return self.origin.startswith("Ray's current-cluster file")


def current_cluster_file() -> Path:
    """Where ``ray start`` writes its cluster's address and ``ray.init()`` looks for one, as Ray
    2.x computes it: ``$RAY_TMPDIR``, else ``$TMPDIR`` on Linux, else ``/tmp``; then ``ray/ray_current_cluster``."""
    if "RAY_TMPDIR" in os.environ:
        root = os.environ["RAY_TMPDIR"]
    elif sys.platform.startswith("linux") and "TMPDIR" in os.environ:
        root = os.environ["TMPDIR"]
    elif sys.platform.startswith(("linux", "darwin")):
        root = "/tmp"
    else:
        root = tempfile.gettempdir()
    return Path(root) / "ray" / "ray_current_cluster"


def resolve_address(address: str | None) -> ClusterAddress:
    """The cluster a job asking for ``address`` runs on, in ``ray.init``'s order: an address given
    (``local``: start one), then ``RAY_ADDRESS``, then the current-cluster file; ``auto`` with
    neither is left to ``ray.init`` (a Ray process on this machine); else a new local cluster."""
    if address == "local":
        return ClusterAddress(None, "--ray local")
    if address and address != "auto":
        return ClusterAddress(address, "--ray")
    from_environment = os.environ.get("RAY_ADDRESS", "").strip()
    if from_environment == "local":
        return ClusterAddress(None, "RAY_ADDRESS")
    if from_environment and from_environment != "auto":
        return ClusterAddress(from_environment, "RAY_ADDRESS")
    file = current_cluster_file()
    with contextlib.suppress(OSError):
        recorded = file.read_text().strip()
        if recorded:
            return ClusterAddress(recorded, f"Ray's current-cluster file {file}")
    if "auto" in (address, from_environment):
        return ClusterAddress("auto", "--ray auto")
    return ClusterAddress(None, "no address")


def host_and_port(address: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``ray://host:port`` as (host, port); :class:`UsageError` otherwise."""
    bare = address.split("://", 1)[-1].rstrip("/")
    host, _, port = bare.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise UsageError(f"--ray {address}: not a Ray address (host:port, ray://host:port, auto or local)")
    return host, int(port)


def answers(address: str, timeout: float) -> str | None:
    """None when something at ``address`` accepts a TCP connection within ``timeout`` seconds, else why not."""
    host, port = host_and_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()


# -- joining or starting -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Joined:
    """The cluster a job is on: the address the watch probes, and where the job's address came from."""

    address: str
    origin: str


def join_or_start(ray: Any, address: str | None, init_options: dict[str, Any], waits: RayWaits) -> Joined:
    """Join the cluster ``address`` names (see :func:`resolve_address`) or start a local one, in
    bounded time; a cluster that does not answer is a :class:`UsageError` saying what to do."""
    cluster = resolve_address(address)
    options = {"logging_level": "WARNING", **init_options}
    if cluster.address is not None and cluster.address != "auto":
        silent = answers(cluster.address, waits.probe)
        if silent is not None and cluster.from_file and address is None:
            logger.warning(
                "no Ray cluster answers at %s, the address in %s (%s): a cluster that is gone "
                "(`ray stop` forgets it); starting a local cluster", cluster.address, cluster.origin.removeprefix("Ray's "), silent,
            )  # fmt: skip
            cluster = ClusterAddress(None, "no address")
        elif silent is not None:
            raise UsageError(f"no Ray cluster answers at {cluster.address} (from {cluster.origin}): {silent}; {_advice(cluster)}")
    if cluster.address is None:
        _init(ray, "local", options, cluster)
        return Joined(ray.get_runtime_context().gcs_address, "a local cluster started for this job")
    # Given as the caller gave it (None, auto): ray.init then reads RAY_ADDRESS or the file itself,
    # and uses the token of a local cluster with authentication, as it does for an address it found.
    with _one_gcs_attempt(waits):
        _init(ray, address, options, cluster)
    if cluster.address.startswith("ray://"):
        return Joined(cluster.address, cluster.origin)  # a Ray Client: its server is what answers
    return Joined(ray.get_runtime_context().gcs_address, cluster.origin)


def _init(ray: Any, address: str | None, options: dict[str, Any], cluster: ClusterAddress) -> None:
    try:
        ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        where = f"the Ray cluster at {cluster.address} (from {cluster.origin})" if cluster.address else "a local Ray cluster"
        raise UsageError(f"cannot {'join' if cluster.address else 'start'} {where}: {str(exc).splitlines()[0]}") from None


def _advice(cluster: ClusterAddress) -> str:
    if cluster.from_file:
        return "it names a cluster that is gone: run `ray stop` to forget it, give --ray ADDRESS, or --ray alone to start a local cluster"
    if cluster.origin == "RAY_ADDRESS":
        return "set RAY_ADDRESS to a running cluster, or unset it to start a local cluster with --ray alone"
    return "give the address of a running cluster (`ray status` on its head node), or --ray alone to start a local cluster"


@contextlib.contextmanager
def _one_gcs_attempt(waits: RayWaits) -> Iterator[None]:
    """``ray.init`` tries the cluster's GCS ``waits.join_attempts`` times instead of 20 (unless the
    user set Ray's own ``RAY_gcs_server_port_wait_time_s``, which it honours exactly)."""
    name = "RAY_gcs_server_port_wait_time_s"
    if name in os.environ:
        yield
        return
    os.environ[name] = str(waits.join_attempts)
    try:
        yield
    finally:
        os.environ.pop(name, None)


# -- watching ----------------------------------------------------------------------------------------


def fits(demand: dict[str, float], node: dict[str, float]) -> bool:
    """Whether a node with these total resources could ever run a task asking for ``demand``."""
    return all(node.get(name, 0) >= amount for name, amount in demand.items() if amount > 0)


class ClusterWatch:
    """Looks at the cluster every ``waits.check_every`` seconds from a thread of its own, so that a
    cluster that hangs holds up only that thread; :meth:`check` answers from what it last saw."""

    def __init__(self, ray: Any, joined: Joined, waits: RayWaits) -> None:
        self.ray, self.joined, self.waits = ray, joined, waits
        self._lock = threading.Lock()
        self._answered = time.monotonic()
        self._nodes: list[dict[str, float]] | None = None  # the live nodes' total resources, last seen
        self._infeasible_since: float | None = None
        self._stop = threading.Event()
        self._look()
        self._thread = threading.Thread(target=self._run, name="animevid-ray-watch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.waits.check_every):
            self._look()

    def _look(self) -> None:
        if answers(self.joined.address, self.waits.probe) is not None:
            return
        try:
            nodes = [dict(node.get("Resources", {})) for node in self.ray.nodes() if node.get("Alive")]
        except Exception:  # noqa: BLE001 - the cluster is going: it stops answering, which check() sees
            return
        with self._lock:
            self._answered, self._nodes = time.monotonic(), nodes

    def check(self, demand: dict[str, float], *, waiting: bool) -> None:
        """Raise :class:`ClusterError` when tasks asking for ``demand`` can no longer finish: the
        cluster has not answered for ``lost_after`` seconds, or (``waiting``: tasks are in flight)
        no live node could run one for ``infeasible_grace`` seconds."""
        now = time.monotonic()
        with self._lock:
            silent, nodes = now - self._answered, self._nodes
        if silent > self.waits.lost_after:
            raise ClusterError(f"the Ray cluster at {self.joined.address} has not answered for {silent:.0f} s")
        if not waiting or nodes is None or any(fits(demand, node) for node in nodes):
            self._infeasible_since = None
            return
        self._infeasible_since = self._infeasible_since or now
        if now - self._infeasible_since > self.waits.infeasible_grace:
            asked = ", ".join(f"{amount:g} {name}" for name, amount in sorted(demand.items()) if amount > 0)
            raise ClusterError(
                f"no live node of the Ray cluster at {self.joined.address} can run a task asking for {asked} "
                f"(waited {self.waits.infeasible_grace:g} s for one)"
            )

    def close(self) -> None:
        self._stop.set()
