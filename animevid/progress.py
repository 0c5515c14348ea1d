"""Progress reporting shared by every long job: a rich bar on a terminal, plain lines otherwise.

On a TTY the user gets a live bar (done/total, rate, ETA, and free-form fields such as losses).
When stderr is a file or a pipe (CI logs, ``nohup``), a plain line is written every ``interval``
seconds instead, so logs stay readable and small.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .errors import Cancelled

# on_progress(done, total or None, rate per second, seconds left or None)
ProgressCallback = Callable[[int, "int | None", float, "float | None"], None]


@dataclass(frozen=True)
class JobHooks:
    """How an interface other than a terminal (the web app) follows and stops a long job.

    ``on_progress(done, total, rate, eta)`` is called from the job's threads each time its
    reporter advances (``total`` and ``eta`` are None when unknown). ``should_cancel()`` is asked
    between batches; once it says True the job stops with :class:`Cancelled`, leaving nothing
    half-made. Both are optional and must return quickly.
    """

    on_progress: ProgressCallback | None = None
    should_cancel: Callable[[], bool] | None = None

    def check_cancelled(self, what: str = "cancelled") -> None:
        """Raise :class:`Cancelled` (with the message ``what``) if the job was asked to stop."""
        if self.should_cancel is not None and self.should_cancel():
            raise Cancelled(what)


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


class ProgressReporter:
    """Context manager reporting the progress of one job.

    ``total`` may be ``None`` (unknown length). ``unit`` names what is counted ("frames", "steps").
    ``fields`` shown after the counters are set with :meth:`set_fields` (e.g. current losses).
    ``enabled=False`` silences it entirely (library use, tests); ``hooks.on_progress`` is called
    on every advance either way.
    """

    def __init__(
        self,
        description: str,
        total: int | None = None,
        unit: str = "items",
        *,
        enabled: bool = True,
        stream: IO[str] | None = None,
        interval: float = 5.0,
        hooks: JobHooks | None = None,
    ) -> None:
        self.description = description
        self.total = total
        self.unit = unit
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.on_progress = hooks.on_progress if hooks is not None else None
        self.completed = 0
        self.fields = ""
        self._start = 0.0
        self._last_line = 0.0
        self._rich: Progress | None = None
        self._task = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> "ProgressReporter":
        self._start = self._last_line = time.perf_counter()
        if self.enabled and self.stream.isatty():
            self._rich = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[extra]}"),
                console=Console(file=self.stream),
                transient=False,
            )
            self._rich.start()
            self._task = self._rich.add_task(self.description, total=self.total, rate="", extra="")
        return self

    def __exit__(self, *exc_info) -> None:
        if self._rich is not None:
            self._refresh_rich()
            self._rich.stop()
            self._rich = None

    # -- updates -----------------------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    @property
    def rate(self) -> float:
        elapsed = self.elapsed
        return self.completed / elapsed if elapsed > 0 else 0.0

    def set_total(self, total: int | None) -> None:
        self.total = total
        if self._rich is not None:
            self._rich.update(self._task, total=total)

    def set_fields(self, **fields: float | str) -> None:
        """Free-form values shown after the counters, e.g. ``set_fields(loss_g=1.23)``."""
        self.fields = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fields.items())

    def eta(self, rate: float) -> float | None:
        """Seconds left at ``rate``; None while the total or the rate is unknown."""
        if not self.total or rate <= 0:
            return None
        return max(0.0, (self.total - self.completed) / rate)

    def advance(self, count: int = 1) -> None:
        self.completed += count
        if self.on_progress is not None:
            rate = self.rate
            self.on_progress(self.completed, self.total, rate, self.eta(rate))
        if not self.enabled:
            return
        if self._rich is not None:
            self._refresh_rich()
            return
        now = time.perf_counter()
        if now - self._last_line >= self.interval:
            self._last_line = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def line(self) -> str:
        """One plain-text status line (also used for the non-TTY log)."""
        rate = self.rate
        parts = [f"{self.description}: {self.completed}"]
        if self.total:
            parts[0] += f"/{self.total} {self.unit} ({100.0 * self.completed / self.total:.0f}%)"
        else:
            parts[0] += f" {self.unit}"
        parts.append(f"{rate:.2f} {self.unit}/s")
        eta = self.eta(rate)
        if eta is not None:
            parts.append(f"ETA {format_seconds(eta)}")
        if self.fields:
            parts.append(self.fields)
        return ", ".join(parts)

    def _refresh_rich(self) -> None:
        self._rich.update(
            self._task, completed=self.completed, rate=f"{self.rate:.2f} {self.unit}/s", extra=self.fields
        )
