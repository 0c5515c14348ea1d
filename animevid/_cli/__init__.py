"""The ``animevid`` command line: argument parsing only; the work is done by the library.

Every command calls one library function. Known failures (:class:`animevid.errors.AnimevidError`)
are turned into a one-line ``error: ...`` message and the error's exit code here, in one place.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

import click

from ..errors import AnimevidError


class _MessageLine(logging.Handler):
    """The library's messages (the ``animevid`` logger) as lines on stderr: warnings as ``warning: ...``,
    information (what a slow first step is doing: fetching a style, converting for OpenVINO) as it is.
    stderr is resolved per call so that a progress bar's redirection of it is honoured."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = "warning: " if record.levelno >= logging.WARNING else ""
        click.echo(f"{prefix}{record.getMessage()}", err=True)


@contextlib.contextmanager
def _messages_on_stderr() -> Iterator[None]:
    logger = logging.getLogger("animevid")
    handler = _MessageLine(logging.INFO)
    previous_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


class _Group(click.Group):
    """Runs every command the same way: warnings on stderr, and library errors and interruptions
    mapped to a one-line message and an exit code."""

    def invoke(self, ctx: click.Context):
        # Set before torch loads OpenMP: waiting OpenMP threads sleep instead of spinning. When the
        # cores are shared (our decoder/encoder threads, other programs), spinning threads starve
        # the one with work: 4.3 s instead of 1.4 s per 256x256 frame on 2 cores with one other
        # busy process. Sleeping costs a wake-up per parallel region, small next to a convolution.
        # An OMP_WAIT_POLICY set by the user wins.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            with _messages_on_stderr():
                return super().invoke(ctx)
        except AnimevidError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="animevid")
def main() -> None:
    """Turn video and photos into anime style with AnimeGAN, and train new styles from films."""


# Each command lives in its own module and is registered here, explicitly.
from .export import export  # noqa: E402
from .extract import extract_frames, smooth  # noqa: E402
from .preview import preview  # noqa: E402
from .styles import styles  # noqa: E402
from .stylize import stylize  # noqa: E402
from .train import train  # noqa: E402
from .ui import ui  # noqa: E402

for _command in (stylize, preview, styles, export, extract_frames, smooth, train, ui):
    main.add_command(_command)
