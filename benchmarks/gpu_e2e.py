"""``animevid stylize`` end to end on generated clips with audio, as ``benchmarks/gpu_check.sh`` runs it.

    python -m benchmarks.gpu_e2e --device cuda --size 1280x720 --seconds 5,20 --json out.json

For each clip length, a fresh process runs the command line's ``stylize`` (in process, so that it
can read its own peaks) on a generated H.264 + AAC clip with random weights, and reports: wall
time and frames/s of the whole command, and of the job itself (from its summary line: without
loading the weights and starting the device); GPU busy (``torch.cuda.utilization()`` sampled every 100 ms while it runs,
whole run and steady state = the middle 80 % of the samples); peak GPU memory
(``torch.cuda.max_memory_allocated``); host peak RSS (``VmHWM``); then, in the same process, the
generator alone (:meth:`Stylizer.frames` on frames already on the device, same batch size and
precision) for the ratio end to end / generator only. The parent checks every output file: as
many frames as the source, the audio packets identical to the source's.

``--workers N,M``: the same command with ``--devices <device> --workers N`` (several worker
processes on the one GPU, each with its own decoder and encoder, on consecutive segments joined
losslessly: chunked encoding), on the longest clip; ``--encoders N,M``: ``VideoOptions(encoders=N)``.
Either sweep is skipped with a note where the installed animevid has no such option.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from .common import parse_size, size_name
from .pipeline import peak_rss_mib, render_frame

FPS = 24
GENERATOR_CALLS = 20
DISTINCT_FRAMES = 48  # rendered once and cycled: rendering 1080p frames costs more than the check can spare


def make_clip(path: Path, height: int, width: int, seconds: float, fps: int) -> int:
    """An H.264 + AAC (stereo) clip of :func:`benchmarks.pipeline.render_frame` s, cycling every 2 s."""
    from animevid.train.synthetic_film import write_clip

    count = max(1, round(seconds * fps))
    distinct = [render_frame(index, height, width, fps) for index in range(min(count, DISTINCT_FRAMES))]
    frames = (distinct[index % len(distinct)] for index in range(count))
    return write_clip(path, frames, fps=fps, encoder_options={"preset": "veryfast", "crf": "20"}, audio="stereo")


# -- child: one stylize run in a fresh process -----------------------------------------------------


class Sampler:
    """GPU utilisation (percent) every ``interval`` s in a thread; empty where it cannot be read."""

    def __init__(self, device: torch.device, interval: float = 0.1) -> None:
        self.device, self.interval = device, interval
        self.samples: list[float] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.samples.append(float(torch.cuda.utilization(self.device)))
            except Exception as exc:  # noqa: BLE001 - pynvml missing or the driver refuses: no figure, not a failure
                self.error = f"{type(exc).__name__}: {exc}"
                return

    def __enter__(self) -> "Sampler":
        if self.device.type == "cuda":
            self._thread.start()
        else:
            self.error = "no GPU"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def summary(self) -> dict[str, object]:
        if not self.samples:
            return {"samples": 0, "mean_percent": None, "steady_mean_percent": None, "error": self.error}
        cut = len(self.samples) // 10
        steady = self.samples[cut : len(self.samples) - cut] or self.samples
        return {
            "samples": len(self.samples), "interval_s": self.interval, "mean_percent": statistics.fmean(self.samples),
            "steady_mean_percent": statistics.fmean(steady), "error": self.error,
        }  # fmt: skip


def child(args: argparse.Namespace) -> dict[str, object]:
    from animevid._cli import main as cli
    from animevid.options import InferenceOptions
    from animevid.engine.stylizer import Stylizer, cudnn_autotuning

    device = torch.device(args.device)
    # Not -q: the summary line says the job's own time (after loading the weights and starting the device).
    command = ["stylize", args.source, args.destination, "--weights", args.weights, "--device", args.device, "--overwrite"]
    if args.dtype:
        command += ["--dtype", args.dtype]
    if args.workers:
        command += ["--devices", args.device, "--workers", str(args.workers)]
    report: dict[str, object] = {"command": "animevid " + " ".join(command)}
    started = time.perf_counter()
    with Sampler(device) as sampler:
        if args.encoders:
            from animevid.api import stylize
            from animevid.options import VideoOptions

            options = InferenceOptions(device=args.device, dtype=args.dtype or "auto")
            stylize(args.source, args.destination, weights=args.weights, options=options,
                    video_options=VideoOptions(encoders=args.encoders), overwrite=True, progress=False)  # fmt: skip
            report["command"] = f"animevid.api.stylize(..., video_options=VideoOptions(encoders={args.encoders}))"
            exit_code = 0
        else:
            stderr = io.StringIO()
            try:
                with contextlib.redirect_stderr(stderr):
                    cli(command, standalone_mode=False)
                exit_code = 0
            except SystemExit as exc:
                exit_code = exc.code if isinstance(exc.code, int) else 1
            summary = re.search(r"(\d+) frames in ([\d.]+) s \(([\d.]+) frames/s\)", stderr.getvalue())
            report["summary_line"] = summary.group(0) if summary else stderr.getvalue()[-500:]
            report["job_fps"] = float(summary.group(3)) if summary else None
    report["wall_s"] = time.perf_counter() - started
    report["exit_code"] = exit_code
    report["gpu_busy"] = sampler.summary()
    report["max_rss_mib"], report["max_rss_source"] = peak_rss_mib()
    if device.type == "cuda":
        report["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    # The generator alone, same weights, precision and batch size, on frames already on the device.
    stylizer = Stylizer.from_weights(args.weights, InferenceOptions(device=args.device, dtype=args.dtype or "auto", compile=False))
    height, width = args.height, args.width
    batch = stylizer.default_batch_size(height, width)
    frames = torch.randint(0, 256, (batch, height, width, 3), dtype=torch.uint8, device=device)
    calls = GENERATOR_CALLS if device.type == "cuda" else 2
    with cudnn_autotuning(device):
        for _ in range(2):
            stylizer.frames(frames)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        for _ in range(calls):
            stylizer.frames(frames)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    report["generator_only_fps"] = batch * calls / (time.perf_counter() - started)
    report["batch_size"] = batch
    report["dtype"] = stylizer.dtype_name
    return report


# -- parent: clips, children, checks ----------------------------------------------------------------


def stream_summary(path: Path) -> dict[str, object]:
    """Frames of the first video stream, and the audio packets as (pts, size, CRC-32 of the payload)."""
    import zlib

    import av

    with av.open(str(path)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        audio = [(packet.pts, packet.size, zlib.crc32(bytes(packet))) for packet in container.demux(audio=0) if packet.size]
    return {"video_frames": frames, "audio_packets": len(audio), "audio": audio}


def run_child(extra: list[str], timeout: float) -> dict[str, object]:
    command = [sys.executable, "-m", "benchmarks.gpu_e2e", "--child", *extra]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=Path(__file__).resolve().parents[1])
    if completed.returncode != 0:
        return {"status": "failed", "exit_code": completed.returncode, "stderr": completed.stderr[-3000:]}
    return {"status": "ok", **json.loads(completed.stdout.strip().splitlines()[-1])}


def parent(args: argparse.Namespace) -> dict[str, object]:
    from animevid.options import VideoOptions
    from animevid.weights.formats import GeneratorWeights, save_weights

    from .engines import seeded_generator

    height, width = parse_size(args.size)
    workdir = Path(tempfile.mkdtemp(prefix="animevid-gpu-e2e-"))
    generator = seeded_generator()
    weights = save_weights(GeneratorWeights(generator.state_dict(), "animegan-v1", "tf1"), workdir / "random.safetensors",
                           style="random", source="benchmarks")  # fmt: skip
    result: dict[str, object] = {"size": size_name(height, width), "device": args.device, "fps": FPS, "runs": [], "encoders_sweep": []}
    common = ["--device", args.device, "--weights", str(weights), "--height", str(height), "--width", str(width)]
    if args.dtype:
        common += ["--dtype", args.dtype]
    longest: Path | None = None
    for seconds in args.seconds:
        clip = workdir / f"clip-{seconds:g}s.mp4"
        frames = make_clip(clip, height, width, seconds, FPS)
        out = workdir / f"out-{seconds:g}s.mp4"
        print(f"gpu_e2e: {size_name(height, width)} {seconds:g} s ({frames} frames)", file=sys.stderr, flush=True)
        run = run_child([str(clip), str(out), *common], args.timeout)
        run.update(clip_seconds=seconds, clip_frames=frames)
        if run["status"] == "ok" and run.get("exit_code") == 0:
            run["fps"] = frames / run["wall_s"]  # the whole command: weights, device start, job
            job_fps = run.get("job_fps")  # the job alone (its summary line): what the targets are about
            run["ratio_end_to_end_over_generator"] = (job_fps or run["fps"]) / run["generator_only_fps"]
            source, written = stream_summary(clip), stream_summary(out)
            run["check"] = {
                "frames_equal": written["video_frames"] == source["video_frames"] == frames,
                "audio_packets_equal": written["audio"] == source["audio"] and source["audio_packets"] > 0,
                "video_frames": written["video_frames"], "audio_packets": written["audio_packets"],
            }  # fmt: skip
        result["runs"].append(run)
        longest = clip
    import animevid.options

    sweeps = (
        ("workers", args.workers, hasattr(animevid.options, "ParallelOptions"), "animevid has no ParallelOptions (--devices/--workers)"),
        ("encoders", args.encoders, "encoders" in {field.name for field in dataclasses.fields(VideoOptions)},
         "VideoOptions has no 'encoders' option in this animevid"),
    )  # fmt: skip
    notes = []
    for option, counts, present, missing in sweeps:
        if not counts:
            continue
        if not present:
            notes.append(f"{missing}: the {option} sweep is skipped")
            continue
        for count in counts:
            out = workdir / f"out-{option}-{count}.mp4"
            run = run_child([str(longest), str(out), *common, f"--{option}", str(count)], args.timeout)
            if run["status"] == "ok" and run.get("exit_code") == 0:
                source, written = stream_summary(longest), stream_summary(out)
                run["fps"] = source["video_frames"] / run["wall_s"]
                run["check"] = {
                    "frames_equal": written["video_frames"] == source["video_frames"],
                    "audio_packets_equal": written["audio"] == source["audio"] and source["audio_packets"] > 0,
                }
            result["encoders_sweep"].append({"option": option, "encoders": count, **run})
    if notes:
        result["encoders_sweep_note"] = "; ".join(notes)
    runs = [run for run in result["runs"] if run.get("status") == "ok" and "max_rss_mib" in run]
    if len(runs) >= 2:
        result["flat_in_length"] = {
            "rss_growth_mib": runs[-1]["max_rss_mib"] - runs[0]["max_rss_mib"],
            "cuda_growth_mib": (runs[-1].get("cuda_max_memory_allocated_mib") or 0) - (runs[0].get("cuda_max_memory_allocated_mib") or 0),
        }
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_e2e")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("source", nargs="?")
    parser.add_argument("destination", nargs="?")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="", help="empty: the product's default (fp16 on CUDA)")
    parser.add_argument("--weights")
    parser.add_argument("--height", type=int)
    parser.add_argument("--width", type=int)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--seconds", type=lambda text: [float(v) for v in text.split(",")], default=[5.0, 20.0])
    parser.add_argument("--encoders", type=lambda text: [int(v) for v in text.split(",")] if "," in text else int(text), default=None)
    parser.add_argument("--workers", type=lambda text: [int(v) for v in text.split(",")] if "," in text else int(text), default=None)
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per child run")
    parser.add_argument("--json", type=Path, help="write the result here (else stdout)")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return
    if isinstance(args.encoders, int):
        args.encoders = [args.encoders]
    if isinstance(args.workers, int):
        args.workers = [args.workers]
    result = parent(args)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
