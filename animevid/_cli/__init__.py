"""The ``animevid`` command line: argument parsing only; the work is done by the library.

Every command calls one library function. Known failures (:class:`animevid.errors.AnimevidError`)
are turned into a one-line ``error: ...`` message and the error's exit code here, in one place.
"""

from __future__ import annotations

import sys

import click

from ..errors import AnimevidError


class _Group(click.Group):
    """Maps library errors and interruptions to a one-line message and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
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
from .stylize import stylize  # noqa: E402
from .styles import styles  # noqa: E402

main.add_command(stylize)
main.add_command(styles)
from .train import train  # noqa: E402
main.add_command(train)

from .extract import extract_frames, smooth  # noqa: E402

main.add_command(extract_frames)
main.add_command(smooth)
