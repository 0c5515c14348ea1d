"""``animevid styles``: list, add, fetch and remove named styles."""

from __future__ import annotations

import click


@click.group(invoke_without_command=True)
@click.pass_context
def styles(ctx: click.Context) -> None:
    """List known and installed styles (or manage them with a subcommand)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_)


@styles.command("list")
def list_() -> None:
    """List known and installed styles."""
    from rich.console import Console
    from rich.table import Table

    from ..styles import list_styles, styles_dir

    table = Table(title=f"Styles ({styles_dir()})", title_justify="left")
    for column in ("name", "installed", "style of", "source"):
        table.add_column(column)
    for info in list_styles():
        table.add_row(info.name, "yes" if info.installed else "no", info.description, info.source)
    Console().print(table)


@styles.command()
@click.argument("name")
@click.argument("source", type=click.Path(path_type=str))
@click.option("--overwrite", is_flag=True, help="Replace an installed style of that name.")
def add(name: str, source: str, overwrite: bool) -> None:
    """Install weights from SOURCE as style NAME.

    SOURCE is a .safetensors file, a TensorFlow checkpoint (prefix, .index or .data file) or a
    torch state dict (.pt/.pth, loaded without running pickled code).
    """
    from ..styles import add_style

    path = add_style(name, source, overwrite=overwrite)
    click.echo(f"installed style {name!r} at {path}")


@styles.command()
@click.argument("name")
@click.option("--overwrite", is_flag=True, help="Download again even if installed.")
@click.option("--mirror", envvar="ANIMEVID_MIRROR", help="Base URL replacing the official repository.")
def fetch(name: str, overwrite: bool, mirror: str | None) -> None:
    """Download, verify and install the official weights of style NAME."""
    from ..progress import ProgressReporter
    from ..styles import fetch_style

    with ProgressReporter(f"fetch {name}", unit="bytes", interval=2.0) as bar:
        path = fetch_style(name, mirror=mirror, overwrite=overwrite, on_bytes=bar.advance)
    click.echo(f"installed style {name!r} at {path}")


@styles.command()
@click.argument("name")
def remove(name: str) -> None:
    """Uninstall style NAME."""
    from ..styles import remove_style

    click.echo(f"removed {remove_style(name)}")
