"""``animevid preview``: a contact sheet to choose a style by looking."""

from __future__ import annotations

import click

from .styles import mirror_option


@click.command()
@click.argument("source", type=click.Path(path_type=str))
@click.option("--style", "-s", "styles", multiple=True, help="A style to show (repeat it) [default: every installed style].")
@click.option("--output", "-o", type=click.Path(path_type=str), help="The sheet's image file [default: SOURCE's name + .preview.png].")
@click.option("--frames", type=click.IntRange(min=1), help="Rows for a video: frames spread over it [default: 3].")
@click.option("--max-side", type=click.IntRange(min=16), help="Each picture at most this many pixels on a side [default: 512].")
@click.option("--start", type=float, help="A video's rows are spread over [--start, --end) seconds [default: all of it].")
@click.option("--end", type=float, help="See --start.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--overwrite", is_flag=True, help="Replace an existing sheet.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@mirror_option(hidden=True)
def preview(
    source: str,
    styles: tuple[str, ...],
    output: str | None,
    frames: int | None,
    max_side: int | None,
    start: float | None,
    end: float | None,
    device: str,
    overwrite: bool,
    quiet: bool,
    mirror: str | None,
) -> None:
    """Show SOURCE (a photo or a video) in several styles side by side, to pick one.

    Rows are frames spread over a video (or the photo), columns the source and each style,
    labelled. Official styles not installed yet are fetched first.

    \b
    animevid preview clip.mp4
    animevid preview photo.jpg -s hayao -s kon -s shinkai -o styles.png
    """
    from ..preview import PreviewOptions, write_preview
    from ..options import InferenceOptions

    given = {"frames": frames, "max_side": max_side}
    options = PreviewOptions(
        styles=styles, inference=InferenceOptions(device=device), start=start, end=end,
        **{k: v for k, v in given.items() if v is not None},
    )  # fmt: skip
    path = write_preview(source, output, options, overwrite=overwrite, mirror=mirror, progress=not quiet)
    click.echo(f"wrote {path}")
