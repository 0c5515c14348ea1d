"""The training loop: steps lower their losses, runs export a usable style, resume is exact, errors are clear."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import default_collate

from animevid.errors import Interrupted, UsageError
from animevid.models.animegan import AnimeGANGenerator
from animevid.models.discriminator import Discriminator
from animevid.weights.styles import style_path
from animevid.weights.formats import load_generator, read_metadata
from tests.clitools import assert_one_line_error, run_cli
from tests.train_helpers import make_photos, make_style_dataset, one_thread, single_thread, write_rgb, write_torchvision_vgg  # noqa: F401
from animevid.train.config import TrainConfig
from animevid.train.data import TrainImages, find_style_set, list_images, to_model_input
from animevid.train.checkpoint import load_checkpoint
from animevid.train.loop import Amp, gan_step, init_step, make_benchmark_step, train
from animevid.train.losses import LossWeights
from animevid.train.vgg import load_vgg19

IMAGE_SIZE = 32


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("train_inputs")
    return SimpleNamespace(
        photos=make_photos(root / "photos", 4, size=(40, 48)),
        anime=make_style_dataset(root / "anime", 3, size=(36, 44)),
        vgg=write_torchvision_vgg(root / "vgg19.pth"),
    )


def tiny_config(inputs: SimpleNamespace, out: Path, name: str, **overrides) -> TrainConfig:
    """4 photos, batch 2: 2 steps an epoch; 1 init + 2 adversarial epochs = 6 steps."""
    settings = dict(
        photos=inputs.photos,
        anime=inputs.anime,
        vgg=inputs.vgg,
        name=name,
        out=out,
        epochs=2,
        init_epochs=1,
        batch_size=2,
        image_size=IMAGE_SIZE,
        num_workers=0,
        log_every=1,
        samples=2,
        progress=False,
        deterministic=True,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


@pytest.fixture(scope="module")
def full_run(inputs, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One uninterrupted 6-step run, shared by the export and resume tests."""
    home = tmp_path_factory.mktemp("full_run_home")
    with pytest.MonkeyPatch.context() as monkeypatch, single_thread():
        monkeypatch.setenv("ANIMEVID_HOME", str(home))
        result = train(tiny_config(inputs, home.parent / "full_run", "full"))
    return SimpleNamespace(result=result, home=home)


def _fixed_batch(inputs: SimpleNamespace):
    dataset = TrainImages(list_images(inputs.photos, "photos"), find_style_set(inputs.anime), IMAGE_SIZE)
    return to_model_input(default_collate([dataset[(i, i % 3, 100 + i)] for i in range(2)]), torch.device("cpu"))


def assert_same_tensors(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert actual.keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(actual[name], value), name


def _logged_losses(run_dir: Path) -> list[dict]:
    """metrics.jsonl without its timings."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("time", "steps_per_s")} for r in records]


def _no_scaler() -> torch.amp.GradScaler:
    return torch.amp.GradScaler("cpu", enabled=False)


# -- the steps -------------------------------------------------------------------------------------


def test_init_steps_lower_the_content_loss(inputs):
    batch, vgg = _fixed_batch(inputs), load_vgg19(inputs.vgg)
    torch.manual_seed(0)
    generator = AnimeGANGenerator()
    optimizer = torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.5, 0.999))
    losses = [init_step(generator, vgg, batch.photo, optimizer, LossWeights(), Amp("cpu", None), _no_scaler())["loss_init"].item() for _ in range(5)]
    assert losses[-1] < losses[0] * 0.9, losses


def test_gan_steps_change_g_and_d_and_lower_both_losses(inputs):
    batch, vgg = _fixed_batch(inputs), load_vgg19(inputs.vgg)
    torch.manual_seed(0)
    generator, discriminator = AnimeGANGenerator(), Discriminator()
    g_before, d_before = copy.deepcopy(generator.state_dict()), copy.deepcopy(discriminator.state_dict())
    g_opt = torch.optim.Adam(generator.parameters(), lr=8e-5, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(discriminator.parameters(), lr=1.6e-4, betas=(0.5, 0.999))
    history = [gan_step(generator, discriminator, vgg, batch, g_opt, d_opt, LossWeights(), Amp("cpu", None), _no_scaler()) for _ in range(5)]
    assert history[-1]["loss_d"] < history[0]["loss_d"] * 0.5
    assert history[-1]["loss_g"] < history[0]["loss_g"] * 0.7
    for before, module in ((g_before, generator), (d_before, discriminator)):
        unchanged = [name for name, param in module.named_parameters() if torch.equal(param, before[name])]
        assert not unchanged


def test_benchmark_step_runs_one_full_step():
    step = make_benchmark_step("cpu", batch_size=1, image_size=16)
    losses = step()
    assert set(losses) == {"loss_d", "loss_g", "adv", "con", "gra", "col"}
    assert all(torch.isfinite(value) for value in losses.values())


# -- a whole run -----------------------------------------------------------------------------------


def test_run_folder_layout_and_metrics(full_run):
    run_dir = full_run.result.run_dir
    assert (full_run.result.step, full_run.result.init_epochs, full_run.result.epochs) == (6, 1, 2)
    assert (run_dir / "checkpoints" / "last.pt").is_file()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert {"loss_d", "loss_g", "adv", "con", "gra", "col"} <= set(records[-1])
    assert json.loads((run_dir / "config.json").read_text())["lr_g"] == 8e-5
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert (checkpoint["step"], checkpoint["epoch"], checkpoint["batch"]) == (6, 3, 0)


def test_epochs_are_numbered_as_the_paper_counts_them(full_run):
    """1 initialization epoch + 2 adversarial epochs of 2 steps: "epoch 2" is the second adversarial one."""
    run_dir = full_run.result.run_dir
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["epoch-001.png", "epoch-002.png", "init-001.png"]
    grid = cv2.imread(str(run_dir / "samples" / "epoch-002.png"))
    assert grid.shape == (2 * IMAGE_SIZE, 2 * IMAGE_SIZE, 3)  # photos above, outputs below, 2 samples
    assert sorted(p.name for p in (run_dir / "generators").iterdir()) == ["epoch-001.safetensors", "epoch-002.safetensors"]
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["phase"], r["epoch"]) for r in records] == [("init", 1)] * 2 + [("gan", 1)] * 2 + [("gan", 2)] * 2
    first = json.loads(read_metadata(run_dir / "generators" / "epoch-001.safetensors")["training"])
    assert (first["steps"], first["init_epochs_completed"], first["epochs_completed"]) == (4, 1, 1)
    # the last adversarial epoch's generator is the final one
    assert_same_tensors(load_file(run_dir / "generators" / "epoch-002.safetensors"), load_file(run_dir / "generator.safetensors"))


def test_exported_style_loads_and_stylizes(full_run, monkeypatch, tmp_path):
    monkeypatch.setenv("ANIMEVID_HOME", str(full_run.home))
    assert full_run.result.style_path == style_path("full")
    generator = load_generator(style_path("full"))
    with torch.no_grad():
        output = generator(torch.rand(1, 3, 20, 28) * 2 - 1)
    assert output.shape == (1, 3, 20, 28) and output.abs().max() <= 1
    training = json.loads(read_metadata(style_path("full"))["training"])
    assert training["steps"] == 6 and training["lr_g"] == 8e-5 and training["adv_weight"] == 300.0
    assert (training["init_epochs_completed"], training["epochs_completed"]) == (1, 2)
    assert training["run_id"] == json.loads((full_run.result.run_dir / "config.json").read_text())["run_id"]
    assert training["vgg_preprocessing"] == "torchvision"

    from animevid.api import stylize
    from animevid.options import InferenceOptions

    photo = write_rgb(tmp_path / "photo.png", cv2.cvtColor(cv2.imread(str(next(full_run.result.run_dir.glob("samples/*.png")))), cv2.COLOR_BGR2RGB))
    stylize(photo, tmp_path / "anime.png", style="full", options=InferenceOptions(device="cpu"), progress=False)
    assert cv2.imread(str(tmp_path / "anime.png")).shape == cv2.imread(str(photo)).shape


def test_resumed_run_equals_uninterrupted_run(full_run, inputs, tmp_path):
    interrupted = tiny_config(inputs, tmp_path / "run", "resumed", max_steps=3)  # stops inside an adversarial epoch
    first = train(interrupted)
    assert first.step == 3
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["batch"] == 1
    resumed = dataclasses.replace(interrupted, out=None, resume=tmp_path / "run", max_steps=None)
    second = train(resumed)
    assert second.step == 6

    reference = load_checkpoint(full_run.result.run_dir / "checkpoints" / "last.pt")
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    for network in ("generator", "discriminator"):
        assert_same_tensors(checkpoint[network], reference[network])
    for optimizer in ("generator_optimizer", "discriminator_optimizer"):
        for index, state in reference[optimizer]["state"].items():
            assert torch.equal(checkpoint[optimizer]["state"][index]["exp_avg"], state["exp_avg"])
    assert _logged_losses(tmp_path / "run") == _logged_losses(full_run.result.run_dir)


def test_resume_refuses_other_data_settings(full_run, inputs, tmp_path):
    config = tiny_config(inputs, None, "full", resume=full_run.result.run_dir, batch_size=4, overwrite=True)
    with pytest.raises(UsageError, match="--batch-size 2 → 4"):
        train(config)


# -- configuration ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image_size": 30}, "multiple of 8"),
        ({"batch_size": 0}, "--batch-size must be ≥ 1"),
        ({"lr_g": 0.0}, "--lr-g must be a positive number"),
        ({"epochs": 0, "init_epochs": 0}, "at least one epoch"),
        ({"name": "Bad Name"}, "invalid style name"),
        ({"amp": "fp8"}, "--amp must be one of"),
        ({"photos": None}, "--photos is required"),
    ],
)
def test_invalid_settings_are_refused_up_front(inputs, tmp_path, overrides, message):
    with pytest.raises(UsageError, match=message):
        tiny_config(inputs, tmp_path / "run", **{"name": "ok", **overrides}).validate()
    assert not (tmp_path / "run").exists()


# -- command line ----------------------------------------------------------------------------------


def _cli_args(inputs: SimpleNamespace, out: Path, name: str = "cli", **options) -> list[str]:
    values = {
        "photos": inputs.photos,
        "anime": inputs.anime,
        "vgg": inputs.vgg,
        "name": name,
        "out": out,
        "image-size": IMAGE_SIZE,
        "batch-size": 2,
        "num-workers": 0,
        "samples": 1,
        **options,
    }
    args = []
    for key, value in values.items():
        if value is not None:
            args += [f"--{key}", str(value)]
    return args + ["--no-progress"]


def test_cli_trains_installs_and_resumes_from_the_folder_alone(inputs, tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", *_cli_args(inputs, out, epochs=1, **{"max-steps": 3, "lr-g": 1e-4}))
    assert result.exit_code == 0, result.output
    assert "installed style 'cli'" in result.stdout
    assert style_path("cli").is_file()
    # only the folder: the rest (photos, lr-g 1e-4...) comes from its config.json
    # no --overwrite: the installed style is the run's own
    result = run_cli("train", "--resume", out, "--no-progress", "--num-workers", "0")
    assert result.exit_code == 0, result.output
    assert "trained 4 steps (epochs completed: 1 initialization, 1 adversarial)" in result.stdout
    assert json.loads((out / "config.json").read_text())["lr_g"] == 1e-4
    assert json.loads(read_metadata(style_path("cli"))["training"])["steps"] == 4
    assert_same_tensors(load_file(style_path("cli")), load_file(out / "generator.safetensors"))


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("empty photos", ("contains no images",)),
        ("unreadable photo", ("bad.png is not a readable image",)),
        ("missing vgg", ("VGG19 weights file", "does not exist")),
        ("foreign vgg", ("is not torchvision's VGG19 state dict",)),
        ("no smooth", ("not a style dataset", "extract-frames")),
        ("style installed", ("already installed", "--overwrite")),
        ("run exists", ("already holds a run", "--resume")),
        ("nothing to resume", ("is not a training run folder",)),
    ],
)
def test_cli_bad_inputs_give_one_line_errors(inputs, tmp_path, random_weights, case, fragments):
    options: dict = {}
    if case == "empty photos":
        (tmp_path / "empty").mkdir()
        options["photos"] = tmp_path / "empty"
    elif case == "unreadable photo":
        photos = make_photos(tmp_path / "photos", 2)
        (photos / "bad.png").write_bytes(b"\x00" * 100)
        options["photos"] = photos
    elif case == "missing vgg":
        options["vgg"] = tmp_path / "vgg19.pth"
    elif case == "foreign vgg":
        options["vgg"] = random_weights
    elif case == "no smooth":
        options["anime"] = make_photos(tmp_path / "dataset" / "style", 2).parent
    elif case == "style installed":
        run_cli("styles", "add", "cli", random_weights)
    elif case == "run exists":
        (tmp_path / "run" / "checkpoints").mkdir(parents=True)
        (tmp_path / "run" / "checkpoints" / "last.pt").write_bytes(b"")
    elif case == "nothing to resume":
        (tmp_path / "run").mkdir()
        options["resume"] = tmp_path / "run"
    result = run_cli("train", *_cli_args(inputs, tmp_path / "run", **options))
    assert_one_line_error(result, *fragments)


def test_divergence_stops_with_a_message_and_keeps_the_last_good_checkpoint(inputs, tmp_path, monkeypatch):
    import animevid.train.loop as loop

    real_init_step, calls = loop.init_step, []

    def init_step_that_diverges(*args, **kwargs):
        losses = real_init_step(*args, **kwargs)
        calls.append(1)
        if len(calls) >= 3:
            with torch.no_grad():
                next(args[0].parameters()).fill_(float("nan"))
            losses = {"loss_init": torch.tensor(float("nan"))}
        return losses

    monkeypatch.setattr(loop, "init_step", init_step_that_diverges)
    photos = make_photos(tmp_path / "photos", 8)
    out = tmp_path / "run"
    result = run_cli("train", *_cli_args(inputs, out, photos=photos, **{"checkpoint-every": 2, "log-every": 5}))
    assert_one_line_error(result, "training diverged: loss_init = nan in steps 3–4", "step 2) is kept", f"--resume {out}")
    checkpoint = load_checkpoint(out / "checkpoints" / "last.pt")
    assert checkpoint["step"] == 2
    assert all(torch.isfinite(value).all() for value in checkpoint["generator"].values())
    assert not style_path("cli").exists()


def test_training_in_chunks_replaces_its_own_style_and_refuses_a_foreign_one_before_any_step(inputs, tmp_path, random_weights):
    out = tmp_path / "run"
    assert run_cli("train", *_cli_args(inputs, out, "chunks", **{"image-size": 16, "max-steps": 1})).exit_code == 0
    run_cli("styles", "add", "chunks", random_weights, "--overwrite")  # a style of another origin, same name
    checkpoint, metrics = (out / "checkpoints" / "last.pt").read_bytes(), (out / "metrics.jsonl").read_bytes()

    resume = ["train", "--resume", out, "--max-steps", 2, "--no-progress", "--num-workers", 0]
    assert_one_line_error(run_cli(*resume), f"style 'chunks' is already installed, and not by this run ({out})", "--overwrite")
    assert (out / "checkpoints" / "last.pt").read_bytes() == checkpoint and (out / "metrics.jsonl").read_bytes() == metrics
    assert_same_tensors(load_file(style_path("chunks")), load_file(random_weights))

    result = run_cli(*resume, "--overwrite")
    assert result.exit_code == 0, result.output
    assert json.loads(read_metadata(style_path("chunks"))["training"])["steps"] == 2
    assert_same_tensors(load_file(style_path("chunks")), load_file(out / "generator.safetensors"))


def test_cli_defaults_are_the_dataclass_defaults():
    from animevid._cli.train import train as command

    defaults = TrainConfig()
    options = {param.name: param for param in command.params}
    assert set(options) == {field.name for field in dataclasses.fields(TrainConfig)} - {"run_id"}
    for name, option in options.items():
        assert option.default == getattr(defaults, name), name
    assert TrainConfig(**command.make_context("train", []).params) == defaults
    shown = " ".join(run_cli("train", "--help").output.split())
    assert f"Generator learning rate. [default: {defaults.lr_g}]" in shown
    assert f"Adversarial epochs (after the initialization). [default: {defaults.epochs}]" in shown


def test_the_command_line_reads_the_training_defaults_without_loading_torch():
    code = "import sys, animevid._cli.train; assert 'torch' not in sys.modules, 'torch was imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# -- interruption ----------------------------------------------------------------------------------

# Cheap runs with long schedules, so that a signal always arrives mid-run: 2 steps an epoch,
# 50 initialization epochs.
SIGNALLED_RUN = {"image_size": 16, "init_epochs": 50, "samples": 0, "keep_generators": False, "checkpoint_every": 0, "deterministic": False}


def _config_args(config: TrainConfig) -> list[str]:
    """The command line of ``config``: every setting that differs from its default."""
    defaults = TrainConfig()
    args: list[str] = []
    for field in dataclasses.fields(TrainConfig):
        value, flag = getattr(config, field.name), "--" + field.name.replace("_", "-")
        if value == getattr(defaults, field.name):
            continue
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{flag[2:]}")
        else:
            args += [flag, str(value)]
    return args


def _logged_step(run_dir: Path) -> int:
    """The last step in metrics.jsonl (0 before the first line); a line being written is skipped."""
    step = 0
    if (run_dir / "metrics.jsonl").exists():
        for line in (run_dir / "metrics.jsonl").read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError):
                step = json.loads(line)["step"]
    return step


def _signal_after_step(args: list, run_dir: Path, step: int, signum: signal.Signals) -> subprocess.CompletedProcess:
    """``python -m animevid train ARGS`` in a session of its own, sent ``signum`` once metrics.jsonl
    shows ``step``: SIGINT to the whole process group (data workers included), as Ctrl-C in a
    terminal does; SIGTERM to the process alone, as ``kill`` does."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "animevid", "train", *map(str, args)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while _logged_step(run_dir) < step:
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.02)
        if signum == signal.SIGINT:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _stopped_step(result: subprocess.CompletedProcess, signal_name: str, run_dir: Path) -> int:
    """The step a signalled run stopped at, after checking its exit, its message and its checkpoint."""
    assert result.returncode == 130, result.stderr
    assert "Traceback" not in result.stderr
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    step = checkpoint["step"]
    expected = f"error: training stopped by {signal_name} at step {step}; its checkpoint is saved: continue with animevid train --resume {run_dir}"
    assert result.stderr.strip().splitlines()[-1] == expected, result.stderr
    assert (checkpoint["epoch"], checkpoint["batch"]) == divmod(step, 2)  # 2 steps an epoch
    return step


def test_sigterm_then_sigint_stop_at_a_step_and_the_run_resumes_exactly(inputs, tmp_path):
    out = tmp_path / "run"
    config = tiny_config(inputs, out, "signalled", **SIGNALLED_RUN)
    first_stop = _stopped_step(_signal_after_step(_config_args(config), out, 1, signal.SIGTERM), "SIGTERM", out)
    # one data worker: Ctrl-C reaches it too, and it must not stop before the main process does
    resumed = ["--resume", out, "--no-progress"]
    second_stop = _stopped_step(_signal_after_step([*resumed, "--num-workers", 1], out, first_stop + 1, signal.SIGINT), "SIGINT", out)
    assert 1 <= first_stop < second_stop < 2 * config.init_epochs  # both inside the initialization

    result = run_cli("train", *resumed, "--num-workers", 0, "--max-steps", second_stop + 2)
    assert result.exit_code == 0, result.output
    reference = tiny_config(inputs, tmp_path / "reference", "reference", **SIGNALLED_RUN, max_steps=second_stop + 2)
    train(reference)
    assert_same_tensors(load_file(out / "generator.safetensors"), load_file(reference.out / "generator.safetensors"))
    assert _logged_losses(out) == _logged_losses(reference.out)


def test_a_second_signal_stops_at_once_and_keeps_the_last_checkpoint(full_run, inputs, tmp_path, monkeypatch):
    """Real SIGINTs sent by this process at chosen points: during step 3 (an adversarial step in
    mid-epoch), then in the resumed run during step 4 and again while step 4's checkpoint is
    written. Metrics lines come every 4 steps and at epoch ends: the window of steps 3–4 spans both
    stops, and the metrics still say what the uninterrupted run's say."""
    import animevid.train.loop as loop

    out = tmp_path / "run"
    # full_run's run (same losses and weights), with fewer metrics lines and outputs
    config = tiny_config(inputs, out, "signalled", log_every=4, samples=0, keep_generators=False)
    real_gan_step, real_save = loop.gan_step, torch.save

    def gan_step_then_sigint(*args, **kwargs):
        losses = real_gan_step(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # the step is not over for the loop
        return losses

    def save_half_then_sigint(obj, path):
        Path(path).write_bytes(b"half a checkpoint")
        os.kill(os.getpid(), signal.SIGINT)
        real_save(obj, path)  # not reached: the signal raises

    with monkeypatch.context() as patch:
        patch.setattr(loop, "gan_step", gan_step_then_sigint)
        with pytest.raises(Interrupted, match=r"^training stopped by SIGINT at step 3; its checkpoint is saved"):
            train(config)
        checkpoint = load_checkpoint(out / "checkpoints" / "last.pt")
        assert (checkpoint["step"], checkpoint["epoch"], checkpoint["batch"]) == (3, 1, 1)
        assert checkpoint["loss_window"]["steps"] == 1  # step 3, logged by no line yet

        resumed = dataclasses.replace(config, out=None, resume=out)
        patch.setattr(torch, "save", save_half_then_sigint)
        with pytest.raises(Interrupted, match=r"^training stopped at once at step 4, its last checkpoint \(step 3\) is kept"):
            train(resumed)
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 3
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["last.pt"]

    train(resumed)
    assert_same_tensors(load_file(out / "generator.safetensors"), load_file(full_run.result.run_dir / "generator.safetensors"))
    every_step = _logged_losses(full_run.result.run_dir)  # full_run logs every step
    logged = _logged_losses(out)
    assert [(r["step"], r["phase"], r["epoch"]) for r in logged] == [(2, "init", 1), (4, "gan", 1), (6, "gan", 2)]
    for record, window in zip(logged, (every_step[0:2], every_step[2:4], every_step[4:6])):
        for key in set(record) - {"step", "phase", "epoch"}:
            assert record[key] == pytest.approx(sum(r[key] for r in window) / 2, rel=1e-6), (record["step"], key)


# -- several processes -----------------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _ddp_worker(rank: int, world_size: int, ports: list[int], config: TrainConfig, home: str, results: str) -> None:
    """Train ``config``; rank 1 alone gets a SIGTERM during its first step. Then resume the run."""
    import animevid.train.loop as loop

    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1"})
    os.environ.update({"MASTER_PORT": str(ports[0]), "ANIMEVID_HOME": home})
    torch.set_num_threads(1)
    real_init_step = loop.init_step

    def init_step_then_sigterm(*args, **kwargs):
        loop.init_step = real_init_step
        losses = real_init_step(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        return losses

    if rank == 1:
        loop.init_step = init_step_then_sigterm
    try:
        train(config)
        stopped = "not stopped"
    except Interrupted as exc:
        stopped = str(exc)
    os.environ["MASTER_PORT"] = str(ports[1])
    result = train(dataclasses.replace(config, out=None, resume=config.run_dir))
    record = {"stopped": stopped, "step": result.step, "style": str(result.style_path) if result.style_path else None}
    Path(results, f"rank{rank}.json").write_text(json.dumps(record))


def test_ddp_two_cpu_processes_with_gloo_stop_together_and_resume(inputs, tmp_path):
    import torch.multiprocessing as mp

    config = tiny_config(inputs, tmp_path / "run", "ddp", epochs=1, num_workers=0, deterministic=False)  # 4 photos / (2 × 2): 1 step an epoch
    home = tmp_path / "home"
    results = tmp_path / "results"
    results.mkdir()
    mp.spawn(_ddp_worker, args=(2, _free_ports(2), config, str(home), str(results)), nprocs=2, join=True)
    rank0 = json.loads((results / "rank0.json").read_text())
    rank1 = json.loads((results / "rank1.json").read_text())
    # the signal to rank 1 stops both ranks after the same step
    assert rank0["stopped"].startswith("training stopped by a signal to another process at step 1;"), rank0["stopped"]
    assert rank1["stopped"].startswith("training stopped by SIGTERM at step 1;"), rank1["stopped"]
    assert rank0["step"] == rank1["step"] == 2  # 1 init + 1 adversarial epoch, one step each
    assert rank0["style"] == str(home / "styles" / "ddp.safetensors") and rank1["style"] is None
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2]  # written once, by rank 0
    assert json.loads(read_metadata(home / "styles" / "ddp.safetensors")["training"])["world_size"] == 2
