"""``animevid stylize``: photos, folders of photos and videos."""

from __future__ import annotations

import click

from .defaults import library_option
from .styles import SEMANTICS_HELP, mirror_option


def _options_module():
    from .. import options  # light: neither torch nor PyAV, so --help stays fast

    return options


def _inference_options():
    return _options_module().InferenceOptions


def _video_options():
    return _options_module().VideoOptions


def _parallel_options():
    return _options_module().ParallelOptions


@click.command()
@click.argument("source", type=click.Path(path_type=str))
@click.argument("destination", type=click.Path(path_type=str))
@click.option("--style", "-s", help="Style name (see 'animevid styles'); official styles are fetched on first use.")
@click.option("--weights", "-w", type=click.Path(path_type=str), help="Generator weights file instead of --style.")
@library_option("--semantics", type=str, owner=_inference_options, help=SEMANTICS_HELP)
@library_option("--device", type=str, owner=_inference_options, help="auto, cpu, cuda or cuda:N.")
@library_option(
    "--dtype", type=str, owner=_inference_options,
    help="auto (fp16 on CUDA; on the CPU bf16 where measured indistinguishable from fp32 for these weights "
    "on this CPU, else fp32), float32 (exact), float16 (CUDA) or bfloat16.",
)  # fmt: skip
@click.option("--half", is_flag=True, help="Same as --dtype float16 (CUDA only).")
@library_option(
    "--engine", type=str, owner=_inference_options,
    help="What runs the generator: auto (OpenVINO on the CPU when installed, else torch), torch or openvino.",
)  # fmt: skip
@library_option(
    "--max-side", type=click.IntRange(min=8), owner=_inference_options,
    help="Run the generator at most this many pixels on a side.",
)  # fmt: skip
@library_option(
    "--compile/--no-compile", "compile_", owner=_inference_options, field="compile",
    shown=lambda: f"on for CPU videos of {_options_module().AUTO_COMPILE_MIN_FRAMES}+ frames",
    help="torch.compile the generator: slow start, faster frames [default: {default}].",
)  # fmt: skip
@library_option(
    "--batch-size", type=click.IntRange(min=1), owner=_video_options,
    help="Video frames per generator call [default: per device and frame size].",
)  # fmt: skip
@library_option("--start", type=click.FloatRange(min=0), owner=_video_options, help="Video: start at this many seconds.")
@library_option("--end", type=click.FloatRange(min=0), owner=_video_options, help="Video: stop at this many seconds.")
@library_option("--codec", type=str, owner=_video_options, help="Video encoder (libx264, libx265, libvpx-vp9, ...).")
@library_option(
    "--crf", type=click.IntRange(0, 51), owner=_video_options, shown=lambda: _options_module().DEFAULT_CRF,
    help="libx264/libx265 quality, lower is better [default: {default}].",
)  # fmt: skip
@library_option(
    "--preset", type=str, owner=_video_options, shown=lambda: _options_module().DEFAULT_PRESET,
    help="libx264/libx265 speed preset [default: {default}].",
)  # fmt: skip
@library_option(
    "--keep-partial", is_flag=True, owner=_video_options,
    help="Video: if stopped early, keep the frames done as a playable file.",
)  # fmt: skip
@library_option(
    "--colour-on-device/--colour-on-host", "colour_on_device", owner=_video_options, field="colour_on_device",
    shown=lambda: "on with CUDA",
    help="Video: convert YUV <-> RGB on the generator's device, not with swscale on the host [default: {default}].",
)  # fmt: skip
@library_option(
    "--encoders", type=click.IntRange(min=1), owner=_video_options,
    help="Video: encoder instances at once, on consecutive chunks joined losslessly (for a fast GPU).",
)  # fmt: skip
@library_option(
    "--chunk-seconds", type=click.FloatRange(min=0, min_open=True), owner=_video_options,
    help="With --encoders N: about how long each chunk is (each starts with a key frame).",
)  # fmt: skip
@library_option(
    "--deflicker/--no-deflicker", owner=_video_options,
    help="Video: the temporal stage after the generator that stops the shimmer of frame-by-frame style.",
)  # fmt: skip
@library_option(
    "--deflicker-strength", type=float, owner=_video_options,
    help="Video: how strongly each frame follows the previous one along the motion, 0 to 1.",
)  # fmt: skip
@click.option(
    "--devices", type=str, default=None,
    help="Video: split it across worker processes on these devices: cpu, all (every GPU) or cuda:0,cuda:1.",
)  # fmt: skip
@click.option(
    "--workers", type=click.IntRange(min=1), default=None,
    help="Video: worker processes (default: one per device; 2 on the CPU). Implies --devices cpu if none given.",
)  # fmt: skip
@library_option(
    "--retries", type=click.IntRange(min=0), owner=_parallel_options,
    help="With --devices/--workers or --ray: retries of a failed segment, each on a fresh worker.",
)  # fmt: skip
@library_option(
    "--segment-seconds", type=click.FloatRange(min=0, min_open=True), owner=_parallel_options,
    help="With --devices/--workers or --ray: about how long each segment is (--ray: longer videos are cut).",
)  # fmt: skip
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option(
    "--skip-existing", is_flag=True,
    help="Folders: keep the outputs that exist (an interrupted run's) and do the rest.",
)  # fmt: skip
@click.option(
    "--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
    help="Run each photo and video as a Ray task: alone, start or join a cluster as ray.init() does; "
    "with an address (auto, host:port, ray://...), use that cluster. Needs animevid[ray].",
)  # fmt: skip
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@mirror_option(hidden=True)
def stylize(
    source: str,
    destination: str,
    style: str | None,
    weights: str | None,
    semantics: str | None,
    device: str,
    dtype: str,
    half: bool,
    engine: str,
    max_side: int | None,
    compile_: bool | None,
    batch_size: int | None,
    start: float | None,
    end: float | None,
    codec: str,
    crf: int | None,
    preset: str | None,
    keep_partial: bool,
    colour_on_device: bool | None,
    encoders: int,
    chunk_seconds: float,
    deflicker: bool,
    deflicker_strength: float,
    devices: str | None,
    workers: int | None,
    retries: int,
    segment_seconds: float,
    overwrite: bool,
    skip_existing: bool,
    ray_address: str | None,
    quiet: bool,
    mirror: str | None,
) -> None:
    """Stylize SOURCE (a photo, a video, or a folder of photos and videos) into DESTINATION.

    Videos keep every frame with its timestamp; audio and subtitles are copied as they are
    (re-encoded, with a warning, where the container cannot hold them).
    Ctrl-C stops cleanly (nothing is left at DESTINATION unless --keep-partial); an interrupted
    folder job continues with --skip-existing.

    \b
    animevid stylize photo.jpg anime.png --style hayao
    animevid stylize photos/ anime/ --weights my_style.safetensors
    animevid stylize clip.mp4 anime.mp4 --style kon --start 10 --end 20
    animevid stylize videos/ anime/ --style hayao --ray 10.0.0.5:6379
    """
    from ..api import stylize as run
    from ..errors import UsageError

    if half:
        if dtype not in ("auto", "float16"):
            raise UsageError("--half contradicts --dtype " + dtype)
        dtype = "float16"
    options = _inference_options()(device=device, dtype=dtype, max_side=max_side, compile=compile_, semantics=semantics, engine=engine)
    video_options = _video_options()(
        codec=codec, crf=crf, preset=preset, batch_size=batch_size, start=start, end=end, keep_partial=keep_partial,
        colour_on_device=colour_on_device,
        encoders=encoders, chunk_seconds=chunk_seconds, deflicker=deflicker, deflicker_strength=deflicker_strength,
    )
    parallel = None
    if devices is not None or workers is not None or ray_address is not None:  # segments: --ray cuts long videos too
        parallel = _parallel_options()(devices=devices or "cpu", workers=workers, retries=retries, segment_seconds=segment_seconds)
    result = run(
        source, destination, style=style, weights=weights, options=options, overwrite=overwrite,
        skip_existing=skip_existing, progress=not quiet, mirror=mirror, video_options=video_options, parallel=parallel,
        ray=False if ray_address is None else (ray_address or True),
    )  # fmt: skip
    if not quiet:
        click.echo(result.summary(), err=True)
