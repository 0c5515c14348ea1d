"""Build an AnimeGAN style dataset from a film: key frames, square crops and their edge-smoothed twins.

:func:`extract_frames` decodes the film once, in a single pass with bounded memory:

1. Every frame, shrunk to 256 pixels wide, goes through a PySceneDetect detector (``content`` or
   ``adaptive``) fed directly from the PyAV decode loop. Detectors report a cut a few frames late,
   so frames wait in a short delay line until no earlier cut can still be reported.
2. Per-shot sampling (default): :class:`animevid.train.shot_sampling.ShotCandidates` keeps a bounded, evenly
   spread subset of the shot's decoded frames (at most ``CANDIDATE_MEMORY_BUDGET`` bytes' worth,
   at least 8 frames); at the cut, ``per_shot`` targets are spread over the shot away from both
   ends (``margin`` seconds) and each takes the nearest candidate that passes the filters; a
   target whose best candidate is a duplicate is given up. With ``every`` set instead, the first
   frame at each multiple of ``every`` seconds is tried, unless it is within ``margin`` of a cut
   (then the frames wait ``margin`` longer in the delay line).
3. Only the frames tried are scaled to the working size and cut into squares (:mod:`animevid.train.crops`);
   a square is kept unless nearly black or white, low in detail, or a near-duplicate of a square
   already kept (:mod:`animevid.train.frame_quality`).
4. A kept square is written to ``OUT/style/NAME`` and its edge-smoothed version
   (:mod:`animevid.train.smooth`) to ``OUT/smooth/NAME``, each atomically, then recorded in
   ``OUT/manifest.jsonl`` (:mod:`animevid.train.manifest`). ``NAME`` is ``<film>_<frame:07d>_<tile>.png``.

The film is read by :mod:`animevid.video.reader` (the stream :func:`animevid.stylize` reads: never
cover art; frames turned upright by their rotation metadata). A film that stops decoding part way
(damaged, or a cut-off download) gives the set of the frames before the damage, with a warning.

Memory is bounded by the delay line and the candidates, a few dozen decoded frames, whatever the
length of the film.

Resuming. The manifest header records the source (name and size) and every option. A re-run into
the same OUT with the same film and options resumes: if the manifest says the run finished and all
files check out, nothing is done; otherwise the film is decoded again (the selection is a
deterministic function of the frames, so it is the same), and each image whose pixels match its
manifest record and whose two files still have the recorded SHA-256 is kept as is instead of being
encoded, smoothed and written again. The finished OUT is identical, manifest included, to what an
uninterrupted run gives. A non-empty OUT without a manifest, or with one from other arguments, is
refused unless ``overwrite`` (which deletes the previous set's images and manifest, nothing else).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction
from pathlib import Path

import numpy as np

from animevid.errors import Interrupted, OutputError, UsageError
from animevid.fileio import file_sha256, remove_stale_temporaries, sha256_hex, write_bytes_atomic
from animevid.imageio import encode_image, list_images
from animevid.progress import ProgressReporter
from animevid.video.reader import DamagedVideo, DecodedFrame, VideoInfo, decode_frames, open_video, shortfall_warning, upright

from . import crops as crop_geometry
from .frame_quality import DUPLICATE, REJECTION_REASONS, CropQuality, QualityThresholds, measure, rejection
from .imagehash import HashIndex, format_hash
from .manifest import MANIFEST_NAME, MANIFEST_VERSION, Manifest, ManifestAppender, read_manifest, write_manifest
from .shot_sampling import ShotCandidates, TimeGrid, target_pools
from .smooth import SMOOTH_FOLDER, STYLE_FOLDER, smooth_image_bytes

DETECTORS = ("content", "adaptive")
DEFAULT_THRESHOLDS = {"content": 27.0, "adaptive": 3.0}  # PySceneDetect's own defaults
IMAGE_FORMATS = ("png", "jpg")
_KEPT = "kept"
NEAR_CUT = "near_cut"  # --every: the frame due was within the margin of a cut
DETECTION_WIDTH = 256  # PySceneDetect's default processing width; its thresholds are tuned for it
# Decoded frames held per shot as sampling candidates (at least 8, whatever their size).
CANDIDATE_MEMORY_BUDGET = 192 * 2**20


@dataclass(frozen=True)
class ExtractOptions:
    """Everything that shapes the extracted set (all recorded in the manifest). Validated on creation.

    Shot detection: ``detector`` ("content" or "adaptive"), ``threshold`` (None: the detector's
    default, 27 or 3.0), ``min_shot`` seconds (shorter cuts are merged). Sampling: ``per_shot``
    frames spread inside each shot, or one frame every ``every`` seconds when set; never within
    ``margin`` seconds of a cut (or of the start and end of the film); ``skip_start``/``skip_end``
    seconds ignored (logos, credits).
    Crops: ``size`` pixels square, ``crop`` "center", "grid" (``grid`` squares across the short
    side) or "random" (seeded by ``seed`` and the frame number). Filters: mean gray level within
    [``min_brightness``, ``max_brightness``], variance of the Laplacian at least ``min_detail``,
    perceptual-hash distance to every kept image above ``dup_distance`` bits (None: no check).
    Files: ``image_format`` "png" or "jpg" (at ``jpeg_quality``).
    """

    detector: str = "content"
    threshold: float | None = None
    min_shot: float = 0.6
    per_shot: int = 1
    every: float | None = None
    margin: float = 0.5
    skip_start: float = 0.0
    skip_end: float = 0.0
    size: int = 256
    crop: str = "center"
    grid: int = 2
    seed: int = 0
    min_brightness: float = 20.0
    max_brightness: float = 235.0
    min_detail: float = 50.0
    dup_distance: int | None = 6
    image_format: str = "png"
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        def need(condition: bool, message: str) -> None:
            if not condition:
                raise UsageError(message)

        need(self.detector in DETECTORS, f"detector must be one of {', '.join(DETECTORS)}, not {self.detector!r}")
        need(self.threshold is None or self.threshold > 0, "threshold must be positive")
        need(self.min_shot >= 0, "min_shot must be 0 or more seconds")
        need(isinstance(self.per_shot, int) and self.per_shot >= 1, "per_shot must be at least 1")
        need(self.every is None or self.every > 0, "every must be a positive number of seconds")
        need(self.margin >= 0, "margin must be 0 or more seconds")
        need(self.skip_start >= 0 and self.skip_end >= 0, "skip_start and skip_end must be 0 or more seconds")
        need(isinstance(self.size, int) and 16 <= self.size <= 4096, "size must be between 16 and 4096 pixels")
        need(self.crop in crop_geometry.CROP_MODES, f"crop must be one of {', '.join(crop_geometry.CROP_MODES)}")
        need(isinstance(self.grid, int) and 1 <= self.grid <= 16, "grid must be between 1 and 16 squares")
        need(
            0 <= self.min_brightness < self.max_brightness <= 255,
            "brightness range must satisfy 0 <= min_brightness < max_brightness <= 255",
        )
        need(self.min_detail >= 0, "min_detail must be 0 or more")
        need(self.dup_distance is None or 0 <= self.dup_distance <= 64, "dup_distance must be between 0 and 64 bits")
        need(self.image_format in IMAGE_FORMATS, f"image format must be one of {', '.join(IMAGE_FORMATS)}")
        need(1 <= self.jpeg_quality <= 100, "jpeg_quality must be between 1 and 100")

    @property
    def effective_threshold(self) -> float:
        return DEFAULT_THRESHOLDS[self.detector] if self.threshold is None else float(self.threshold)

    def to_dict(self) -> dict:
        """The options as stored in the manifest (threshold resolved to the detector's default)."""
        values = asdict(self)
        values["threshold"] = self.effective_threshold
        return values


@dataclass(frozen=True)
class Shot:
    """A detected shot: frames ``[start_frame, end_frame)``, seconds ``[start_s, end_s)``."""

    index: int
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    images: int  # style images taken from it


@dataclass(frozen=True)
class ExtractResult:
    """What :func:`extract_frames` did."""

    out_dir: Path
    manifest_path: Path
    images: int  # images in the set (each a style/ + smooth/ pair)
    written: int  # written by this call
    reused: int  # already on disk from an interrupted run, verified and kept
    frames_decoded: int  # 0 when the set was already complete
    shots: tuple[Shot, ...]
    rejected: dict[str, int]  # crops (or, for near_cut, frames) rejected, by reason
    elapsed_s: float
    already_complete: bool = False
    warnings: tuple[str, ...] = ()

    @property
    def frames_per_second(self) -> float:
        """Decoding + detection + extraction throughput of this call."""
        return self.frames_decoded / self.elapsed_s if self.elapsed_s > 0 else 0.0


def format_timecode(seconds: float) -> str:
    """``HH:MM:SS.mmm``."""
    milliseconds = round(seconds * 1000)
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def film_slug(video: Path) -> str:
    """A file-name-safe short form of the film's name, used for the default OUT and image names."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", video.stem).strip("._-")
    return slug[:48] or "film"


def default_output_dir(video: str | Path) -> Path:
    """``./<film name>-dataset`` in the current folder."""
    return Path.cwd() / f"{film_slug(Path(video))}-dataset"


def extract_frames(
    video: str | Path,
    out_dir: str | Path | None = None,
    options: ExtractOptions | None = None,
    *,
    overwrite: bool = False,
    show_progress: bool = False,
) -> ExtractResult:
    """Extract a style dataset from ``video`` into ``out_dir`` (default :func:`default_output_dir`).

    Writes ``out_dir/style/*.png|jpg``, ``out_dir/smooth/*`` (same names) and
    ``out_dir/manifest.jsonl``; resumes an interrupted run with the same arguments (see the module
    documentation). Raises :class:`InputError` for a missing or unreadable film,
    :class:`OutputError` when ``out_dir`` cannot be written or holds another set (unless
    ``overwrite``), :class:`UsageError` for options that do not fit the film, and
    :class:`Interrupted` on Ctrl-C (everything written so far is kept for resuming).
    """
    started = time.perf_counter()
    options = options if options is not None else ExtractOptions()
    video = Path(video)
    out_dir = Path(out_dir) if out_dir is not None else default_output_dir(video)
    # open_video decodes a first frame: a file whose headers parse but whose frames do not is
    # refused before OUT is touched.
    with open_video(video) as film:
        end_limit = _end_limit(video, film.info, options)
        header = _header(video, film.info, options)
        previous = _prepare_output(out_dir, header, overwrite)
        if previous is not None and previous.done is not None and _all_verified(out_dir, previous):
            return _result_from_manifest(out_dir, previous, time.perf_counter() - started)
        run = _ExtractionRun(video, out_dir, film.info, options, header, previous, end_limit)
        return run.execute(decode_frames(film), show_progress, started)


# -- preparing OUT ----------------------------------------------------------------------------------


def _end_limit(video: Path, info: VideoInfo, options: ExtractOptions) -> float | None:
    if options.skip_end > 0 and info.duration is None:
        raise UsageError(f"{video}: the film does not report its duration, so --skip-end cannot be used")
    if info.duration is None:
        return None
    end = info.duration - options.skip_end
    if end <= options.skip_start:
        raise UsageError(
            f"nothing left to extract: the film lasts {format_timecode(info.duration)} and "
            f"skip-start {options.skip_start:g} s + skip-end {options.skip_end:g} s cover it"
        )
    return end if options.skip_end > 0 else None


def _software_versions() -> dict[str, str]:
    from importlib import metadata

    import av
    import cv2
    import scenedetect

    try:
        animevid_version = metadata.version("animevid")
    except metadata.PackageNotFoundError:
        animevid_version = "unknown"
    return {
        "animevid": animevid_version,
        "av": av.__version__,
        "opencv": cv2.__version__,
        "scenedetect": scenedetect.__version__,
        "numpy": np.__version__,
    }


def _header(video: Path, info: VideoInfo, options: ExtractOptions) -> dict:
    height, width = info.upright_size
    display_height, display_width = info.display_size
    return {
        "type": "header",
        "manifest_version": MANIFEST_VERSION,
        "tool": "animevid extract-frames",
        "source": {"name": video.name, "size": video.stat().st_size, "path": str(video.resolve())},
        "options": options.to_dict(),
        "video": {
            "width": width,  # upright, as the images are cut
            "height": height,
            "display_width": display_width,
            "display_height": display_height,
            "rotation": info.rotation,
            "fps": str(info.nominal_rate),
            "codec": info.codec,
            "duration_s": None if info.duration is None else round(info.duration, 3),
        },
        "software": _software_versions(),
    }


def _run_differences(old: dict, new: dict) -> list[str]:
    """What differs between two headers, in the terms a user can act on (empty: same run)."""
    if old.get("manifest_version") != new["manifest_version"]:
        return ["manifest version"]
    differences = []
    old_source, new_source = old.get("source") or {}, new["source"]
    if old_source.get("name") != new_source["name"] or old_source.get("size") != new_source["size"]:
        differences.append(f"source {old_source.get('name')!r}")
    old_options = old.get("options") or {}
    for name in (f.name for f in fields(ExtractOptions)):
        if old_options.get(name) != new["options"][name]:
            differences.append(f"{name}={old_options.get(name)!r}")
    return differences


def _clear_previous_set(out_dir: Path) -> None:
    try:
        for folder in (out_dir / STYLE_FOLDER, out_dir / SMOOTH_FOLDER):
            if folder.is_dir():
                remove_stale_temporaries(folder)
                for path in list_images(folder):
                    path.unlink()
        (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot remove the previous set ({exc.strerror or exc})") from None


def _prepare_output(out_dir: Path, header: dict, overwrite: bool) -> Manifest | None:
    """Check and create OUT; return the previous run's manifest when this run resumes it."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir}: exists and is not a folder")
    previous = None
    try:
        non_empty = out_dir.is_dir() and any(out_dir.iterdir())
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot be listed ({exc.strerror or exc})") from None
    if non_empty:
        if overwrite:
            _clear_previous_set(out_dir)
        else:
            previous = read_manifest(out_dir / MANIFEST_NAME)
            if previous is None:
                raise OutputError(
                    f"{out_dir}: is not empty and holds no extract-frames manifest; "
                    "choose another --out, or pass --overwrite to replace its style/ and smooth/ images"
                )
            differences = _run_differences(previous.header, header)
            if differences:
                raise OutputError(
                    f"{out_dir}: holds a set made with other arguments ({', '.join(differences[:4])}); "
                    "rerun with those to resume it, choose another --out, or pass --overwrite"
                )
    try:
        for folder in (out_dir, out_dir / STYLE_FOLDER, out_dir / SMOOTH_FOLDER):
            folder.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(folder)
    except OSError as exc:
        raise OutputError(f"{out_dir}: cannot be created or written ({exc.strerror or exc})") from None
    return previous


def _set_file(out_dir: Path, relative: object) -> Path | None:
    """``out_dir / relative`` if ``relative`` names a file directly in style/ or smooth/, else None
    (a manifest is a user-editable file: it must not make us read or delete anything else)."""
    if not isinstance(relative, str):
        return None
    folder, _, name = relative.partition("/")
    if folder not in (STYLE_FOLDER, SMOOTH_FOLDER) or not name or "/" in name or "\\" in name or name in (".", ".."):
        return None
    return out_dir / folder / name


def _record_verified(out_dir: Path, record: dict) -> bool:
    """Whether both files of an image record exist with the SHA-256 it gives."""
    for name_key, digest_key in (("file", "sha256"), ("smooth", "smooth_sha256")):
        path = _set_file(out_dir, record.get(name_key))
        if path is None or file_sha256(path) != record.get(digest_key):
            return False
    return True


def _all_verified(out_dir: Path, manifest: Manifest) -> bool:
    return all(_record_verified(out_dir, record) for record in manifest.images.values())


def _shot_from_record(record: dict) -> Shot:
    return Shot(
        record["shot"], record["start_frame"], record["end_frame"], record["start_s"], record["end_s"], record["images"]
    )


def _result_from_manifest(out_dir: Path, manifest: Manifest, elapsed_s: float) -> ExtractResult:
    done = manifest.done or {}
    return ExtractResult(
        out_dir=out_dir,
        manifest_path=out_dir / MANIFEST_NAME,
        images=len(manifest.images),
        written=0,
        reused=len(manifest.images),
        frames_decoded=0,
        shots=tuple(_shot_from_record(record) for record in manifest.shots),
        rejected=dict(done.get("rejected", {})),
        elapsed_s=elapsed_s,
        already_complete=True,
    )


# -- the single pass ----------------------------------------------------------------------------------


def _make_detector(options: ExtractOptions, fps: Fraction):
    from scenedetect.detectors import AdaptiveDetector, ContentDetector

    # Frames, not seconds: PySceneDetect sizes its look-behind for 240 fps when given seconds.
    min_scene_frames = max(1, round(options.min_shot * fps))
    if options.detector == "adaptive":
        return AdaptiveDetector(adaptive_threshold=options.effective_threshold, min_scene_len=min_scene_frames)
    return ContentDetector(threshold=options.effective_threshold, min_scene_len=min_scene_frames)


@dataclass
class _OpenShot:
    index: int
    start_frame: int
    start_s: float
    images: int = 0


@dataclass
class _Counters:
    written: int = 0
    reused: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: {reason: 0 for reason in (*REJECTION_REASONS, NEAR_CUT)})


class _ExtractionRun:
    """State of one pass over the film (see the module documentation for the algorithm)."""

    def __init__(
        self,
        video: Path,
        out_dir: Path,
        info: VideoInfo,
        options: ExtractOptions,
        header: dict,
        previous: Manifest | None,
        end_limit: float | None,
    ) -> None:
        from av.video.reformatter import Interpolation, VideoReformatter

        self.video = video
        self.out_dir = out_dir
        self.info = info
        self.options = options
        self.header = header
        self.previous_images = previous.images if previous is not None else {}
        self.end_limit = end_limit
        self.slug = film_slug(video)
        self.suffix = "." + options.image_format
        self.fps = info.nominal_rate
        self.thresholds = QualityThresholds(
            options.min_brightness, options.max_brightness, options.min_detail, options.dup_distance
        )
        self.warnings: list[str] = list(info.warnings)

        self.detector = _make_detector(options, self.fps)
        self.margin_frames = math.ceil(options.margin * self.fps)
        # A frame leaves the delay line once no cut before it can still be reported; with --every it
        # also waits until a cut within the margin after it would have been reported.
        self.delay_length = self.detector.event_buffer_length + 1
        if options.every is not None:
            self.delay_length += self.margin_frames
        self.detection_size = self._detection_size()
        short_side = crop_geometry.working_short_side(options.crop, options.size, options.grid)
        display_height, display_width = info.display_size
        self.working_width, self.working_height = crop_geometry.working_size(display_width, display_height, short_side)
        if short_side > min(display_width, display_height):
            self.warnings.append(
                f"the film ({display_width}x{display_height}) is smaller than the working size "
                f"({self.working_width}x{self.working_height}): crops are upscaled"
            )
        self.detection_scaler = VideoReformatter()
        self.working_scaler = VideoReformatter()
        # Exact, thread-free scaling for the images kept, so that a re-run reproduces them bit for bit.
        self.working_interpolation = Interpolation.AREA | Interpolation.ACCURATE_RND | Interpolation.BITEXACT

        self.hashes = HashIndex()
        self.counters = _Counters()
        self.records: list[dict] = []  # image and shot records of this run, in order
        self.shots: list[Shot] = []
        self.open_shot = _OpenShot(0, 0, 0.0)
        self.pending_cuts: deque[int] = deque()
        self.candidates: ShotCandidates[DecodedFrame] | None = None  # sized on the first frame
        self.time_grid = TimeGrid(options.skip_start, options.every) if options.every is not None else None
        self.end_frame: int | None = None  # known once the film is decoded
        self.frames_decoded = 0
        self.last_time = 0.0  # of the last frame decoded, seconds
        self.manifest: ManifestAppender | None = None

    def _candidate_capacity(self, decoded: DecodedFrame) -> int:
        frame_bytes = max(1, sum(plane.buffer_size for plane in decoded.frame.planes))
        affordable = CANDIDATE_MEMORY_BUDGET // frame_bytes
        return max(2 * self.options.per_shot, 8, min(max(32, 4 * self.options.per_shot), affordable))

    def _detection_size(self) -> tuple[int, int]:
        height, width = self.info.display_size
        if width <= DETECTION_WIDTH:
            return width, height
        return DETECTION_WIDTH, max(1, round(height * DETECTION_WIDTH / width))

    # -- driver -------------------------------------------------------------------------------------

    def execute(self, frames: Iterator[DecodedFrame], show_progress: bool, started: float) -> ExtractResult:
        from scenedetect import FrameTimecode

        manifest_path = self.out_dir / MANIFEST_NAME
        # Start from the previous run's well-formed records (a torn last line is dropped), so an
        # interruption of this run still leaves everything recorded.
        previous_records = [self.header] + [r for r in self.previous_images.values()]
        write_manifest(manifest_path, previous_records)
        self.manifest = ManifestAppender(manifest_path)
        delay: deque[DecodedFrame] = deque()
        total = self.info.estimated_frames
        if self.end_limit is not None:
            limit_frames = math.ceil(self.end_limit * self.fps)
            total = min(total, limit_frames) if total else limit_frames
        damaged = False
        try:
            with ProgressReporter("extracting", total=total, unit="frames", enabled=show_progress) as progress:
                try:
                    for decoded in frames:
                        if self.end_limit is not None and decoded.time >= self.end_limit:
                            break
                        self._detect_cuts(decoded)
                        delay.append(decoded)
                        if len(delay) > self.delay_length:
                            self._release(delay.popleft())
                        self.frames_decoded += 1
                        self.last_time = decoded.time
                        progress.set_fields(shots=len(self.shots) + 1, images=len(self.hashes))
                        progress.advance()
                except DamagedVideo as damage:  # the frames before it still make a set
                    damaged = True
                    self.warnings.append(f"{damage}; the set holds the images of the frames before it")
                last = FrameTimecode(self.frames_decoded - 1, fps=self.fps)
                self.pending_cuts.extend(cut.frame_num for cut in self.detector.post_process(last))
                self.end_frame = self.frames_decoded
                while delay:
                    self._release(delay.popleft())
                self._close_shot(self.frames_decoded, self.last_time + 1 / float(self.fps))
        except KeyboardInterrupt:
            raise Interrupted(
                f"stopped at {format_timecode(self.last_time)} with {len(self.hashes)} images in {self.out_dir}; "
                "run the same command again to resume"
            ) from None
        finally:
            self.manifest.close()
        shortfall = shortfall_warning(self.video, self.frames_decoded, self.info)
        if shortfall and not damaged and self.end_limit is None:
            self.warnings.append(shortfall)
        self._finish(manifest_path, self.frames_decoded)
        return ExtractResult(
            out_dir=self.out_dir,
            manifest_path=manifest_path,
            images=len(self.hashes),
            written=self.counters.written,
            reused=self.counters.reused,
            frames_decoded=self.frames_decoded,
            shots=tuple(self.shots),
            rejected=dict(self.counters.rejected),
            elapsed_s=time.perf_counter() - started,
            warnings=tuple(self.warnings),
        )

    def _finish(self, manifest_path: Path, frames_decoded: int) -> None:
        done = {
            "type": "done",
            "frames_decoded": frames_decoded,
            "shots": len(self.shots),
            "images": len(self.hashes),
            "rejected": self.counters.rejected,
        }
        write_manifest(manifest_path, [self.header, *self.records, done])
        # Images of the interrupted run that this run did not select again (possible only if the
        # decoder's output changed in between) would otherwise linger in the set.
        produced = {record["file"] for record in self.records if record["type"] == "image"}
        for name, record in self.previous_images.items():
            if name not in produced:
                for key in ("file", "smooth"):
                    path = _set_file(self.out_dir, record.get(key))
                    if path is not None:
                        path.unlink(missing_ok=True)

    # -- shots and sampling ---------------------------------------------------------------------------

    def _detect_cuts(self, decoded: DecodedFrame) -> None:
        from scenedetect import FrameTimecode

        small = self._upright_pixels(self.detection_scaler, decoded, self.detection_size, interpolation="FAST_BILINEAR")
        cuts = self.detector.process_frame(FrameTimecode(decoded.index, fps=self.fps), small)
        self.pending_cuts.extend(cut.frame_num for cut in cuts)

    def _release(self, decoded: DecodedFrame) -> None:
        """Handle a frame leaving the delay line: apply cuts up to it, then offer it for sampling."""
        while self.pending_cuts and self.pending_cuts[0] <= decoded.index:
            cut = self.pending_cuts.popleft()
            if cut > self.open_shot.start_frame:
                self._close_shot(decoded.index, decoded.time)
                self.open_shot = _OpenShot(self.open_shot.index + 1, decoded.index, decoded.time)
        if decoded.time < self.options.skip_start:
            return
        if self.time_grid is not None:
            self._sample_on_grid(decoded)
        else:
            if self.candidates is None:
                self.candidates = ShotCandidates(self._candidate_capacity(decoded))
            # Decoded frames are kept as they are and scaled only if tried: most never are.
            self.candidates.add(decoded.index, decoded)

    def _sample_on_grid(self, decoded: DecodedFrame) -> None:
        if not self.time_grid.due(decoded.time):
            return
        next_boundary = self.pending_cuts[0] if self.pending_cuts else self.end_frame
        after_cut = decoded.index - self.open_shot.start_frame
        before_cut = math.inf if next_boundary is None else next_boundary - decoded.index
        if after_cut < self.margin_frames or before_cut <= self.margin_frames:
            self.counters.rejected[NEAR_CUT] += 1
            return
        self._try_frame(decoded.index, decoded.time, self._working_image(decoded))

    def _close_shot(self, end_frame: int, end_s: float) -> None:
        shot = self.open_shot
        if self.time_grid is None:
            items = self.candidates.items if self.candidates is not None else []
            if items:
                indices = [index for index, _ in items]
                first = self.candidates.first_index
                for pool in target_pools(indices, first, end_frame, self.margin_frames, self.options.per_shot):
                    for position in pool:
                        candidate = items[position][1]
                        outcome = self._try_frame(candidate.index, candidate.time, self._working_image(candidate))
                        # A duplicate means this moment is already in the set: its neighbours would
                        # be near-copies that just pass the hash threshold, so the target is given up.
                        if outcome in (_KEPT, DUPLICATE):
                            break
                self.candidates.reset()
        record = Shot(shot.index, shot.start_frame, end_frame, round(shot.start_s, 3), round(end_s, 3), shot.images)
        self.shots.append(record)
        shot_record = {
            "type": "shot",
            "shot": record.index,
            "start_frame": record.start_frame,
            "end_frame": record.end_frame,
            "start_s": record.start_s,
            "end_s": record.end_s,
            "images": record.images,
        }
        self.records.append(shot_record)
        self.manifest.append(shot_record)

    def _working_image(self, decoded: DecodedFrame) -> np.ndarray:
        size = (self.working_width, self.working_height)
        return self._upright_pixels(self.working_scaler, decoded, size, interpolation=self.working_interpolation, threads=1)

    def _upright_pixels(self, scaler, decoded: DecodedFrame, size: tuple[int, int], **reformat) -> np.ndarray:
        """The frame as BGR, scaled so that once turned upright it is ``size`` (width, height)."""
        height, width = self.info.stored_size(size[1], size[0])
        pixels = scaler.reformat(decoded.frame, width=width, height=height, format="bgr24", **reformat).to_ndarray()
        return np.ascontiguousarray(upright(pixels, self.info.rotation))  # OpenCV wants positive strides

    # -- crops ---------------------------------------------------------------------------------------

    def _try_frame(self, index: int, frame_time: float, image: np.ndarray) -> str | None:
        """Cut, filter and store the crops of one frame. Returns ``_KEPT`` if at least one crop was
        kept, else ``DUPLICATE`` if one was a duplicate, else None."""
        kept = duplicate = False
        boxes = crop_geometry.crop_boxes(
            self.options.crop,
            image.shape[1],
            image.shape[0],
            self.options.size,
            seed=self.options.seed,
            frame_index=index,
        )
        for box in boxes:
            crop = crop_geometry.cut(image, box)
            quality = measure(crop, self.hashes)
            reason = rejection(quality, self.thresholds)
            if reason is not None:
                self.counters.rejected[reason] += 1
                duplicate = duplicate or reason == DUPLICATE
                continue
            self.hashes.add(quality.phash)
            self._store(crop, box, quality, index, frame_time)
            self.open_shot.images += 1
            kept = True
        return _KEPT if kept else (DUPLICATE if duplicate else None)

    def _source_box(self, box: crop_geometry.CropBox) -> list[float]:
        height, width = self.info.upright_size
        scale_x = width / self.working_width
        scale_y = height / self.working_height
        return [
            round(box.x * scale_x, 2),
            round(box.y * scale_y, 2),
            round(box.size * scale_x, 2),
            round(box.size * scale_y, 2),
        ]

    def _store(
        self, crop: np.ndarray, box: crop_geometry.CropBox, quality: CropQuality, index: int, frame_time: float
    ) -> None:
        name = f"{self.slug}_{index:07d}_{box.tile}{self.suffix}"
        record = {
            "type": "image",
            "file": f"{STYLE_FOLDER}/{name}",
            "smooth": f"{SMOOTH_FOLDER}/{name}",
            "frame": index,
            "time": round(frame_time, 3),
            "timecode": format_timecode(frame_time),
            "shot": self.open_shot.index,
            "crop": {
                "mode": self.options.crop,
                "tile": box.tile,
                "box": self._source_box(box),
                "working_size": [self.working_width, self.working_height],
                "working_box": [box.x, box.y, box.size, box.size],
            },
            "filters": {
                "brightness": round(quality.brightness, 2),
                "detail": round(quality.detail, 1),
                "phash": format_hash(quality.phash),
                "nearest_kept_distance": quality.duplicate_distance if quality.duplicate_distance <= 64 else None,
            },
            "pixels_sha256": hashlib.sha256(crop.tobytes()).hexdigest(),
        }
        previous = self.previous_images.get(record["file"])
        if (
            previous is not None
            and previous.get("pixels_sha256") == record["pixels_sha256"]
            and _record_verified(self.out_dir, previous)
        ):
            record["sha256"] = previous["sha256"]
            record["smooth_sha256"] = previous["smooth_sha256"]
            self.counters.reused += 1
            if record != previous:
                self.manifest.append(record)
        else:
            encoded = encode_image(crop, self.suffix, order="bgr", jpeg_quality=self.options.jpeg_quality)
            smoothed = smooth_image_bytes(encoded, self.suffix, self.options.size, self.options.jpeg_quality)
            assert smoothed is not None, "an image just encoded must decode"
            write_bytes_atomic(self.out_dir / record["file"], encoded)
            write_bytes_atomic(self.out_dir / record["smooth"], smoothed)
            record["sha256"] = sha256_hex(encoded)
            record["smooth_sha256"] = sha256_hex(smoothed)
            self.counters.written += 1
            self.manifest.append(record)
        self.records.append(record)
