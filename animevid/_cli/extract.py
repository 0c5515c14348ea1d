"""``animevid extract-frames`` and ``animevid smooth``: build AnimeGAN style datasets from films."""

from __future__ import annotations

from pathlib import Path

import click

from .defaults import library_option


def _summary_of_rejections(rejected: dict[str, int]) -> str:
    parts = [f"{reason.replace('_', ' ')} {count}" for reason, count in rejected.items() if count]
    return ", ".join(parts) if parts else "none"


def _frames_module():
    from animevid.train import frames

    return frames


def _extract_options():
    return _frames_module().ExtractOptions


def _smooth_folder():
    from animevid.train.smooth import smooth_folder

    return smooth_folder


def _default_thresholds() -> str:
    return ", ".join(f"{value:g} for {name}" for name, value in _frames_module().DEFAULT_THRESHOLDS.items())


@click.command("extract-frames")
@click.argument("video", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Output folder (style/, smooth/, manifest.jsonl).  [default: ./<film name>-dataset]")
@library_option("--detector", type=click.Choice(["content", "adaptive"]), owner=_extract_options,
                help="PySceneDetect shot detector.")
@library_option("--threshold", type=float, owner=_extract_options, shown=_default_thresholds,
                help="Cut threshold of the detector.  [default: {default}]")
@library_option("--min-shot", type=float, metavar="SECONDS", owner=_extract_options,
                help="Shortest shot; closer cuts are merged.")
@library_option("--per-shot", type=int, metavar="N", owner=_extract_options, help="Frames spread inside each shot.")
@library_option("--every", type=float, metavar="SECONDS", owner=_extract_options,
                help="Instead of --per-shot: one frame every SECONDS.")
@library_option("--margin", type=float, metavar="SECONDS", owner=_extract_options,
                help="Never take a frame this close to a cut (cuts, fades).")
@library_option("--skip-start", type=float, metavar="SECONDS", owner=_extract_options,
                help="Ignore the beginning (logos, opening titles).")
@library_option("--skip-end", type=float, metavar="SECONDS", owner=_extract_options, help="Ignore the end (credits).")
@library_option("--size", type=int, owner=_extract_options, help="Side of the square images, in pixels.")
@library_option("--crop", type=click.Choice(["center", "grid", "random"]), owner=_extract_options,
                help="center: middle square; grid: non-overlapping squares; random: one square anywhere.")
@library_option("--grid", type=int, metavar="N", owner=_extract_options,
                help="With --crop grid: squares across the frame's short side.")
@library_option("--seed", type=int, owner=_extract_options, help="Seed of --crop random.")
@library_option("--min-brightness", type=float, owner=_extract_options,
                help="Reject darker images (mean gray level, 0-255).")
@library_option("--max-brightness", type=float, owner=_extract_options,
                help="Reject brighter images (mean gray level, 0-255).")
@library_option("--min-detail", type=float, owner=_extract_options,
                help="Reject images whose variance of the Laplacian is lower (flat, blurred).")
@library_option("--dup-distance", type=click.IntRange(0, 64), metavar="BITS", owner=_extract_options,
                help="Reject images whose perceptual hash is this close to a kept one.")
@click.option("--keep-duplicates", is_flag=True, help="Do not check for near-duplicates at all.")
@library_option("--format", "image_format", type=click.Choice(["png", "jpg"]), owner=_extract_options,
                help="Image file format.")
@library_option("--quality", type=click.IntRange(1, 100), owner=_extract_options, field="jpeg_quality",
                help="JPEG quality.")
@click.option("--overwrite", is_flag=True,
              help="Replace the set in OUT made with other arguments (deletes its images and manifest).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def extract_frames(
    video: Path,
    out: Path | None,
    detector: str,
    threshold: float | None,
    min_shot: float,
    per_shot: int,
    every: float | None,
    margin: float,
    skip_start: float,
    skip_end: float,
    size: int,
    crop: str,
    grid: int,
    seed: int,
    min_brightness: float,
    max_brightness: float,
    min_detail: float,
    dup_distance: int,
    keep_duplicates: bool,
    image_format: str,
    quality: int,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Build an AnimeGAN style dataset from a film you own: key frames of each shot, cut into
    squares, with their edge-smoothed versions.

    Writes OUT/style/*.png, OUT/smooth/*.png (same names) and OUT/manifest.jsonl. Running the same
    command again resumes an interrupted run and leaves a finished one as it is.
    """
    options = _extract_options()(
        detector=detector,
        threshold=threshold,
        min_shot=min_shot,
        per_shot=per_shot,
        every=every,
        margin=margin,
        skip_start=skip_start,
        skip_end=skip_end,
        size=size,
        crop=crop,
        grid=grid,
        seed=seed,
        min_brightness=min_brightness,
        max_brightness=max_brightness,
        min_detail=min_detail,
        dup_distance=None if keep_duplicates else dup_distance,
        image_format=image_format,
        jpeg_quality=quality,
    )
    result = _frames_module().extract_frames(video, out, options, overwrite=overwrite, show_progress=not quiet)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if result.already_complete:
        click.echo(f"{result.out_dir}: already complete, {result.images} images (nothing to do)")
        return
    reused = f" ({result.reused} kept from an earlier run)" if result.reused else ""
    click.echo(
        f"{result.out_dir}: {result.images} images from {len(result.shots)} shots{reused}; "
        f"{result.frames_decoded} frames in {result.elapsed_s:.1f} s ({result.frames_per_second:.0f} frames/s); "
        f"rejected: {_summary_of_rejections(result.rejected)}"
    )


@click.command("smooth")
@click.argument("dataset", type=click.Path(path_type=Path))
@library_option("--size", type=int, owner=_smooth_folder, help="Training size: images are resized to it.")
@library_option("--quality", type=click.IntRange(1, 100), owner=_smooth_folder, field="jpeg_quality", help="JPEG quality.")
@click.option("--overwrite", is_flag=True, help="Recompute images that already exist in DATASET/smooth.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def smooth(dataset: Path, size: int, quality: int, overwrite: bool, quiet: bool) -> None:
    """Make the edge-smoothed set DATASET/smooth/ from the style images in DATASET/style/.

    For style images gathered elsewhere (extract-frames already writes smooth/). Existing outputs
    are kept unless --overwrite, so an interrupted run can simply be started again.
    """
    result = _smooth_folder()(dataset, size=size, overwrite=overwrite, jpeg_quality=quality, show_progress=not quiet)
    kept = f", {result.skipped} already there" if result.skipped else ""
    click.echo(f"{result.smooth_dir}: {result.written} images written{kept} in {result.elapsed_s:.1f} s")
