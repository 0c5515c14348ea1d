"""Pipeline throughput: how close ``animevid stylize`` on a video gets to the generator alone.

On a clip generated here (moving shapes over a gradient, H.264, with an AAC audio track), on the
same device, resolution, precision and batch size:

(a) generator only: :meth:`animevid.engine.stylizer.Stylizer.frames` on frames decoded beforehand into
    memory, as uint8 (B, H, W, 3) batches: the ceiling for any video pipeline;
(b) end to end: :func:`animevid.video.pipeline.stylize_video` (what ``animevid stylize`` and
    :func:`animevid.api.stylize` run for a video): decode, stylize, encode, audio copied;
(c) a naive loop: OpenCV ``VideoCapture`` read → one frame at a time through the same stylizer →
    OpenCV ``VideoWriter`` write (no audio: OpenCV cannot carry it).

(a), (b) and (c) share one warmed-up stylizer and are timed interleaved. Peak memory of (b) is
measured separately at two clip lengths, each in a fresh subprocess running
:func:`animevid.api.stylize` (weights loaded from a file, as the CLI does) that reports its own
peak resident set size (``VmHWM``; see :func:`peak_rss_mib` for why not ``RUSAGE_CHILDREN``) and,
on CUDA, ``torch.cuda.max_memory_allocated``. A streaming pipeline's peak must not grow with the
clip's length.

The generator has random (seeded) weights: speed does not depend on them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .common import fmt, interleaved_timings, markdown_table, not_available, size_name


@dataclass(frozen=True)
class PipelineSettings:
    size: tuple[int, int]  # (height, width) of the generated clip
    seconds: float  # clip length for the throughput runs
    fps: int
    batch_size: int | None  # None: the pipeline's default for the device (Stylizer.default_batch_size)
    memory_seconds: tuple[float, ...]  # two clip lengths for the peak-memory runs
    repeats: int = 1  # timed runs of each of (a), (b), (c) over the whole clip
    dtype: str = "auto"  # the product's default: fp16 on CUDA, fp32 on the CPU


def default_settings(device: torch.device, quick: bool) -> PipelineSettings:
    """CUDA: 10 s of 720p at 24 fps, (a), (b) and (c) three times each; 5 s and 20 s for memory.

    CPU: the generator needs about a second per 256×144 frame on 2 cores (~30 s at 720p), so the
    CPU default is a 2 s clip of 256×144 at 12 fps (24 frames), each of (a), (b), (c) run three
    times, interleaved; 2 s and 6 s clips for the memory runs.
    """
    if quick:
        return PipelineSettings((32, 48), 0.5, 6, None, (0.5, 1.0))
    if device.type == "cuda":
        return PipelineSettings((720, 1280), 10.0, 24, None, (5.0, 20.0), repeats=3)
    return PipelineSettings((144, 256), 2.0, 12, None, (2.0, 6.0), repeats=3)


# -- the clip -------------------------------------------------------------------------------------


def render_frame(index: int, height: int, width: int, fps: int) -> np.ndarray:
    """Frame ``index`` of the test clip: a drifting colour gradient with moving outlined discs."""
    import cv2

    t = index / fps
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    xs = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    image = np.empty((height, width, 3), np.uint8)
    image[..., 0] = (127 + 100 * np.sin(6 * xs + t)).astype(np.uint8)
    image[..., 1] = (127 + 100 * np.cos(5 * ys - 0.7 * t)).astype(np.uint8)
    image[..., 2] = (127 + 80 * np.sin(4 * (xs + ys) + 0.3 * t)).astype(np.uint8)
    rng = np.random.default_rng(0)
    for _ in range(8):
        x0, y0, vx, vy = rng.uniform(0, 1, 4)
        radius = max(2, int(rng.uniform(0.05, 0.15) * height))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        center = (int((x0 * width + (vx - 0.5) * 40 * index) % width), int((y0 * height + (vy - 0.5) * 40 * index) % height))
        cv2.circle(image, center, radius, colour, -1, cv2.LINE_AA)
        cv2.circle(image, center, radius, (20, 20, 30), 2, cv2.LINE_AA)
    return image


def make_clip(path: Path, height: int, width: int, seconds: float, fps: int, *, keyframe_seconds: float | None = None) -> int:
    """Write an H.264 + AAC (stereo 48 kHz tone) MP4 of :func:`render_frame` s; returns the number of video frames.

    ``keyframe_seconds``: a key frame that often (where a video can be cut into segments); default x264's.
    """
    from animevid.train.synthetic_film import write_clip

    frames = max(1, int(round(seconds * fps)))
    rendered = (render_frame(index, height, width, fps) for index in range(frames))
    options = {"preset": "veryfast", "crf": "20"}
    if keyframe_seconds is not None:
        interval = str(max(1, round(keyframe_seconds * fps)))
        options.update(g=interval, keyint_min=interval, sc_threshold="0")
    return write_clip(path, rendered, fps=fps, encoder_options=options, audio="stereo")


def decode_all(path: Path) -> torch.Tensor:
    """Every frame of ``path`` as one (N, H, W, 3) uint8 RGB tensor, upright."""
    from animevid.video.reader import decode_frames, open_video, upright

    with open_video(path) as video:
        rotation = video.info.rotation
        frames = [upright(decoded.frame.to_ndarray(format="rgb24"), rotation) for decoded in decode_frames(video)]
    return torch.from_numpy(np.stack(frames))


def count_streams(path: Path) -> dict[str, int]:
    from animevid.video.reader import decode_frames, open_video

    with open_video(path) as video:
        return {"video_frames": sum(1 for _ in decode_frames(video)), "audio_streams": len(video.container.streams.audio)}


# -- (a), (b), (c) --------------------------------------------------------------------------------


def generator_only(stylizer, frames: torch.Tensor, batch_size: int) -> Callable[[], object]:
    def run() -> object:
        last = None
        for start in range(0, len(frames), batch_size):
            last = stylizer.frames(frames[start : start + batch_size])
        return last

    return run


def naive_loop(stylizer, source: Path, destination: Path) -> Callable[[], int]:
    """What one would write first: OpenCV in, one frame through the generator, OpenCV out."""
    import cv2

    def run() -> int:
        capture = cv2.VideoCapture(str(source))
        fps = capture.get(cv2.CAP_PROP_FPS)
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        writer = cv2.VideoWriter(str(destination), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        count = 0
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                rgb = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))[None]
                out = stylizer.frames(rgb)[0].cpu().numpy()
                writer.write(cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
                count += 1
        finally:
            capture.release()
            writer.release()
        return count

    return run


def video_options(batch_size: int):
    """The pipeline's default options (codec, quality, preset) with an explicit batch size."""
    from animevid.options import VideoOptions

    return VideoOptions(batch_size=batch_size)


# -- peak memory in a subprocess --------------------------------------------------------------------


def child_main(argv: list[str]) -> None:
    """Subprocess side of the memory runs: one ``animevid.api.stylize`` of a clip, then a JSON line."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("destination")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--device", required=True)
    parser.add_argument("--dtype", required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    args = parser.parse_args(argv)

    from animevid.api import stylize
    from animevid.options import InferenceOptions

    device = torch.device(args.device)
    result = stylize(
        args.source,
        args.destination,
        weights=args.weights,
        options=InferenceOptions(device=args.device, dtype=args.dtype, compile=False),  # as (a) and (b), at any length
        video_options=video_options(args.batch_size),
        overwrite=True,
        progress=False,
    )
    peak, source = peak_rss_mib()
    report: dict[str, object] = {"frames": result.count, "seconds": result.seconds, "max_rss_mib": peak, "max_rss_source": source}
    if device.type == "cuda":
        report["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    print(json.dumps(report))


def peak_rss_mib() -> tuple[float, str]:
    """This process's peak resident set size in MiB, and where the figure comes from.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this process's own address
    space. Not ``getrusage``'s ``ru_maxrss``: when a process execs, Linux folds the peak of the
    address space it leaves into ``ru_maxrss``, and a child that Python spawns with vfork leaves
    its parent's, so a child's ``ru_maxrss`` (and the parent's ``RUSAGE_CHILDREN``) is at least the
    parent's RSS at spawn time: here, the benchmark process's gigabytes, whatever the child did.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024, "VmHWM"
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024, "ru_maxrss"  # bytes on macOS, KiB on Linux


def measure_child(args: list[str]) -> dict[str, object]:
    """Run :func:`child_main` in a fresh Python; returns its report, peak RSS included."""
    command = [sys.executable, "-m", "benchmarks.pipeline", "--child", *args]
    completed = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    if completed.returncode != 0:
        raise RuntimeError(f"memory run failed (exit {completed.returncode}): {completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# -- the benchmark ----------------------------------------------------------------------------------


def run(device: torch.device, settings: PipelineSettings, log: Callable[[str], None] = print) -> dict[str, object]:
    try:
        from animevid.video.pipeline import stylize_video
    except ImportError as exc:
        return not_available(f"animevid.video.pipeline (the streaming video pipeline) cannot be imported: {exc}")
    from animevid.models import AnimeGANGenerator
    from animevid.options import InferenceOptions
    from animevid.engine.stylizer import Stylizer, cudnn_autotuning
    from animevid.weights.formats import GeneratorWeights, save_weights

    height, width = settings.size
    workdir = Path(tempfile.mkdtemp(prefix="animevid-bench-pipeline-"))
    try:
        torch.manual_seed(0)
        generator = AnimeGANGenerator()
        random_weights = GeneratorWeights(generator.state_dict(), "animegan-v1", "tf1")
        weights = save_weights(random_weights, workdir / "random.safetensors", style="random", source="benchmarks")
        stylizer = Stylizer(generator, InferenceOptions(device=str(device), dtype=settings.dtype, compile=False))
        batch_size = settings.batch_size or stylizer.default_batch_size(height, width)
        options = video_options(batch_size)

        clip = workdir / "clip.mp4"
        frame_count = make_clip(clip, height, width, settings.seconds, settings.fps)
        # (a) is the generator alone: on CUDA its input is already on the device, so not even the
        # upload is counted (the pipeline overlaps it with the generator; the ceiling has none).
        frames = decode_all(clip).to(device)
        log(
            f"pipeline: {size_name(height, width)}, {frame_count} frames ({settings.seconds:g} s at {settings.fps} fps), "
            f"batch {batch_size}, {stylizer.dtype_name} on {device}; {settings.repeats} run(s) of (a), (b), (c)"
        )
        end_to_end_out, naive_out = workdir / "b.mp4", workdir / "c.mp4"
        candidates = {
            "a_generator_only": generator_only(stylizer, frames, batch_size),
            "b_end_to_end": lambda: stylize_video(stylizer, clip, end_to_end_out, options, overwrite=True, progress=False),
            "c_naive_opencv": naive_loop(stylizer, clip, naive_out),
        }
        # cuDNN autotuning as a video job has it (the pipeline switches it on for (b) itself).
        with cudnn_autotuning(device):
            stylizer.frames(frames[:batch_size])  # warm-up outside the timings: kernels, caches, cudnn autotune
            if batch_size > 1:
                stylizer.frames(frames[:1])  # (c) runs at batch 1
            timings = interleaved_timings(candidates, repeats=settings.repeats, device=device, warmup=0)
        fps = {name: frame_count / timing.median for name, timing in timings.items()}
        output_check = {"b_end_to_end": count_streams(end_to_end_out), "c_naive_opencv": count_streams(naive_out)}

        memory = []
        for seconds in settings.memory_seconds:
            long_clip = workdir / f"clip-{seconds:g}s.mp4"
            count = make_clip(long_clip, height, width, seconds, settings.fps)
            log(f"pipeline: peak memory of (b) in a subprocess, {seconds:g} s clip ({count} frames)")
            args = [str(long_clip), str(workdir / "memory-out.mp4"), "--weights", str(weights),
                    "--device", str(device), "--dtype", settings.dtype, "--batch-size", str(batch_size)]  # fmt: skip
            report = measure_child(args)
            memory.append({"clip_seconds": seconds, "clip_frames": count, **report})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    return {
        "status": "ok",
        "clip": {"width": width, "height": height, "seconds": settings.seconds, "fps": settings.fps, "frames": frame_count, "audio": "AAC stereo 48 kHz"},
        "device": str(device),
        "dtype": stylizer.dtype_name,
        "engine": stylizer.engine,
        "batch_size": batch_size,
        "fps": fps,
        "timing": {name: timing.as_dict() for name, timing in timings.items()},
        "ratio_b_over_a": fps["b_end_to_end"] / fps["a_generator_only"],
        "ratio_b_over_c": fps["b_end_to_end"] / fps["c_naive_opencv"],
        "target_b_over_a": 0.9 if device.type == "cuda" else 0.8,
        "outputs": output_check,
        "memory": memory,
    }


def markdown(result: dict[str, object], device_label: str) -> str:
    clip, fps = result["clip"], result["fps"]
    rows = [
        ["(a) generator only, pre-decoded frames (`Stylizer.frames`)", fmt(fps["a_generator_only"], 2), "1.00"],
        ["(b) `animevid stylize` end to end (`stylize_video`), audio kept", fmt(fps["b_end_to_end"], 2), f"{result['ratio_b_over_a']:.2f}"],
        ["(c) naive loop: OpenCV read → 1 frame → OpenCV write, no audio", fmt(fps["c_naive_opencv"], 2),
         f"{fps['c_naive_opencv'] / fps['a_generator_only']:.2f}"],
    ]  # fmt: skip
    target = result["target_b_over_a"]
    verdict = "meets" if result["ratio_b_over_a"] >= target else "misses"
    parts = [
        f"### Pipeline throughput ({device_label}, {result.get('engine', 'torch')} engine, {result['dtype']}, batch {result['batch_size']}; "
        f"clip {clip['width']}×{clip['height']}, {clip['seconds']:g} s at {clip['fps']} fps = {clip['frames']} frames)",
        "",
        markdown_table(["", "frames/s", "vs (a)"], rows),
        "",
        f"b/a = {result['ratio_b_over_a']:.2f} ({verdict} the target of {target}); b/c = {result['ratio_b_over_c']:.2f}.",
        "",
    ]
    memory_rows = [
        [f"{m['clip_seconds']:g} s ({m['clip_frames']} frames)", fmt(m["max_rss_mib"], 0),
         fmt(m.get("cuda_max_memory_allocated_mib"), 0) if "cuda_max_memory_allocated_mib" in m else "—"]
        for m in result["memory"]
    ]  # fmt: skip
    parts += [
        "Peak memory of (b), each length in a fresh process (`animevid.api.stylize` from a weights file; "
        "peak RSS from the child's own `VmHWM`):",
        "",
        markdown_table(["clip", "max RSS (MiB)", "CUDA max allocated (MiB)"], memory_rows),
        "",
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
    else:
        raise SystemExit("benchmarks.pipeline is run by `python -m benchmarks --only pipeline`")
