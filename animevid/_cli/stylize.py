"""``animevid stylize``: photos, folders of photos and videos."""

from __future__ import annotations

import click


@click.command()
@click.argument("source", type=click.Path(path_type=str))
@click.argument("destination", type=click.Path(path_type=str))
@click.option("--style", "-s", help="Style name (see 'animevid styles'); 'hayao' is fetched on first use.")
@click.option("--weights", "-w", type=click.Path(path_type=str), help="Generator weights file instead of --style.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--dtype", default="auto", show_default=True, help="auto (fp16 on CUDA, fp32 on CPU), float32, float16 (CUDA) or bfloat16.")
@click.option("--half", is_flag=True, help="Same as --dtype float16 (CUDA only).")
@click.option(
    "--engine",
    help="What runs the generator [default: auto: OpenVINO on the CPU when installed, else torch].",
)  # fmt: skip
@click.option("--max-side", type=click.IntRange(min=8), help="Run the generator at most this many pixels on a side.")
@click.option(
    "--compile/--no-compile", "compile_", default=None,
    help="torch.compile the generator: slow start, faster frames [default: on for CPU videos of 50+ frames].",
)  # fmt: skip
@click.option("--batch-size", type=click.IntRange(min=1), help="Video frames per generator call [default: per device and frame size].")
@click.option("--start", type=click.FloatRange(min=0), help="Video: start at this many seconds.")
@click.option("--end", type=click.FloatRange(min=0), help="Video: stop at this many seconds.")
@click.option("--codec", default="libx264", show_default=True, help="Video encoder (libx264, libx265, libvpx-vp9, ...).")
@click.option("--crf", type=click.IntRange(0, 51), help="libx264/libx265 quality, lower is better [default: 18].")
@click.option("--preset", help="libx264/libx265 speed preset [default: medium].")
@click.option("--keep-partial", is_flag=True, help="Video: if stopped early, keep the frames done as a playable file.")
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
    engine: str | None,
    max_side: int | None,
    compile_: bool | None,
    batch_size: int | None,
    start: float | None,
    end: float | None,
    codec: str,
    crf: int | None,
    preset: str | None,
    keep_partial: bool,
    overwrite: bool,
    quiet: bool,
    mirror: str | None,
) -> None:
    """Stylize SOURCE (a photo, a folder of photos or a video) into DESTINATION.

    Videos keep every frame with its timestamp; audio and subtitles are copied as they are.
    Ctrl-C stops cleanly (nothing is left at DESTINATION unless --keep-partial).

    \b
    animevid stylize photo.jpg anime.png --style hayao
    animevid stylize photos/ anime/ --weights my_style.safetensors
    animevid stylize clip.mp4 anime.mp4 --style hayao --start 10 --end 20
    """
    from ..api import stylize as run
    from ..errors import UsageError
    from ..stylizer import InferenceOptions
    from ..video import VideoOptions

    if half:
        if dtype not in ("auto", "float16"):
            raise UsageError("--half contradicts --dtype " + dtype)
        dtype = "float16"
    engine_option = {"engine": engine} if engine else {}  # the default is InferenceOptions'
    options = InferenceOptions(device=device, dtype=dtype, max_side=max_side, compile=compile_, **engine_option)
    video_options = VideoOptions(
        codec=codec, crf=crf, preset=preset, batch_size=batch_size, start=start, end=end, keep_partial=keep_partial
    )
    result = run(
        source, destination, style=style, weights=weights, options=options, overwrite=overwrite,
        progress=not quiet, mirror=mirror, video_options=video_options,
    )  # fmt: skip
    if not quiet:
        click.echo(result.summary(), err=True)
