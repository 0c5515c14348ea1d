"""``extract-frames``: shot detection, sampling, filters, crops, manifest and resume, on synthetic films."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import animevid.train.frames as frames_module
from animevid.errors import InputError, Interrupted, OutputError, UsageError
from animevid.train.crops import CropBox, crop_boxes, working_size
from animevid.train.frames import ExtractOptions, default_output_dir, extract_frames
from animevid.train.imagehash import HashIndex, hamming_distance, phash
from animevid.train.manifest import MANIFEST_NAME, read_manifest
from animevid.train.shot_sampling import ShotCandidates, TimeGrid, target_pools
from animevid.train.smooth import smooth_folder
from animevid.train.synthetic_film import Scene, render_frame, write_synthetic_film
from tests.temporaries import left_by_a_killed_process
from tests.video_fixtures import decodable_frames, make_clip, put_cover_art_first
from tests import CHECKOUT

FPS = 12
SIZE = 64
# Shot by shot: what the filters must make of it.
SCENES = [
    Scene("black", 2.0),  # 0: black intro -> dark
    Scene("shapes", 2.0, seed=1),  # 1: kept
    Scene("shapes", 2.0, seed=2),  # 2: kept
    Scene("flat", 2.0, seed=3),  # 3: one plain colour -> low detail
    Scene("shapes", 2.0, seed=1),  # 4: shot 1 again -> duplicates
    Scene("white", 2.0),  # 5: flash -> bright
    Scene("shapes", 3.0, seed=4),  # 6: kept
]
FRAMES = int(sum(scene.seconds for scene in SCENES) * FPS)
KEPT_SHOTS = (1, 2, 6)


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    path = tmp_path_factory.mktemp("film") / "My Film (2001).mkv"
    return path, write_synthetic_film(path, SCENES, fps=FPS)


@pytest.fixture(scope="module")
def baseline(film, tmp_path_factory: pytest.TempPathFactory):
    """One uninterrupted run with two frames per shot, shared by the read-only tests."""
    out = tmp_path_factory.mktemp("baseline") / "set"
    return out, extract_frames(film[0], out, ExtractOptions(size=SIZE, per_shot=2))


def manifest_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# -- shots, sampling, filters --------------------------------------------------------------------


def test_shots_are_the_hard_cuts(film, baseline):
    _, starts = film
    _, result = baseline
    assert [shot.start_frame for shot in result.shots] == starts
    assert [shot.end_frame for shot in result.shots] == starts[1:] + [FRAMES]
    assert result.frames_decoded == FRAMES
    assert result.shots[1].start_s == pytest.approx(2.0, abs=1e-3)


def test_black_white_flat_and_repeated_shots_give_no_images(baseline):
    _, result = baseline
    assert [shot.images for shot in result.shots] == [2 if i in KEPT_SHOTS else 0 for i in range(len(SCENES))]
    assert result.images == result.written == 2 * len(KEPT_SHOTS)
    for reason in ("dark", "bright", "low_detail", "duplicate"):
        assert result.rejected[reason] > 0, reason


def test_images_are_spread_inside_their_shot_away_from_the_cuts(baseline):
    out, result = baseline
    margin = 0.5 * FPS
    for record in (r for r in manifest_lines(out) if r["type"] == "image"):
        shot = result.shots[record["shot"]]
        assert shot.start_frame + margin <= record["frame"] < shot.end_frame - margin
    frames_of_shot_6 = sorted(r["frame"] for r in manifest_lines(out) if r["type"] == "image" and r["shot"] == 6)
    middle = (result.shots[6].start_frame + result.shots[6].end_frame) / 2
    assert frames_of_shot_6[0] < middle <= frames_of_shot_6[1]


def test_style_and_smooth_sets_have_the_same_names_and_size(baseline):
    out, result = baseline
    style = sorted(p.name for p in (out / "style").iterdir())
    assert style == sorted(p.name for p in (out / "smooth").iterdir())
    assert len(style) == result.images
    assert all(name.startswith("My_Film_2001_") and name.endswith(".png") for name in style)
    for folder in ("style", "smooth"):
        for name in style:
            assert cv2.imread(str(out / folder / name)).shape == (SIZE, SIZE, 3)


def test_smooth_command_rebuilds_the_same_smooth_set(baseline, tmp_path):
    out, _ = baseline
    shutil.copytree(out / "style", tmp_path / "style")
    smooth_folder(tmp_path, size=SIZE)
    assert tree(tmp_path / "smooth") == tree(out / "smooth")


def test_manifest_records_everything(film, baseline):
    out, result = baseline
    lines = manifest_lines(out)
    header, done = lines[0], lines[-1]
    assert header["type"] == "header" and done["type"] == "done"
    assert header["source"] == {"name": film[0].name, "size": film[0].stat().st_size, "path": str(film[0].resolve())}
    assert header["options"] == {**ExtractOptions(size=SIZE, per_shot=2).to_dict(), "threshold": 27.0}
    assert done["images"] == result.images and done["rejected"] == result.rejected
    assert done["frames_decoded"] == FRAMES and done["shots"] == len(SCENES)
    shots = [r for r in lines if r["type"] == "shot"]
    assert [r["start_frame"] for r in shots] == [s.start_frame for s in result.shots]
    images = [r for r in lines if r["type"] == "image"]
    assert len(images) == result.images == len(read_manifest(out / MANIFEST_NAME).images)
    for record in images:
        assert record["time"] == pytest.approx(record["frame"] / FPS, abs=2e-3)
        assert record["crop"]["mode"] == "center" and len(record["crop"]["box"]) == 4
        assert set(record["filters"]) >= {"brightness", "detail", "phash"}
        assert record["filters"]["detail"] >= 50 and 20 <= record["filters"]["brightness"] <= 235
        for key, digest in (("file", "sha256"), ("smooth", "smooth_sha256")):
            data = (out / record[key]).read_bytes()
            assert frames_module.sha256_hex(data) == record[digest]
        assert (out / record["file"]).name == (out / record["smooth"]).name


def working_image(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """A frame scaled to the working size by OpenCV's area interpolation, BGR as the set is written."""
    return cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), (width, height), interpolation=cv2.INTER_AREA)


def laplacian_variance(gray: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian, borders mirrored without repeating the edge (OpenCV's default)."""
    padded = np.pad(gray.astype(np.float64), 1, mode="reflect")
    laplacian = padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] - 4 * padded[1:-1, 1:-1]
    return float(laplacian.var())


def test_each_image_is_the_middle_of_its_frame(film, baseline):
    out, _ = baseline
    starts = film[1]
    for record in (r for r in manifest_lines(out) if r["type"] == "image"):
        # 256x144 scaled to a short side of 64: 114x64, the middle 64 columns start at (114 - 64) // 2.
        assert record["crop"]["working_size"] == [114, 64] and record["crop"]["working_box"] == [25, 0, SIZE, SIZE]
        image = cv2.imread(str(out / record["file"]))
        scene, first = SCENES[record["shot"]], starts[record["shot"]]

        def distance(frame: int) -> float:
            rendered = working_image(render_frame(scene, frame - first, 256, 144), 114, 64)[:, 25 : 25 + SIZE]
            return float(np.abs(image.astype(int) - rendered.astype(int)).mean())

        # Its own frame, as rendered before encoding, within the codec's and scalers' loss; not its neighbours.
        assert distance(record["frame"]) < 5
        assert 2 * distance(record["frame"]) < min(distance(record["frame"] - 1), distance(record["frame"] + 1))


def test_recorded_filter_values_are_those_of_the_images(baseline):
    out, _ = baseline
    for record in (r for r in manifest_lines(out) if r["type"] == "image"):
        bgr = cv2.imread(str(out / record["file"])).astype(np.float64)
        gray = np.round(bgr @ np.array([0.114, 0.587, 0.299]))  # BT.601 luma of B, G, R, rounded as OpenCV does
        assert record["filters"]["brightness"] == pytest.approx(round(gray.mean(), 2), abs=0.011)
        assert record["filters"]["detail"] == pytest.approx(round(laplacian_variance(gray), 1), rel=1e-3)
        assert record["filters"]["brightness"] >= 20 and record["filters"]["detail"] >= 50  # the defaults kept them


def test_near_duplicates_are_dropped_across_the_whole_set(baseline):
    out, _ = baseline
    hashes = [int(r["filters"]["phash"], 16) for r in manifest_lines(out) if r["type"] == "image"]
    distances = [hamming_distance(a, b) for i, a in enumerate(hashes) for b in hashes[i + 1 :]]
    assert min(distances) > 6


def test_every_seconds_sampling_stays_away_from_cuts(film, tmp_path):
    result = extract_frames(film[0], tmp_path / "set", ExtractOptions(size=SIZE, every=0.5, dup_distance=None))
    images = [r for r in manifest_lines(tmp_path / "set") if r["type"] == "image"]
    cuts = [shot.start_frame for shot in result.shots[1:]]
    assert images and result.rejected["near_cut"] > 0
    for record in images:
        assert record["time"] % 0.5 < 1 / FPS + 1e-3  # the first frame at or after a multiple of 0.5 s
        assert all(abs(record["frame"] - cut) >= 0.5 * FPS for cut in cuts)
    # Shots 1 and 4 are the same pictures: without the duplicate check, both give images.
    assert {1, 4} <= {r["shot"] for r in images}


def test_skip_start_and_end(film, tmp_path):
    options = ExtractOptions(size=SIZE, skip_start=4.5, skip_end=3.0)
    result = extract_frames(film[0], tmp_path / "set", options)
    images = [r for r in manifest_lines(tmp_path / "set") if r["type"] == "image"]
    assert result.frames_decoded == FRAMES - 3 * FPS
    assert images and all(4.5 <= r["time"] < FRAMES / FPS - 3.0 for r in images)
    # Shot 1 is skipped, so its repeat (shot 4) is no duplicate any more; shot 6 is in the skipped end.
    assert {r["shot"] for r in images} == {2, 4}


def test_adaptive_detector_finds_the_same_cuts(film, tmp_path):
    result = extract_frames(film[0], tmp_path / "set", ExtractOptions(size=SIZE, detector="adaptive"))
    assert [shot.start_frame for shot in result.shots] == film[1]


def test_grid_crops_are_non_overlapping_squares(film, tmp_path):
    result = extract_frames(film[0], tmp_path / "set", ExtractOptions(size=48, crop="grid", grid=2))
    images = [r for r in manifest_lines(tmp_path / "set") if r["type"] == "image"]
    assert result.images == len(images) > len(KEPT_SHOTS)
    by_frame: dict[int, list[list[int]]] = {}
    for record in images:
        assert record["crop"]["working_size"] == [171, 96]  # 256x144 scaled to a short side of 2 x 48
        by_frame.setdefault(record["frame"], []).append(record["crop"]["working_box"])
        assert cv2.imread(str(tmp_path / "set" / record["file"])).shape == (48, 48, 3)
    for boxes in by_frame.values():
        for i, (x1, y1, s, _) in enumerate(boxes):
            for x2, y2, _, _ in boxes[i + 1 :]:
                assert abs(x1 - x2) >= s or abs(y1 - y2) >= s


def test_random_crops_follow_the_seed(film, tmp_path):
    def boxes(seed: int, name: str) -> list[list[int]]:
        extract_frames(film[0], tmp_path / name, ExtractOptions(size=SIZE, crop="random", seed=seed, dup_distance=None))
        return [r["crop"]["working_box"] for r in manifest_lines(tmp_path / name) if r["type"] == "image"]

    def drawn(seed: int, name: str) -> list[list[int]]:
        # The documented draw: a generator seeded by (seed, frame), x then y, on the 114x64 working image.
        frames = [r["frame"] for r in manifest_lines(tmp_path / name) if r["type"] == "image"]
        rngs = [np.random.default_rng([seed, frame]) for frame in frames]
        return [[int(rng.integers(0, 114 - SIZE + 1)), int(rng.integers(0, 64 - SIZE + 1)), SIZE, SIZE] for rng in rngs]

    first, again, other = boxes(1, "a"), boxes(1, "b"), boxes(2, "c")
    assert first == again == drawn(1, "a") and other == drawn(2, "c")
    assert tree(tmp_path / "a").keys() == tree(tmp_path / "b").keys()


ANY_FRAME = ExtractOptions(size=48, margin=0, min_brightness=0, max_brightness=255, min_detail=0, dup_distance=None)


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotated_clips_give_upright_images(tmp_path, rotation):
    source = make_clip(tmp_path / "phone.mp4", width=64, height=48, frames=12, rotation=rotation)
    extract_frames(source, tmp_path / "set", ANY_FRAME)
    header, *records = [r for r in manifest_lines(tmp_path / "set") if r["type"] in ("header", "image")]
    assert (header["video"]["width"], header["video"]["height"], header["video"]["rotation"]) == (48, 64, rotation)
    assert records
    with av.open(str(source)) as container:  # the stored frames, read by plain PyAV
        stored = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    for record in records:
        image = cv2.imread(str(tmp_path / "set" / record["file"]))
        # Upright 48 wide and 64 tall: the working image itself (short side 48); the middle square starts at row 8.
        assert record["crop"]["working_box"] == [0, 8, 48, 48]
        turned = {k: np.rot90(stored[record["frame"]], k)[8:56] for k in (1, 3)}  # counter-clockwise quarter turns
        distance = {k: float(np.abs(image.astype(int) - pixels.astype(int)).mean()) for k, pixels in turned.items()}
        right, wrong = rotation // 90, 4 - rotation // 90
        # Measured: 3.5 levels (chroma upsampled by another scaler than PyAV's default) against 60.
        assert distance[right] < 5 and distance[wrong] > 30


def test_cover_art_before_the_film_is_not_read_as_the_film(tmp_path):
    cover = np.full((32, 32, 3), (255, 0, 0), np.uint8)
    source = put_cover_art_first(make_clip(tmp_path / "tagged.mp4", width=64, height=48, frames=12, cover=cover))
    result = extract_frames(source, tmp_path / "set", ANY_FRAME)
    header = manifest_lines(tmp_path / "set")[0]
    assert (header["video"]["width"], header["video"]["height"], header["video"]["codec"]) == (64, 48, "h264")
    assert result.frames_decoded == 12 and result.images >= 1
    with av.open(str(source)) as container:  # the film's frames, read by plain PyAV from stream 1
        film_frames = [frame.to_ndarray(format="bgr24") for frame in container.decode(container.streams[1])]
    for record in (r for r in manifest_lines(tmp_path / "set") if r["type"] == "image"):
        image = cv2.imread(str(tmp_path / "set" / record["file"]))
        middle = film_frames[record["frame"]][:, 8:56]  # 64x48: the working image itself; the middle square
        assert float(np.abs(image.astype(int) - middle.astype(int)).mean()) < 5


def test_jpeg_output_and_another_container(tmp_path):
    film = tmp_path / "clip.mp4"
    scenes = [Scene("shapes", 2.0, seed=5), Scene("shapes", 2.0, seed=6)]
    starts = write_synthetic_film(film, scenes, fps=FPS, codec="mpeg4")
    result = extract_frames(film, tmp_path / "set", ExtractOptions(size=SIZE, image_format="jpg", jpeg_quality=90))
    assert [shot.start_frame for shot in result.shots] == starts
    names = sorted(p.name for p in (tmp_path / "set" / "smooth").iterdir())
    assert len(names) == 2 and all(name.endswith(".jpg") for name in names)
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "set" / "style", copy / "style")
    smooth_folder(copy, size=SIZE, jpeg_quality=90)
    assert tree(copy / "smooth") == tree(tmp_path / "set" / "smooth")


# -- re-runs and resume ------------------------------------------------------------------------------


def test_rerun_of_a_finished_set_does_nothing(film, baseline, tmp_path):
    out = tmp_path / "set"
    shutil.copytree(baseline[0], out)
    before = tree(out)
    result = extract_frames(film[0], out, ExtractOptions(size=SIZE, per_shot=2))
    assert result.already_complete and result.written == 0 and result.frames_decoded == 0
    assert result.images == baseline[1].images
    assert [s.start_frame for s in result.shots] == [s.start_frame for s in baseline[1].shots]
    assert tree(out) == before


def test_interrupted_run_resumes_to_the_same_set(film, baseline, tmp_path, monkeypatch):
    out = tmp_path / "set"
    real_write = frames_module.write_bytes_atomic
    writes = []

    def write_then_interrupt(path: Path, data: bytes) -> None:
        if len(writes) == 5:  # after two full images and one style file: a run killed mid-image
            raise KeyboardInterrupt
        writes.append(path)
        real_write(path, data)

    monkeypatch.setattr(frames_module, "write_bytes_atomic", write_then_interrupt)
    with pytest.raises(Interrupted, match="run the same command again to resume"):
        extract_frames(film[0], out, ExtractOptions(size=SIZE, per_shot=2))
    monkeypatch.undo()
    partial = manifest_lines(out)
    assert [r["type"] for r in partial].count("image") == 2 and partial[-1]["type"] != "done"
    # An image recorded by the interrupted run but not selected again is removed at the end; a
    # record pointing outside the set is never followed.
    (out / "style" / "stale.png").write_bytes(b"stale")
    (tmp_path / "outside.png").write_bytes(b"not ours")
    with open(out / MANIFEST_NAME, "a") as manifest:
        for name in ("style/stale.png", "../outside.png"):
            manifest.write(json.dumps({"type": "image", "file": name, "smooth": name, "pixels_sha256": ""}) + "\n")
        # A crash can also tear the manifest's last line and leave a temporary file behind.
        manifest.write('{"type": "image", "file": "style/x')
    left_by_a_killed_process(out / "style" / "x.png", b"half an image")

    result = extract_frames(film[0], out, ExtractOptions(size=SIZE, per_shot=2))
    assert result.reused == 2 and result.written == baseline[1].images - 2
    assert tree(out) == tree(baseline[0])  # manifest included
    assert (tmp_path / "outside.png").read_bytes() == b"not ours"


def test_damaged_image_is_rewritten_on_rerun(film, baseline, tmp_path):
    out = tmp_path / "set"
    shutil.copytree(baseline[0], out)
    victim = sorted((out / "smooth").iterdir())[0]
    victim.write_bytes(b"not an image any more")
    result = extract_frames(film[0], out, ExtractOptions(size=SIZE, per_shot=2))
    assert not result.already_complete and result.written == 1 and result.reused == baseline[1].images - 1
    assert tree(out) == tree(baseline[0])


def test_other_arguments_are_refused_unless_overwrite(film, baseline, tmp_path):
    out = tmp_path / "set"
    shutil.copytree(baseline[0], out)
    with pytest.raises(OutputError, match="per_shot=2"):
        extract_frames(film[0], out, ExtractOptions(size=SIZE))
    assert tree(out) == tree(baseline[0])
    (out / "notes.txt").write_text("mine")
    result = extract_frames(film[0], out, ExtractOptions(size=48), overwrite=True)
    assert sorted(p.name for p in (out / "style").iterdir()) == sorted(p.name for p in (out / "smooth").iterdir())
    assert len(list((out / "style").iterdir())) == result.images
    assert all(cv2.imread(str(p)).shape == (48, 48, 3) for p in (out / "style").iterdir())
    assert (out / "notes.txt").read_text() == "mine"


def test_non_empty_folder_without_manifest_is_refused(film, tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "holiday.png").write_bytes(b"x")
    with pytest.raises(OutputError, match="not empty"):
        extract_frames(film[0], tmp_path / "set", ExtractOptions(size=SIZE))
    assert [p.name for p in (tmp_path / "set").iterdir()] == ["holiday.png"]


def test_bad_video_inputs(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        extract_frames(tmp_path / "missing.mkv", tmp_path / "out")
    with pytest.raises(InputError, match="is a directory"):
        extract_frames(tmp_path, tmp_path / "out")
    text = tmp_path / "notes.mkv"
    text.write_text("this is not a film\n")
    with pytest.raises(InputError, match="not a readable video"):
        extract_frames(text, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_truncated_film(film, tmp_path):
    data = film[0].read_bytes()
    headers_only = tmp_path / "headers.mkv"
    headers_only.write_bytes(data[:600])
    with pytest.raises(InputError):
        extract_frames(headers_only, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    cut_short = tmp_path / "short.mkv"
    cut_short.write_bytes(data[: len(data) * 4 // 10])
    result = extract_frames(cut_short, tmp_path / "set", ExtractOptions(size=SIZE))
    assert result.frames_decoded == decodable_frames(cut_short) < FRAMES  # every frame the file still holds
    assert any("truncated" in warning for warning in result.warnings)


def test_options_are_validated(film, tmp_path):
    with pytest.raises(UsageError):
        ExtractOptions(size=8)
    with pytest.raises(UsageError):
        ExtractOptions(min_brightness=200, max_brightness=100)
    with pytest.raises(UsageError):
        ExtractOptions(crop="diagonal")
    with pytest.raises(UsageError, match="nothing left"):
        extract_frames(film[0], tmp_path / "set", ExtractOptions(skip_start=10, skip_end=10))


def test_default_output_folder_is_named_after_the_film(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_output_dir("/films/Spirited Away (2001).mkv") == tmp_path / "Spirited_Away_2001-dataset"


# -- building blocks -------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 7, 8, 9, 100, 1000, 4321])
def test_shot_candidates_stay_bounded_and_evenly_spread(length):
    candidates: ShotCandidates[int] = ShotCandidates(8)
    for index in range(50, 50 + length):
        candidates.add(index, index)
        assert len(candidates.items) <= 8
    indices = [index for index, _ in candidates.items]
    assert indices[0] == 50 and len(indices) >= min(length, 4)
    assert len(set(np.diff(indices))) <= 1  # one stride
    assert indices[-1] + 2 * candidates.stride > 50 + length - 1  # reaches the end of the shot


def test_target_pools_spread_targets_and_never_share_candidates():
    indices = list(range(0, 100, 2))
    pools = target_pools(indices, first=0, end=100, margin=10, count=4)
    assert len(pools) == 4
    # Interior [10, 90) in four slices of 20 frames, centred on 19.5, 39.5, ...
    assert [indices[pool[0]] for pool in pools] == [20, 40, 60, 80]
    assert [[indices[p] for p in pool] for pool in pools][0] == [20, 18, 22, 16, 24, 14, 26, 12, 28, 10]
    members = [indices[p] for pool in pools for p in pool]
    assert len(members) == len(set(members)) == 40
    assert target_pools(indices, first=0, end=15, margin=8, count=2) == []


def test_time_grid_takes_the_first_frame_at_or_after_each_multiple():
    grid = TimeGrid(origin=1.0, period=0.5)
    times = [0.9, 1.0, 1.2, 1.4, 1.5, 1.6, 2.7, 2.8, 3.0]
    assert [t for t in times if grid.due(t)] == [1.0, 1.5, 2.7, 3.0]


def test_crop_geometry():
    assert working_size(1920, 1080, 256) == (455, 256)
    assert working_size(1080, 1920, 256) == (256, 455)
    assert crop_boxes("center", 455, 256, 256)[0].x == 99
    grid = crop_boxes("grid", 910, 512, 256)
    assert len(grid) == 6 and {(b.x, b.y) for b in grid} == {(x, y) for x in (71, 327, 583) for y in (0, 256)}
    rng = np.random.default_rng([3, 9])
    x, y = int(rng.integers(0, 455 - 256 + 1)), int(rng.integers(0, 1))
    assert crop_boxes("random", 455, 256, 256, seed=3, frame_index=9) == [CropBox(0, x, y, 256)]


def test_phash_separates_different_pictures_and_matches_copies():
    a = cv2.cvtColor(render_frame(Scene("shapes", 1, seed=1), 0, 128, 128), cv2.COLOR_RGB2GRAY)
    b = cv2.cvtColor(render_frame(Scene("shapes", 1, seed=2), 0, 128, 128), cv2.COLOR_RGB2GRAY)
    noisy = np.clip(a.astype(int) + np.random.default_rng(0).integers(-3, 4, a.shape), 0, 255).astype(np.uint8)
    assert hamming_distance(phash(a), phash(noisy)) <= 2
    assert hamming_distance(phash(a), phash(b)) > 16
    index = HashIndex()
    assert index.nearest_distance(phash(a)) == 65
    for value in range(2000):  # beyond the initial allocation
        index.add(value << 20)
    index.add(phash(a))
    assert index.nearest_distance(phash(noisy)) == hamming_distance(phash(a), phash(noisy))


# -- command line ----------------------------------------------------------------------------------


def cli(args: list[str]):
    from animevid._cli import main

    return CliRunner().invoke(main, args)


def assert_one_line_error(result, pattern: str, exit_code: int = 1) -> None:
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and pattern in lines[0], result.output


def test_cli_extracts_into_a_folder_named_after_the_film(film, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli(["extract-frames", str(film[0]), "--size", str(SIZE), "--per-shot", "2", "-q"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "My_Film_2001-dataset"
    assert "6 images from 7 shots" in result.output
    assert len(list((out / "style").iterdir())) == 6
    again = cli(["extract-frames", str(film[0]), "--size", str(SIZE), "--per-shot", "2", "-q"])
    assert again.exit_code == 0 and "already complete" in again.output


def test_cli_bad_inputs_give_one_line_errors(film, tmp_path):
    text = tmp_path / "text.mkv"
    text.write_text("hello\n")
    out = ["-o", str(tmp_path / "out")]
    assert_one_line_error(cli(["extract-frames", str(tmp_path / "missing.mkv"), *out]), "does not exist")
    assert_one_line_error(cli(["extract-frames", str(tmp_path), *out]), "is a directory")
    assert_one_line_error(cli(["extract-frames", str(text), *out]), "not a readable video")
    assert_one_line_error(cli(["extract-frames", str(film[0]), "-o", str(text)]), "not a folder")
    assert_one_line_error(cli(["extract-frames", str(film[0]), "-o", str(text / "sub")]), "cannot be created")
    assert_one_line_error(cli(["extract-frames", str(film[0]), "--size", "8", *out]), "size", exit_code=2)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a user whom permissions apply to")
def test_cli_read_only_output_folder(film, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert_one_line_error(cli(["extract-frames", str(film[0]), "-o", str(locked / "set")]), "cannot be created")
    finally:
        locked.chmod(0o700)


# -- slow -------------------------------------------------------------------------------------------

# The peak resident memory of this process's own address space (VmHWM: unlike ru_maxrss, it does
# not inherit the parent's peak across fork + exec).
_PEAK_MEMORY_SCRIPT = """
import sys
from animevid.train.frames import ExtractOptions, extract_frames
extract_frames(sys.argv[1], sys.argv[2], ExtractOptions(per_shot=3))
status = open("/proc/self/status").read()
print(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak memory from Linux's /proc")
def test_memory_does_not_grow_with_the_length_of_the_film(tmp_path):
    import subprocess
    import sys

    def peak_kib(seconds_per_shot: float, shots: int) -> int:
        film = tmp_path / f"film_{seconds_per_shot}_{shots}.mkv"
        scenes = [Scene("shapes", seconds_per_shot, seed=i + 1) for i in range(shots)]
        write_synthetic_film(film, scenes, width=640, height=360, fps=24)
        completed = subprocess.run(
            [sys.executable, "-c", _PEAK_MEMORY_SCRIPT, str(film), str(film.with_suffix(""))],
            cwd=CHECKOUT,
            capture_output=True,
            text=True,
            check=True,
        )
        return int(completed.stdout.split()[-1])

    short = peak_kib(2.0, 3)
    long = peak_kib(8.0, 12)  # 16 times the frames, and shots 4 times longer
    assert long < short + 48 * 1024, (short, long)
