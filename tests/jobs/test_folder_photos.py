"""Photos and folders of photos: the outputs against the generator run directly, resumable folder jobs, bad input."""

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from animevid.imageio import read_image, write_image
from animevid.engine.stylizer import Stylizer
from tests.clitools import assert_one_line_error, run_cli
from tests.conftest import make_image
from tests.reference import generator_from, stylize_reference
from tests import CHECKOUT



# One thread: steady times, and the bits of the subprocess below (OMP_NUM_THREADS=1).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.jpg"
    write_image(path, make_image(45, 61))
    return path


@pytest.fixture
def generator(random_state_dict):
    return generator_from(random_state_dict)


def decoded(path: Path) -> np.ndarray:
    """The file as OpenCV decodes it, in RGB (not through animevid.imageio)."""
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def as_jpeg_95(rgb: np.ndarray) -> np.ndarray:
    """What a quality-95 JPEG of ``rgb`` decodes to (our JPEG setting), encoded by OpenCV here."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def test_photo_to_png_is_the_generator_on_the_decoded_photo(photo, tmp_path, random_weights, generator):
    out = tmp_path / "anime.png"
    result = run_cli("stylize", photo, out, "--weights", random_weights, "--engine", "torch")
    assert result.exit_code == 0, result.output
    assert "1 images in" in result.stderr and "cpu, float32" in result.stderr
    assert np.array_equal(decoded(out), stylize_reference(generator, decoded(photo)))  # PNG: lossless
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anime.png", "photo.jpg"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600


def test_library_matches_cli(photo, tmp_path, random_weights):
    stylizer = Stylizer.from_weights(random_weights)
    run_cli("stylize", photo, tmp_path / "cli.png", "--weights", random_weights)
    assert np.array_equal(read_image(tmp_path / "cli.png"), stylizer.image(read_image(photo)))


def test_max_side_runs_the_generator_small_and_scales_back(photo, tmp_path, random_weights, generator):
    assert run_cli("stylize", photo, tmp_path / "small.png", "--weights", random_weights, "--max-side", "16").exit_code == 0
    # 61 x 45 at most 16 on a side: 16 x round(45 * 16 / 61) = 16 x 12.
    expected = stylize_reference(generator, decoded(photo), size=(12, 16))
    small = decoded(tmp_path / "small.png")
    assert small.shape == (45, 61, 3)
    assert np.abs(small.astype(int) - expected.astype(int)).max() <= 1  # interpolation kernels may round a level apart


def test_folder_to_folder_mirrors_the_tree(tmp_path, random_weights, generator):
    source = tmp_path / "photos"
    (source / "sub").mkdir(parents=True)
    write_image(source / "a.png", make_image(20, 24, seed=1))
    write_image(source / "sub" / "b.jpg", make_image(33, 17, seed=2))
    (source / "notes.txt").write_text("not an image")
    (source / ".hidden.png").write_bytes(b"")
    out = tmp_path / "anime"
    result = run_cli("stylize", source, out, "--weights", random_weights, "--engine", "torch")
    assert result.exit_code == 0, result.output
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == ["a.png", os.path.join("sub", "b.jpg")]
    assert np.array_equal(decoded(out / "a.png"), stylize_reference(generator, decoded(source / "a.png")))
    assert np.array_equal(decoded(out / "sub" / "b.jpg"), as_jpeg_95(stylize_reference(generator, decoded(source / "sub" / "b.jpg"))))
    again = run_cli("stylize", source, out, "--weights", random_weights, "--engine", "torch")
    assert_one_line_error(again, "already exist", "--skip-existing", "--overwrite")
    assert run_cli("stylize", source, out, "--weights", random_weights, "--overwrite").exit_code == 0


def test_folder_with_an_unreadable_image_writes_the_others_and_fails(tmp_path, random_weights):
    source = tmp_path / "photos"
    source.mkdir()
    write_image(source / "good.png", make_image(16, 16))
    (source / "broken.jpg").write_text("this is text")
    result = run_cli("stylize", source, tmp_path / "out", "--weights", random_weights, "-q")
    assert_one_line_error(result, "1 of 2 images could not be read", "broken.jpg")
    assert (tmp_path / "out" / "good.png").is_file() and not (tmp_path / "out" / "broken.jpg").exists()


def test_existing_output_is_kept_unless_overwrite(photo, tmp_path, random_weights):
    out = tmp_path / "anime.png"
    out.write_bytes(b"precious")
    assert_one_line_error(run_cli("stylize", photo, out, "--weights", random_weights), "already exists", "--overwrite")
    assert out.read_bytes() == b"precious"
    assert run_cli("stylize", photo, out, "--weights", random_weights, "--overwrite").exit_code == 0
    assert read_image(out).shape == (45, 61, 3)


# -- resuming a folder job -------------------------------------------------------------------------

NAMES = ["a.png", "b.jpg", "c.png", "d.png", os.path.join("sub", "e.png"), os.path.join("sub", "f.jpg")]


def make_folder(root: Path) -> Path:
    for index, name in enumerate(NAMES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(root / name, make_image(14 + index, 18, seed=index))
    return root


def tree(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder``, hidden ones included (a left-over temporary would show)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def generator_calls(monkeypatch):
    """Counts the images the generator is run on, through every path that reaches it."""
    calls = []
    real_frames = Stylizer.frames

    def counting(self, batch):
        calls.append(batch.shape[0])
        return real_frames(self, batch)

    monkeypatch.setattr(Stylizer, "frames", counting)
    return calls


def test_an_interrupted_folder_job_resumes_with_skip_existing(tmp_path, random_weights, monkeypatch, generator_calls):
    import animevid.jobs.folder

    source = make_folder(tmp_path / "photos")
    real_write, writes = animevid.jobs.folder.write_image, []

    def interrupted_at_the_fourth_write(path, image):
        writes.append(path)
        if len(writes) == 4:
            raise KeyboardInterrupt  # Ctrl-C once the 4th image is stylized, before it is written
        real_write(path, image)

    monkeypatch.setattr(animevid.jobs.folder, "write_image", interrupted_at_the_fourth_write)
    out = tmp_path / "anime"
    result = run_cli("stylize", source, out, "--weights", random_weights, "-q")
    assert result.exit_code == 130
    assert_one_line_error(result, "interrupted after 3 of 6 images", "--skip-existing")
    assert sorted(tree(out)) == sorted(NAMES[:3])
    monkeypatch.setattr(animevid.jobs.folder, "write_image", real_write)
    first_outputs = {name: (out / name).stat().st_ino for name in NAMES[:3]}

    generator_calls.clear()
    result = run_cli("stylize", source, out, "--weights", random_weights, "--skip-existing")
    assert result.exit_code == 0, result.output
    assert generator_calls == [1, 1, 1]  # exactly the three images left
    assert "3 images in" in result.stderr and "3 existing outputs kept" in result.stderr
    assert {name: (out / name).stat().st_ino for name in NAMES[:3]} == first_outputs  # not rewritten
    assert run_cli("stylize", source, tmp_path / "fresh", "--weights", random_weights, "-q").exit_code == 0
    assert tree(out) == tree(tmp_path / "fresh")


_KILLED_CHILD = """
import sys, time
import animevid.imageio as imageio
from animevid._cli import main
from animevid.fileio import atomic_path

real_write, writes = imageio.write_bytes_atomic, []

def write_then_hang(path, data):
    writes.append(path)
    if len(writes) == int(sys.argv[1]):
        with atomic_path(path) as tmp:
            tmp.write_bytes(data[: len(data) // 2])
            print(tmp, flush=True)  # half an image in the temporary: now kill -9 this process
            time.sleep(600)
    real_write(path, data)

imageio.write_bytes_atomic = write_then_hang
main(sys.argv[2:])
"""


@pytest.mark.skipif(os.name != "posix", reason="kill -9")
def test_a_killed_folder_job_leaves_a_temporary_that_the_rerun_removes(tmp_path, random_weights, generator_calls):
    source = make_folder(tmp_path / "photos")
    out = tmp_path / "anime"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-c", _KILLED_CHILD, "4", "stylize", str(source), str(out), "--weights", str(random_weights), "-q"]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=CHECKOUT)
    try:
        temporary = Path(child.stdout.readline().strip())
        assert temporary.is_file(), child.communicate()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert sorted(tree(out)) == sorted([*NAMES[:3], str(temporary.relative_to(out))])
    assert temporary.name.startswith(f".{Path(NAMES[3]).name}.{child.pid}-") and temporary.name.endswith(".part.png")

    result = run_cli("stylize", source, out, "--weights", random_weights, "--skip-existing", "-q")
    assert result.exit_code == 0, result.output
    assert generator_calls == [1, 1, 1]
    assert not temporary.exists()
    generator_calls.clear()
    assert run_cli("stylize", source, tmp_path / "fresh", "--weights", random_weights, "-q").exit_code == 0
    assert len(generator_calls) == len(NAMES)
    assert tree(out) == tree(tmp_path / "fresh")


def test_skip_existing_with_everything_done_does_nothing(tmp_path, random_weights, generator_calls):
    source = make_folder(tmp_path / "photos")
    assert run_cli("stylize", source, tmp_path / "anime", "--weights", random_weights, "-q").exit_code == 0
    before = tree(tmp_path / "anime")
    generator_calls.clear()
    result = run_cli("stylize", source, tmp_path / "anime", "--weights", random_weights, "--skip-existing")
    assert result.exit_code == 0, result.output
    assert generator_calls == [] and "0 images in" in result.stderr and "6 existing outputs kept" in result.stderr
    assert tree(tmp_path / "anime") == before


@pytest.mark.parametrize(
    "make_args, fragments",
    [
        (lambda d, w: ["stylize", d / "photos", d / "out", "--weights", w, "--skip-existing", "--overwrite"], ["contradict"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--weights", w, "--skip-existing"], ["applies to folders"]),
    ],
)
def test_skip_existing_usage_errors(tmp_path, photo, random_weights, make_args, fragments):
    make_folder(tmp_path / "photos")
    result = run_cli(*make_args(tmp_path, random_weights))
    assert result.exit_code == 2
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists() and not (tmp_path / "o.png").exists()


# -- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_args, fragments",
    [
        (lambda d, w: ["stylize", d / "missing.jpg", d / "o.png", "--weights", w], ["does not exist"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png"], ["exactly one of --style"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--weights", w, "--style", "kon"], ["exactly one"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "photo.jpg", "--weights", w, "--overwrite"], ["is the input"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.gif", "--weights", w], ["must be an image file"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "nodir" / "o.png", "--weights", w], ["does not exist"]),
        (lambda d, w: ["stylize", d / "text.jpg", d / "o.png", "--weights", w], ["not a readable image"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--style", "face-paint"], ["'face-paint'", "animevid styles add face-paint"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--weights", d / "text.jpg"], ["unknown weights format"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--weights", w, "--half"], ["needs a CUDA device"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--weights", w, "--device", "cuda:0"], ["CUDA is not available"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--weights", w, "--device", "tpu"], ["device"]),
        (lambda d, w: ["stylize", d / "photo.jpg", d / "o.png", "--weights", w, "--dtype", "int8"], ["unknown dtype"]),
        (lambda d, w: ["stylize", d / "empty", d / "out", "--weights", w], ["no images or videos found"]),
        (lambda d, w: ["stylize", d / "empty", d / "photo.jpg", "--weights", w], ["not a folder"]),
    ],
)
def test_bad_input_gives_one_line_and_writes_nothing(tmp_path, photo, random_weights, make_args, fragments):
    (tmp_path / "text.jpg").write_text("hello")
    (tmp_path / "empty").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli(*make_args(tmp_path, random_weights))
    assert_one_line_error(result, *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert read_image(photo).shape == (45, 61, 3)  # the input is untouched
