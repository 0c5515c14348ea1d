"""Stopping a training run without losing it: SIGINT (Ctrl-C) and SIGTERM (how schedulers and
preemptible cloud machines end a job).

While steps run, the first signal is only recorded: the step in progress finishes, and the loop
stops at the boundary after it and writes a checkpoint of exactly that state. A step is never cut
in half, so there is no torn state to save or to discard. A second signal, or a signal outside the
steps (setup, export), raises :class:`KeyboardInterrupt` at once; every file being written then is
abandoned by its atomic write, so what is on disk is the last complete checkpoint.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Context manager owning SIGINT and SIGTERM for a run (in the main thread; elsewhere the
    caller owns the signals and this does nothing). ``received`` names the signal that asked to
    stop at the next step boundary, ``None`` while none did."""

    def __init__(self, *, announce: bool) -> None:
        self.announce = announce  # say that the stop is coming (rank 0 only)
        self.received: str | None = None
        self._deferring = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """While the steps run: the first signal is recorded in ``received`` instead of raising."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False

    def _on_signal(self, signum: int, frame: object) -> None:
        if not self._deferring or self.received is not None:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        if self.announce:
            # A CPU step can take half a minute: say at once that the stop is coming. The handler
            # interrupts the main thread anywhere, also inside a write to stderr, where Python
            # refuses a reentrant write; the notice is then dropped, never the stop.
            with contextlib.suppress(RuntimeError):
                logger.warning(f"{self.received}: stopping after this step to write a checkpoint (a second signal stops at once)")


def ignore_stop_signals(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: the main process decides when to stop. Ctrl-C reaches the
    whole process group, and torchrun signals each rank's group; a worker that died of it would
    fail the batch the main process still waits for."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
