"""``animevid stylize``: photos, folders of photos and videos."""

from __future__ import annotations

import click


@click.command()
@click.argument("source", type=click.Path(path_type=str))
@click.argument("destination", type=click.Path(path_type=str))
@click.option("--style", "-s", help="Style name (see 'animevid styles'); 'hayao' is fetched on first use.")
@click.option("--weights", "-w", type=click.Path(path_type=str), help="Generator weights file instead of --style.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--dtype", default="auto", show_default=True, help="auto, float32, float16 (CUDA) or bfloat16.")
@click.option("--half", is_flag=True, help="Same as --dtype float16 (CUDA only).")
@click.option("--max-side", type=click.IntRange(min=8), help="Run the generator at most this many pixels on a side.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the generator (slow start, faster frames).")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@click.option("--mirror", envvar="ANIMEVID_MIRROR", hidden=True, help="Base URL replacing the official weights repository.")
def stylize(
    source: str,
    destination: str,
    style: str | None,
    weights: str | None,
    device: str,
    dtype: str,
    half: bool,
    max_side: int | None,
    compile_: bool,
    overwrite: bool,
    quiet: bool,
    mirror: str | None,
) -> None:
    """Stylize SOURCE (a photo, a folder of photos or a video) into DESTINATION.

    \b
    animevid stylize photo.jpg anime.png --style hayao
    animevid stylize photos/ anime/ --weights my_style.safetensors
    """
    from ..api import stylize as run
    from ..errors import UsageError
    from ..stylizer import InferenceOptions

    if half:
        if dtype not in ("auto", "float16"):
            raise UsageError("--half contradicts --dtype " + dtype)
        dtype = "float16"
    options = InferenceOptions(device=device, dtype=dtype, max_side=max_side, compile=compile_)
    result = run(
        source, destination, style=style, weights=weights, options=options, overwrite=overwrite,
        progress=not quiet, mirror=mirror,
    )  # fmt: skip
    if not quiet:
        click.echo(result.summary(), err=True)
