"""The options of a stylize job, and their defaults: written once, here.

This module imports neither torch nor PyAV (PyAV is imported only to validate a codec), so the
command line can read these defaults to parse arguments and print ``--help`` without paying
for either. Every layer may import it: it is part of the foundation (with :mod:`animevid.errors`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .errors import UsageError

# -- inference -------------------------------------------------------------------------------------

ENGINES = ("auto", "torch", "openvino")
# Both networks need the 1/4-resolution feature map to be at least 2x2 for its reflect pads:
# smaller inputs are padded up to this (the models' MIN_SIZE), and --max-side cannot go below it.
GENERATOR_MIN_SIDE = 8
# torch.compile pays for its compilation (about 18 s at 256x256, 25 s at 1280x720 on a 2-core CPU)
# within a few dozen frames on the CPU: it ran the generator 2.0x (256x256) and 2.6x (1280x720)
# faster there, with outputs within 1 level of eager. Untimed on CUDA so far, so opt-in there.
AUTO_COMPILE_MIN_FRAMES = 50


@dataclass(frozen=True)
class InferenceOptions:
    """How the generator runs. Validated on creation (:class:`UsageError`); devices and dtypes when a Stylizer is built."""

    device: str = "auto"
    dtype: str = "auto"  # CUDA: fp16; CPU: bf16 where measured indistinguishable from fp32 (animevid.engine.precision), else fp32
    max_side: int | None = None  # run the generator at most this size, scale back to the source size
    compile: bool | None = None  # torch.compile the generator; None: decided per job (see stylizer.should_compile)
    semantics: str | None = None  # tf1 or pytorch, for v2 weights that do not record it (see animevid.weights.formats)
    engine: str = "auto"  # auto, torch or openvino (see stylizer.resolve_engine)

    def __post_init__(self) -> None:
        if self.max_side is not None and self.max_side < GENERATOR_MIN_SIDE:
            raise UsageError(f"--max-side must be at least {GENERATOR_MIN_SIDE}, got {self.max_side}")
        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r} (use {', '.join(ENGINES)})")


# -- video -----------------------------------------------------------------------------------------

DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 18  # visually close to lossless; flat anime colours keep the files small anyway
DEFAULT_PRESET = "medium"
X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
CRF_CODECS = ("libx264", "libx265")  # the encoders that take --crf and --preset
# With several encoders, each chunk starts with a key frame: shorter chunks hold fewer frames in
# memory while they wait for their encoder, longer ones cost fewer extra key frames.
DEFAULT_CHUNK_SECONDS = 2.0
# The deflicker stage's β (animevid.video.temporal), from benchmarks/temporal.py (README, "Deflicker"):
# it is on by default where, on every benchmark clip of the flickering stand-in, it cuts the warping
# error by at least 40 % while keeping the fidelity to the per-frame output at 30 dB or more. 0.22 is
# the strength in the middle of that window (0.2 cut 39.5 % on moving objects; 0.25 gave 29.8 dB on
# the still shot).
DEFAULT_DEFLICKER_STRENGTH = 0.22


def check_deflicker_strength(strength: object) -> float:
    """``strength`` as a float when within [0, 1], else :class:`UsageError` (one line)."""
    try:
        value = float(strength)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UsageError(f"--deflicker-strength must be a number between 0 and 1, got {strength!r}") from None
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise UsageError(f"--deflicker-strength must be between 0 and 1, got {strength}")
    return value


@dataclass(frozen=True)
class VideoOptions:
    """How a video is cut and encoded. Validated on creation (:class:`UsageError`)."""

    codec: str = DEFAULT_CODEC  # any FFmpeg video encoder, e.g. libx264, libx265, libvpx-vp9, mpeg4
    crf: int | None = None  # libx264/libx265 quality, 0-51, lower is better; None: DEFAULT_CRF
    preset: str | None = None  # libx264/libx265 speed preset; None: DEFAULT_PRESET
    batch_size: int | None = None  # frames per generator call; None: Stylizer.default_batch_size
    start: float | None = None  # seconds from the beginning of the video
    end: float | None = None  # seconds from the beginning of the video (exclusive)
    keep_partial: bool = False  # on interruption or damaged input, keep a playable file of what was done
    # Colour conversion (YUV <-> RGB) on the generator's device instead of swscale on the host;
    # None: on CUDA (animevid.engine.tuning), never on the CPU. Where it cannot apply exactly (odd
    # heights, encoders not taking yuv420p) the host converts, whatever this says.
    colour_on_device: bool | None = None
    encoders: int = 1  # encoder instances in one process, on consecutive chunks (animevid.video.chunked); 1: one stream
    chunk_seconds: float = DEFAULT_CHUNK_SECONDS  # with encoders > 1: about this long each chunk
    deflicker: bool = True  # the temporal stage (animevid.video.temporal) after the generator; photos never
    deflicker_strength: float = DEFAULT_DEFLICKER_STRENGTH  # its β in [0, 1]

    def __post_init__(self) -> None:
        import av  # here, not at the top: reading the defaults (the CLI's --help) needs no PyAV

        try:
            codec = av.Codec(self.codec, "w")
        except ValueError:
            raise UsageError(f"unknown video encoder {self.codec!r} (e.g. libx264, libx265, libvpx-vp9, mpeg4)") from None
        if codec.type != "video":
            raise UsageError(f"{self.codec!r} is an {codec.type} encoder, not a video encoder")
        if self.codec not in CRF_CODECS and (self.crf is not None or self.preset is not None):
            raise UsageError(f"--crf and --preset apply to {' and '.join(CRF_CODECS)} only, not {self.codec}")
        if self.crf is not None and not 0 <= self.crf <= 51:
            raise UsageError(f"--crf must be between 0 and 51, got {self.crf}")
        if self.preset is not None and self.preset not in X26X_PRESETS:
            raise UsageError(f"unknown --preset {self.preset!r} (use one of {', '.join(X26X_PRESETS)})")
        if self.batch_size is not None and self.batch_size < 1:
            raise UsageError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.encoders < 1:
            raise UsageError(f"--encoders must be at least 1, got {self.encoders}")
        if not (math.isfinite(self.chunk_seconds) and self.chunk_seconds > 0):
            raise UsageError(f"--chunk-seconds must be > 0, got {self.chunk_seconds}")
        if self.encoders > 1 and self.keep_partial:
            raise UsageError("--keep-partial applies to one encoder: with --encoders N an interrupted job leaves nothing")
        check_deflicker_strength(self.deflicker_strength)
        if self.start is not None and not (math.isfinite(self.start) and self.start >= 0):
            raise UsageError(f"--start must be a number of seconds >= 0, got {self.start}")
        if self.end is not None and not (math.isfinite(self.end) and self.end > (self.start or 0)):
            raise UsageError(f"--end must be after --start (seconds), got {self.end}")

    def deflicker_summary(self) -> str:
        """What the run summary says: "deflicker: on (strength 0.3)" or "deflicker: off"."""
        if self.deflicker and self.deflicker_strength > 0:
            return f"deflicker: on (strength {self.deflicker_strength:g})"
        return "deflicker: off"

    def encoder_options(self, default_preset: str = DEFAULT_PRESET) -> dict[str, str]:
        """Options handed to the encoder (libx264/libx265: crf, and ``preset`` or ``default_preset``)."""
        if self.codec not in CRF_CODECS:
            return {}
        crf = DEFAULT_CRF if self.crf is None else self.crf
        return {"crf": str(crf), "preset": self.preset or default_preset}


# -- several worker processes ----------------------------------------------------------------------

DEFAULT_RETRIES = 2  # failed attempts of one segment tolerated (each on a fresh worker process)
DEFAULT_SEGMENT_SECONDS = 60.0  # about this long each; more segments balance workers better, each costs a key frame


@dataclass(frozen=True)
class ParallelOptions:
    """One video across several worker processes (animevid.jobs.parallel). Validated on creation."""

    devices: str = "cpu"  # "cpu", "all" (every CUDA device), or a list such as "cuda:0,cuda:1"
    workers: int | None = None  # worker processes; None: one per device (on the CPU: 2)
    retries: int = DEFAULT_RETRIES
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        if self.retries < 0:
            raise UsageError(f"--retries must be at least 0, got {self.retries}")
        if not (math.isfinite(self.segment_seconds) and self.segment_seconds > 0):
            raise UsageError(f"--segment-seconds must be > 0, got {self.segment_seconds}")
        names = [name.strip() for name in self.devices.split(",")]
        if not all(name in ("cpu", "all") or name == "cuda" or name.startswith("cuda:") for name in names):
            raise UsageError(f"--devices takes cpu, all, or cuda:N,cuda:M,..., got {self.devices!r}")


# -- the web app -----------------------------------------------------------------------------------

DEFAULT_UI_HOST = "127.0.0.1"  # this machine only: the app has no accounts
DEFAULT_UI_MAX_FILE_SIZE = "2gb"  # a few minutes of phone video; --max-file-size raises it
DEFAULT_UI_KEEP_HOURS = 24.0  # uploads and results older than this are deleted (at start and before each job)


@dataclass(frozen=True)
class UiOptions:
    """How ``animevid ui`` serves (animevid.ui). Validated on creation (:class:`UsageError`)."""

    host: str = DEFAULT_UI_HOST
    port: int | None = None  # None: the first free port from 7860
    max_file_size: str = DEFAULT_UI_MAX_FILE_SIZE  # uploads larger are refused, e.g. "500mb", "2gb"
    keep_hours: float = DEFAULT_UI_KEEP_HOURS

    def __post_init__(self) -> None:
        if self.port is not None and not 0 < self.port < 65536:
            raise UsageError(f"--port must be between 1 and 65535, got {self.port}")
        if not (math.isfinite(self.keep_hours) and self.keep_hours > 0):
            raise UsageError(f"--keep-hours must be > 0, got {self.keep_hours}")
        if not re.fullmatch(r"\d+(b|kb|mb|gb|tb)", self.max_file_size.strip().lower()):
            raise UsageError(f"--max-file-size takes a size such as 500mb or 2gb, got {self.max_file_size!r}")
