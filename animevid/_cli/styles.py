"""``animevid styles``: list, add, fetch and remove named styles."""

from __future__ import annotations

import click

SEMANTICS_HELP = (
    "AnimeGANv2 weights in a .pt file: tf1 (converted from the authors' TensorFlow checkpoints, e.g. paprika.pt) "
    "or pytorch (trained with bryandlee/animegan2-pytorch, e.g. face_paint_512_v2.pt) "
    "[default: recorded in the file, or known from bryandlee's file names]."
)



def mirror_option(*, hidden: bool = False):
    """``--mirror URL`` (or ``$ANIMEVID_MIRROR``), for every command that may download weights."""
    return click.option(
        "--mirror", envvar="ANIMEVID_MIRROR", hidden=hidden,
        help="Base URL replacing https://raw.githubusercontent.com/ in downloads (OWNER/REPO/COMMIT/PATH below it).",
    )  # fmt: skip


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

    from ..weights.styles import list_styles, styles_dir

    table = Table(title=f"Styles ({styles_dir()})", title_justify="left")
    for column in ("name", "network", "artist", "film", "source", "installed"):
        table.add_column(column)
    for info in list_styles():
        installed = f"yes ({info.semantics})" if info.installed and info.semantics else "yes" if info.installed else "no"
        table.add_row(info.name, info.network, info.artist, info.film, info.source, installed)
    Console().print(table)


@styles.command()
@click.argument("name")
@click.argument("source", type=click.Path(path_type=str))
@click.option("--overwrite", is_flag=True, help="Replace an installed style of that name.")
@click.option("--semantics", help=SEMANTICS_HELP)
def add(name: str, source: str, overwrite: bool, semantics: str | None) -> None:
    """Install weights from SOURCE as style NAME.

    SOURCE is a .safetensors file, an AnimeGAN v1 or v2 TensorFlow checkpoint (prefix, .index or
    .data file) or a torch state dict (.pt/.pth, ours or bryandlee/animegan2-pytorch's, loaded
    without running pickled code).

    \b
    animevid styles add face-paint face_paint_512_v2.pt
    """
    from ..weights.styles import add_style

    path = add_style(name, source, overwrite=overwrite, semantics=semantics)
    click.echo(f"installed style {name!r} at {path}")


@styles.command()
@click.argument("name")
@click.option("--overwrite", is_flag=True, help="Download again even if installed.")
@mirror_option()
def fetch(name: str, overwrite: bool, mirror: str | None) -> None:
    """Download, verify and install the official weights of style NAME.

    Downloads are pinned to a commit of the authors' repository; an interrupted one resumes.
    A mirror replaces https://raw.githubusercontent.com/ and serves OWNER/REPO/COMMIT/PATH.
    """
    from ..weights.styles import fetch_style

    path = fetch_style(name, mirror=mirror, overwrite=overwrite, progress=True)
    click.echo(f"installed style {name!r} at {path}")


@styles.command()
@click.argument("name")
def remove(name: str) -> None:
    """Uninstall style NAME."""
    from ..weights.styles import remove_style

    click.echo(f"removed {remove_style(name)}")
