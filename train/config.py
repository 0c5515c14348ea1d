"""Training settings: one typed dataclass, validated before any work starts.

Defaults are the paper's (Chen, Liu, Hu 2019, §3.3–4.1): ω_adv 300, ω_con 1.5, ω_gra 3, ω_col 10,
initialization 1 epoch at lr 1e-4, then Adam(0.5, 0.999) with lr_G 8e-5 and lr_D 1.6e-4, batch 4,
100 epochs, 256×256 crops.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from animevid.errors import InputError, UsageError, WeightsError

AMP_MODES = ("auto", "bf16", "fp16", "off")
MIN_IMAGE_SIZE = 16  # VGG's conv4_4 is at 1/8 resolution and D's logits at 1/4: keep both ≥ 2×2

# Settings that decide where in the data stream a step is: a resumed run must keep them, or
# "continue as if never stopped" would silently mean something else.
RESUME_FIXED_FIELDS = ("batch_size", "image_size", "seed")
# Settings that are facts about this invocation, not about the training, and that a resumed
# run therefore takes from the command line rather than from the run's config.json.
_INVOCATION_FIELDS = (
    "resume", "out", "max_steps", "device", "num_workers", "progress", "tensorboard", "overwrite", "deterministic",
)


@dataclass
class TrainConfig:
    """Everything ``animevid.train.loop.train`` needs. Paths may be ``None`` only when resuming."""

    photos: Path | None = None  # folder of real photos, S_data(p)
    anime: Path | None = None  # dataset folder written by `animevid extract-frames` (style/, smooth/)
    vgg: Path | None = None  # VGG19 weights: torchvision state dict or the authors' vgg19.npy
    name: str | None = None  # style name the trained generator is installed under
    out: Path | None = None  # run folder; default runs/<name>
    resume: Path | None = None  # run folder to continue
    val_photos: Path | None = None  # photos for the per-epoch sample grid; default: the first training photos
    run_id: str | None = None  # drawn when the run is created; the styles it installs carry it (not a CLI option)

    # schedule
    epochs: int = 100  # adversarial epochs, after the initialization epochs
    init_epochs: int = 1
    batch_size: int = 4  # per process; the effective batch is batch_size × world size
    image_size: int = 256
    max_steps: int | None = None  # stop (checkpoint, export) after this many steps in all

    # loss weights (eq. 1–6)
    adv_weight: float = 300.0  # ω_adv, for G's and D's adversarial losses
    con_weight: float = 1.5  # ω_con
    gra_weight: float = 3.0  # ω_gra
    col_weight: float = 10.0  # ω_col
    smooth_weight: float = 0.1  # weight of D's edge-smoothed term (eq. 6)

    # optimization
    init_lr: float = 1e-4
    lr_g: float = 8e-5
    lr_d: float = 1.6e-4
    beta1: float = 0.5
    beta2: float = 0.999

    # engineering
    device: str = "auto"
    amp: str = "auto"  # auto: bf16 on CUDA if supported, else fp16 on CUDA, off elsewhere
    channels_last: bool = True  # on CUDA only
    num_workers: int = 4
    seed: int = 0
    deterministic: bool = False
    checkpoint_every: int = 1000  # steps; a checkpoint is also written at the end of every epoch
    log_every: int = 20  # steps between metric lines (each one is a device sync)
    samples: int = 8  # validation photos in the per-epoch sample grid
    keep_generators: bool = True  # also keep each epoch's generator (16 MB each) to pick the best
    overwrite: bool = False  # replace an installed style of the same name
    progress: bool = True
    tensorboard: bool = True  # when the tensorboard package is installed

    @property
    def run_dir(self) -> Path:
        if self.resume is not None:
            return Path(self.resume)
        if self.out is not None:
            return Path(self.out)
        return Path("runs") / str(self.name)

    @property
    def total_epochs(self) -> int:
        return self.init_epochs + self.epochs

    def validate(self) -> "TrainConfig":
        """Raise :class:`UsageError`/:class:`InputError` for anything wrong that can be seen now."""
        # animevid.weights.styles loads torch: imported here, so that the CLI can read this module's
        # defaults at start-up and `animevid --help` stays fast.
        from animevid.weights.styles import validate_style_name

        for field in ("photos", "anime", "vgg", "name"):
            if getattr(self, field) is None:
                raise UsageError(f"--{field} is required (unless resuming a run with --resume)")
        validate_style_name(str(self.name))
        _positive("batch-size", self.batch_size)
        _positive("log-every", self.log_every)
        if self.image_size < MIN_IMAGE_SIZE or self.image_size % 8:
            raise UsageError(f"--image-size must be a multiple of 8 and at least {MIN_IMAGE_SIZE}, got {self.image_size}")
        if self.epochs < 0 or self.init_epochs < 0 or self.total_epochs < 1:
            raise UsageError("--epochs and --init-epochs must be ≥ 0, and train at least one epoch in all")
        if self.max_steps is not None:
            _positive("max-steps", self.max_steps)
        for flag, value in (("checkpoint-every", self.checkpoint_every), ("num-workers", self.num_workers), ("samples", self.samples)):
            if value < 0:
                raise UsageError(f"--{flag} must be ≥ 0, got {value}")
        for flag, value in (
            ("adv-weight", self.adv_weight),
            ("con-weight", self.con_weight),
            ("gra-weight", self.gra_weight),
            ("col-weight", self.col_weight),
            ("smooth-weight", self.smooth_weight),
        ):
            if not (math.isfinite(value) and value >= 0):
                raise UsageError(f"--{flag} must be a finite number ≥ 0, got {value}")
        for flag, value in (("init-lr", self.init_lr), ("lr-g", self.lr_g), ("lr-d", self.lr_d)):
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"--{flag} must be a positive number, got {value}")
        for flag, value in (("beta1", self.beta1), ("beta2", self.beta2)):
            if not 0 <= value < 1:
                raise UsageError(f"--{flag} must be in [0, 1), got {value}")
        if self.amp not in AMP_MODES:
            raise UsageError(f"--amp must be one of {', '.join(AMP_MODES)}, got {self.amp!r}")

        _existing_dir("photos", Path(self.photos))
        _existing_dir("anime", Path(self.anime))
        if self.val_photos is not None:
            _existing_dir("val-photos", Path(self.val_photos))
        vgg = Path(self.vgg)
        if not vgg.exists():
            raise InputError(f"VGG19 weights file {vgg} does not exist")
        if not vgg.is_file():
            raise InputError(f"VGG19 weights {vgg} is not a file")

        if self.out is not None and self.resume is not None and Path(self.out).resolve() != Path(self.resume).resolve():
            raise UsageError("--out and --resume name different run folders; a resumed run continues in its own folder")
        if self.resume is not None:
            if not (Path(self.resume) / "checkpoints" / "last.pt").is_file():
                raise InputError(f"{self.resume} has no checkpoint to resume (checkpoints/last.pt)")
        elif (self.run_dir / "checkpoints" / "last.pt").exists():
            raise UsageError(f"run folder {self.run_dir} already holds a run: continue it with --resume {self.run_dir}, or choose another --out")
        if not self.may_install_style():
            origin = "" if self.resume is None else f", and not by this run ({self.run_dir})"
            raise UsageError(f"style {self.name!r} is already installed{origin}; use --overwrite to replace it when training ends")
        return self

    def with_run_id(self) -> "TrainConfig":
        """This config with its run's id: the one given, a resumed run's own (from its
        config.json), or a new one for a new run."""
        if self.run_id is not None:
            return self
        saved = None
        if self.resume is not None:
            try:
                saved = json.loads((Path(self.resume) / "config.json").read_text()).get("run_id")
            except (OSError, ValueError, AttributeError):
                saved = None  # validate() says what is wrong with the folder
        return dataclasses.replace(self, run_id=saved or uuid.uuid4().hex)

    def may_install_style(self) -> bool:
        """Whether the trained generator may be installed as style ``name``: none is installed,
        ``overwrite`` is set, or the installed one was written by this run (training in chunks)."""
        from animevid.weights.styles import style_path

        path = style_path(str(self.name))
        return self.overwrite or not path.exists() or (self.run_id is not None and installing_run_id(path) == self.run_id)

    def to_json(self) -> dict[str, Any]:
        return {key: (str(value) if isinstance(value, Path) else value) for key, value in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {field.name: field for field in dataclasses.fields(cls)}
        values = {}
        for key, value in data.items():
            if key not in known:
                continue  # a setting from another version: ignore rather than refuse the run
            if value is not None and key in ("photos", "anime", "vgg", "out", "resume", "val_photos"):
                value = Path(value)
            values[key] = value
        return cls(**values)


def resume_config(run_dir: str | Path, **overrides: Any) -> TrainConfig:
    """The settings of the run in ``run_dir`` (its config.json), with ``overrides`` applied.

    Invocation settings (device, workers, progress...) are not carried over from the old run:
    they come from ``overrides`` or take their defaults.
    """
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{run_dir} is not a training run folder (no config.json)") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
    for field in _INVOCATION_FIELDS:
        saved.pop(field, None)
    config = TrainConfig.from_json(saved)
    unknown = set(overrides) - {field.name for field in dataclasses.fields(TrainConfig)}
    if unknown:
        raise TypeError(f"unknown TrainConfig fields: {sorted(unknown)}")
    return dataclasses.replace(config, resume=run_dir, **overrides)


def installing_run_id(style_file: Path) -> str | None:
    """The ``run_id`` in a style file's training metadata: the run that installed it, if one did."""
    from animevid.weights.formats import read_metadata

    try:
        training = json.loads(read_metadata(style_file).get("training", "{}"))
    except (WeightsError, ValueError):
        return None
    return training.get("run_id") if isinstance(training, dict) else None


def _positive(flag: str, value: int) -> None:
    if value < 1:
        raise UsageError(f"--{flag} must be ≥ 1, got {value}")


def _existing_dir(flag: str, path: Path) -> None:
    if not path.exists():
        raise InputError(f"--{flag} folder {path} does not exist")
    if not path.is_dir():
        raise InputError(f"--{flag} {path} is not a folder")
