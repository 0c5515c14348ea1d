"""``animevid extract-frames`` and ``animevid smooth``: build AnimeGAN style datasets from films."""

from __future__ import annotations

from pathlib import Path

import click


def _summary_of_rejections(rejected: dict[str, int]) -> str:
    parts = [f"{reason.replace('_', ' ')} {count}" for reason, count in rejected.items() if count]
    return ", ".join(parts) if parts else "none"


@click.command("extract-frames")
@click.argument("video", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="Output folder (style/, smooth/, manifest.jsonl).  [default: ./<film name>-dataset]")
@click.option("--detector", type=click.Choice(["content", "adaptive"]), default="content", show_default=True,
              help="PySceneDetect shot detector.")
@click.option("--threshold", type=float, default=None,
              help="Cut threshold of the detector.  [default: 27 for content, 3.0 for adaptive]")
@click.option("--min-shot", type=float, default=0.6, show_default=True, metavar="SECONDS",
              help="Shortest shot; closer cuts are merged.")
@click.option("--per-shot", type=int, default=1, show_default=True, metavar="N",
              help="Frames spread inside each shot.")
@click.option("--every", type=float, default=None, metavar="SECONDS",
              help="Instead of --per-shot: one frame every SECONDS.")
@click.option("--margin", type=float, default=0.5, show_default=True, metavar="SECONDS",
              help="Never take a frame this close to a cut (cuts, fades).")
@click.option("--skip-start", type=float, default=0.0, show_default=True, metavar="SECONDS",
              help="Ignore the beginning (logos, opening titles).")
@click.option("--skip-end", type=float, default=0.0, show_default=True, metavar="SECONDS",
              help="Ignore the end (credits).")
@click.option("--size", type=int, default=256, show_default=True, help="Side of the square images, in pixels.")
@click.option("--crop", type=click.Choice(["center", "grid", "random"]), default="center", show_default=True,
              help="center: middle square; grid: non-overlapping squares; random: one square anywhere.")
@click.option("--grid", type=int, default=2, show_default=True, metavar="N",
              help="With --crop grid: squares across the frame's short side.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --crop random.")
@click.option("--min-brightness", type=float, default=20.0, show_default=True,
              help="Reject darker images (mean gray level, 0-255).")
@click.option("--max-brightness", type=float, default=235.0, show_default=True,
              help="Reject brighter images (mean gray level, 0-255).")
@click.option("--min-detail", type=float, default=50.0, show_default=True,
              help="Reject images whose variance of the Laplacian is lower (flat, blurred).")
@click.option("--dup-distance", type=click.IntRange(0, 64), default=6, show_default=True, metavar="BITS",
              help="Reject images whose perceptual hash is this close to a kept one.")
@click.option("--keep-duplicates", is_flag=True, help="Do not check for near-duplicates at all.")
@click.option("--format", "image_format", type=click.Choice(["png", "jpg"]), default="png", show_default=True,
              help="Image file format.")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG quality.")
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
    from animevid.train.frames import ExtractOptions, extract_frames as run_extraction

    options = ExtractOptions(
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
    result = run_extraction(video, out, options, overwrite=overwrite, show_progress=not quiet)
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
@click.option("--size", type=int, default=256, show_default=True, help="Training size: images are resized to it.")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG quality.")
@click.option("--overwrite", is_flag=True, help="Recompute images that already exist in DATASET/smooth.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def smooth(dataset: Path, size: int, quality: int, overwrite: bool, quiet: bool) -> None:
    """Make the edge-smoothed set DATASET/smooth/ from the style images in DATASET/style/.

    For style images gathered elsewhere (extract-frames already writes smooth/). Existing outputs
    are kept unless --overwrite, so an interrupted run can simply be started again.
    """
    from animevid.train.smooth import smooth_folder

    result = smooth_folder(dataset, size=size, overwrite=overwrite, jpeg_quality=quality, show_progress=not quiet)
    kept = f", {result.skipped} already there" if result.skipped else ""
    click.echo(f"{result.smooth_dir}: {result.written} images written{kept} in {result.elapsed_s:.1f} s")
