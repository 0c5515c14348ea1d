"""The AnimeGAN training loop (paper §3.3), from data to an installed style.

``train(config)`` reads top to bottom: data, models, resume, outputs, then one loop over epochs
whose steps are ``init_step`` (initialization epochs: G alone, content loss) or ``gan_step``
(a D step then a G step on the same batch, as the authors' code alternates them), followed by
logging, checkpoints, per-epoch samples, and at the end the export of the generator as a style.

Run folder (``--out``, default ``runs/<name>``)::

    config.json                     the settings (``--resume`` reads them back)
    metrics.jsonl                   one JSON line per logging step (losses, steps/s)
    checkpoints/last.pt             G, D, the three Adam states, AMP scaler, RNG states, position
    samples/epoch-NNN.png           fixed validation photos (top) and G's output (bottom)
    generators/epoch-NNN.safetensors  the generator after each adversarial epoch
    generator.safetensors           the final generator (also installed as style <name>)
    tensorboard/                    when the tensorboard package is installed

Resuming loads ``checkpoints/last.pt`` and continues at the same batch of the same epoch with
the same data (see :mod:`animevid.train.data`), so a resumed run computes what the uninterrupted run would.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from animevid.errors import InputError, Interrupted, TrainingDiverged, UsageError
from animevid.fileio import atomic_path, write_bytes_atomic
from animevid.models.animegan import AnimeGANGenerator
from animevid.models.discriminator import Discriminator
from animevid.progress import ProgressReporter
from animevid.styles import add_style
from animevid.weights import GeneratorWeights, save_weights

from .config import RESUME_FIXED_FIELDS, TrainConfig
from .data import PairedSampler, TrainBatch, TrainImages, find_style_set, list_images, load_val_photos, to_model_input
from .distributed import (
    DistributedContext,
    all_reduce_mean,
    context_from_env,
    destroy_process_group,
    init_process_group,
    resolve_device,
    unwrap,
    wrap,
)
from .losses import LossWeights, color_loss, content_loss, discriminator_loss, generator_adversarial_loss, gram_loss
from .vgg import VGG19Features, load_vgg19

CHECKPOINT_FORMAT = "animevid-train-checkpoint"
CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class Amp:
    """Autocast settings: ``dtype`` None means full float32."""

    device_type: str
    dtype: torch.dtype | None

    def autocast(self):
        if self.dtype is None:
            return nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def resolve_amp(mode: str, device: torch.device) -> Amp:
    """auto: bf16 on CUDA when supported, fp16 on older GPUs (with a GradScaler), off elsewhere."""
    if mode == "auto":
        if device.type != "cuda":
            return Amp(device.type, None)
        return Amp("cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    if mode == "off":
        return Amp(device.type, None)
    if mode == "fp16" and device.type != "cuda":
        raise UsageError("--amp fp16 needs a CUDA device (use bf16 or off)")
    return Amp(device.type, torch.bfloat16 if mode == "bf16" else torch.float16)


@dataclass
class TrainResult:
    run_dir: Path
    style_path: Path | None  # None on ranks other than 0
    step: int
    epoch: int  # epochs completed
    metrics: dict[str, Any]  # the last logged record (step, epoch, phase, losses, steps_per_s)


# -- the two kinds of step -------------------------------------------------------------------------


def init_step(
    generator: nn.Module,
    vgg: VGG19Features,
    photo: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    weights: LossWeights,
    amp: Amp,
    scaler: torch.amp.GradScaler,
) -> dict[str, torch.Tensor]:
    """One initialization step: G minimizes ω_con·L_con(p, G(p)) alone (the authors' init_loss)."""
    optimizer.zero_grad(set_to_none=True)
    with amp.autocast():
        fake = generator(photo)
        with torch.no_grad():
            photo_features = vgg(photo)
        fake_features = vgg(fake)
    loss = weights.con * content_loss(photo_features, fake_features)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return {"loss_init": loss.detach()}


def gan_step(
    generator: nn.Module,
    discriminator: nn.Module,
    vgg: VGG19Features,
    batch: TrainBatch,
    generator_optimizer: torch.optim.Optimizer,
    discriminator_optimizer: torch.optim.Optimizer,
    weights: LossWeights,
    amp: Amp,
    scaler: torch.amp.GradScaler,
) -> dict[str, torch.Tensor]:
    """One adversarial step: a D step then a G step on the same batch (eq. 1–6).

    ``generator``/``discriminator`` may be wrapped in DistributedDataParallel. Returns the
    detached losses (no device sync): ``loss_d`` and ``loss_g`` weighted as optimized, and the
    unweighted terms ``adv``, ``con``, ``gra``, ``col``.
    """
    # G(p) once. D's step sees it detached; G's step backpropagates through the same graph. G is
    # unchanged in between, so this equals the authors' second forward pass.
    with amp.autocast():
        fake = generator(batch.photo)

    # D step: the four kinds of image in one forward pass (instance norm is per image, so this is
    # four separate passes' result, and one spectral-norm power iteration per step).
    discriminator_optimizer.zero_grad(set_to_none=True)
    with amp.autocast():
        logits = discriminator(torch.cat([batch.anime, fake.detach(), batch.anime_gray, batch.smooth_gray]))  # (4B, 1, S/4, S/4)
    anime_logits, fake_logits, gray_logits, smooth_logits = logits.chunk(4)
    loss_d = weights.adv * discriminator_loss(anime_logits, fake_logits, gray_logits, smooth_logits, weights.smooth)
    scaler.scale(loss_d).backward()
    scaler.step(discriminator_optimizer)

    # G step, judged by the updated D. The bare D module is used: a second forward through its
    # DDP wrapper would wait for a second D backward, and D's weights take no gradient here.
    critic = unwrap(discriminator)
    generator_optimizer.zero_grad(set_to_none=True)
    critic.requires_grad_(False)
    try:
        with amp.autocast():
            fake_logits_for_g = critic(fake)
            with torch.no_grad():
                photo_features, gray_features = vgg(torch.cat([batch.photo, batch.anime_gray])).chunk(2)
            fake_features = vgg(fake)
    finally:
        critic.requires_grad_(True)
    adv = generator_adversarial_loss(fake_logits_for_g)
    con = content_loss(photo_features, fake_features)
    gra = gram_loss(fake_features, gray_features)
    col = color_loss(batch.photo, fake)
    loss_g = weights.adv * adv + weights.con * con + weights.gra * gra + weights.col * col
    scaler.scale(loss_g).backward()
    scaler.step(generator_optimizer)
    scaler.update()
    return {
        "loss_d": loss_d.detach(),
        "loss_g": loss_g.detach(),
        "adv": adv.detach(),
        "con": con.detach(),
        "gra": gra.detach(),
        "col": col.detach(),
    }


# -- the training run ------------------------------------------------------------------------------


def train(config: TrainConfig) -> TrainResult:
    """Train a style as the paper does and install it as ``config.name``.

    Single process, or one process per device under torchrun (DDP). Raises
    :class:`~animevid.errors.AnimevidError` subclasses for problems with the inputs, and
    :class:`TrainingDiverged` when the losses become NaN/inf (the last checkpoint is kept).
    """
    config.validate()
    context = context_from_env()
    device = resolve_device(config.device, context)
    deterministic_before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    init_process_group(context, device)
    try:
        return _train(config, context, device)
    finally:
        torch.use_deterministic_algorithms(deterministic_before[0], warn_only=deterministic_before[1])
        destroy_process_group(context)


def _train(config: TrainConfig, context: DistributedContext, device: torch.device) -> TrainResult:
    run_dir = config.run_dir
    is_main = context.is_main
    if config.deterministic:
        # warn_only: some CUDA backward kernels used here (reflection pad, bilinear resize) have
        # no deterministic version; the CPU path is fully deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not config.deterministic  # fixed input sizes
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = not config.deterministic
    channels_last = config.channels_last and device.type == "cuda"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    # -- data
    photos = list_images(Path(config.photos), "photos")
    style_set = find_style_set(Path(config.anime))
    val_paths = list_images(Path(config.val_photos), "val-photos") if config.val_photos else photos
    val_paths = val_paths[: config.samples]
    sampler = PairedSampler(
        len(photos), len(style_set.style), batch_size=config.batch_size, seed=config.seed, rank=context.rank, world_size=context.world_size
    )
    loader = DataLoader(
        TrainImages(photos, style_set, config.image_size),
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=config.num_workers > 0,
    )
    steps_per_epoch = sampler.batches_per_epoch
    last_step = steps_per_epoch * config.total_epochs
    if config.max_steps is not None:
        last_step = min(last_step, config.max_steps)

    # -- models and optimizers (same seed on every rank; DDP also broadcasts rank 0's weights)
    torch.manual_seed(config.seed)
    vgg = load_vgg19(Path(config.vgg)).to(device, memory_format=memory_format)
    generator = AnimeGANGenerator().to(device, memory_format=memory_format)
    discriminator = Discriminator().to(device, memory_format=memory_format)
    betas = (config.beta1, config.beta2)
    init_optimizer = torch.optim.Adam(generator.parameters(), lr=config.init_lr, betas=betas)
    generator_optimizer = torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=betas)
    discriminator_optimizer = torch.optim.Adam(discriminator.parameters(), lr=config.lr_d, betas=betas)
    amp = resolve_amp(config.amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp.dtype is torch.float16)
    weights = LossWeights(config.adv_weight, config.con_weight, config.gra_weight, config.col_weight, config.smooth_weight)

    # -- resume: weights, optimizer and scaler states, RNG states, position in the data
    step, start_epoch, start_batch = 0, 0, 0
    checkpoint_path = run_dir / "checkpoints" / "last.pt"
    if config.resume is not None:
        checkpoint = load_checkpoint(checkpoint_path)
        _check_resumable(checkpoint, config, context, steps_per_epoch, checkpoint_path)
        generator.load_state_dict(checkpoint["generator"])
        discriminator.load_state_dict(checkpoint["discriminator"])
        init_optimizer.load_state_dict(checkpoint["init_optimizer"])
        generator_optimizer.load_state_dict(checkpoint["generator_optimizer"])
        discriminator_optimizer.load_state_dict(checkpoint["discriminator_optimizer"])
        _set_learning_rate(init_optimizer, config.init_lr)  # a resumed run may lower them (after a divergence)
        _set_learning_rate(generator_optimizer, config.lr_g)
        _set_learning_rate(discriminator_optimizer, config.lr_d)
        if checkpoint["scaler"] and scaler.is_enabled():
            scaler.load_state_dict(checkpoint["scaler"])
        set_rng_state(checkpoint["rng"], device)
        step, start_epoch, start_batch = checkpoint["step"], checkpoint["epoch"], checkpoint["batch"]
        del checkpoint
    checkpoint_step = step if config.resume is not None else None
    generator = wrap(generator, context, device)
    discriminator = wrap(discriminator, context, device)

    # -- outputs (rank 0 only)
    metrics_log = tensorboard = None
    val_photos = None
    if is_main:
        for folder in ("checkpoints", "samples", "generators"):
            (run_dir / folder).mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(run_dir / "config.json", (json.dumps(config.to_json(), indent=2) + "\n").encode())
        metrics_log = MetricsLog(run_dir / "metrics.jsonl", keep_until_step=step)
        tensorboard = _tensorboard_writer(run_dir / "tensorboard") if config.tensorboard else None
        val_photos = load_val_photos(val_paths, config.image_size) if config.samples else None

    def write_checkpoint(step: int, epoch: int, batch: int) -> None:
        """Rank 0 saves everything; (epoch, batch) is where a resumed run continues."""
        if is_main:
            save_checkpoint(
                checkpoint_path,
                generator=unwrap(generator),
                discriminator=unwrap(discriminator),
                init_optimizer=init_optimizer,
                generator_optimizer=generator_optimizer,
                discriminator_optimizer=discriminator_optimizer,
                scaler=scaler,
                step=step,
                epoch=epoch,
                batch=batch,
                steps_per_epoch=steps_per_epoch,
                config=config,
                world_size=context.world_size,
            )

    last_metrics: dict[str, Any] = {}
    window: dict[str, torch.Tensor] = {}
    window_steps = 0
    window_start = time.perf_counter()
    try:
        with ProgressReporter("train", total=last_step - step, unit="steps", enabled=config.progress and is_main) as progress:
            for epoch in range(start_epoch, config.total_epochs):
                if step >= last_step:
                    break
                in_init = epoch < config.init_epochs
                batch_in_epoch = start_batch if epoch == start_epoch else 0
                sampler.set_epoch(epoch, skip_batches=batch_in_epoch)
                for cpu_batch in _batches(loader):
                    # -- data
                    batch = to_model_input(cpu_batch, device, channels_last)

                    # -- init phase
                    if in_init:
                        losses = init_step(generator, vgg, batch.photo, init_optimizer, weights, amp, scaler)
                    # -- D step, G step
                    else:
                        losses = gan_step(
                            generator, discriminator, vgg, batch, generator_optimizer, discriminator_optimizer, weights, amp, scaler
                        )
                    step += 1
                    batch_in_epoch += 1
                    window = {key: window.get(key, 0.0) + value for key, value in losses.items()}
                    window_steps += 1
                    progress.advance()
                    stop = step >= last_step
                    epoch_done = batch_in_epoch == steps_per_epoch
                    checkpoint_due = bool(config.checkpoint_every) and step % config.checkpoint_every == 0

                    # -- logging: a device sync, so also where divergence is caught, before any checkpoint
                    if step % config.log_every == 0 or checkpoint_due or epoch_done or stop:
                        means = _reduce_window(window, window_steps, context)
                        _check_finite(means, step - window_steps + 1, step, generator, discriminator, scaler, run_dir, checkpoint_step)
                        elapsed = time.perf_counter() - window_start
                        last_metrics = {
                            "step": step,
                            "epoch": epoch + 1,
                            "phase": "init" if in_init else "gan",
                            **means,
                            "steps_per_s": window_steps / elapsed if elapsed > 0 else 0.0,
                            "time": time.time(),
                        }
                        if is_main:
                            metrics_log.write(last_metrics)
                            if tensorboard is not None:
                                for key, value in means.items():
                                    tensorboard.add_scalar(f"{'init' if in_init else 'gan'}/{key}", value, step)
                            progress.set_fields(epoch=f"{epoch + 1}/{config.total_epochs}", **means)
                        window, window_steps, window_start = {}, 0, time.perf_counter()

                    # -- checkpoint (periodic; epoch ends and the last step are saved below)
                    if checkpoint_due and not (epoch_done or stop):
                        write_checkpoint(step, epoch, batch_in_epoch)
                        checkpoint_step = step
                    if stop:
                        break

                # -- end of epoch: samples, this epoch's generator, checkpoint
                epoch_done = batch_in_epoch == steps_per_epoch
                if is_main and epoch_done:
                    if val_photos is not None:
                        write_samples(unwrap(generator), val_photos, run_dir / "samples" / f"epoch-{epoch + 1:03d}.png", device, amp)
                    if config.keep_generators and not in_init:
                        save_weights(
                            GeneratorWeights(unwrap(generator).state_dict(), "animegan-v1", "tf1"),
                            run_dir / "generators" / f"epoch-{epoch + 1:03d}.safetensors",
                            style=str(config.name),
                            source=f"animevid train, {run_dir}, epoch {epoch + 1}",
                            training=_training_metadata(config, step, epoch + 1, len(photos), len(style_set.style), vgg, context),
                        )
                if epoch_done:
                    write_checkpoint(step, epoch + 1, 0)
                    checkpoint_step = step
                else:  # stopped at --max-steps
                    write_checkpoint(step, epoch, batch_in_epoch)
                    checkpoint_step = step
                    break
    except KeyboardInterrupt:
        if checkpoint_step is None:
            raise Interrupted(f"training interrupted at step {step}, before its first checkpoint") from None
        raise Interrupted(
            f"training interrupted at step {step}; continue from its checkpoint (step {checkpoint_step}) with: animevid train --resume {run_dir}"
        ) from None
    finally:
        if tensorboard is not None:
            tensorboard.close()

    epochs_completed = step // steps_per_epoch

    # -- export: the generator as a style
    installed = None
    if is_main:
        training = _training_metadata(config, step, epochs_completed, len(photos), len(style_set.style), vgg, context)
        final = save_weights(
            GeneratorWeights(unwrap(generator).state_dict(), "animegan-v1", "tf1"),
            run_dir / "generator.safetensors",
            style=str(config.name),
            source=f"animevid train, {run_dir}",
            training=training,
        )
        installed = add_style(str(config.name), final, overwrite=config.overwrite, training=training)
    return TrainResult(run_dir=run_dir, style_path=installed, step=step, epoch=epochs_completed, metrics=last_metrics)


# -- helpers of the loop ---------------------------------------------------------------------------


def _batches(loader: DataLoader) -> Iterator[TrainBatch]:
    """The loader's batches, with an image error from a worker reported in one line."""
    iterator = iter(loader)
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except InputError as exc:
            # DataLoader re-raises a worker's exception with the worker's whole traceback as its
            # message; the user needs its last line only.
            message = str(exc)
            if "Traceback" in message:
                message = [line for line in message.strip().splitlines() if line.strip()][-1]
                message = message.split("InputError: ", 1)[-1]
            raise InputError(message) from None
        yield batch


def _reduce_window(window: dict[str, torch.Tensor], count: int, context: DistributedContext) -> dict[str, float]:
    keys = sorted(window)
    values = torch.stack([window[key].float() for key in keys]) / count
    values = all_reduce_mean(values, context)
    return dict(zip(keys, values.tolist()))  # the sync point


def _check_finite(
    means: dict[str, float],
    first_step: int,
    last_step: int,
    generator: nn.Module,
    discriminator: nn.Module,
    scaler: torch.amp.GradScaler,
    run_dir: Path,
    checkpoint_step: int | None,
) -> None:
    bad = [key for key, value in means.items() if not math.isfinite(value)]
    if not bad:
        return
    # With fp16 the GradScaler skips steps whose gradients overflow, so a non-finite loss alone is
    # not a divergence; weights that stopped being finite are.
    if scaler.is_enabled() and all(torch.isfinite(p).all() for m in (generator, discriminator) for p in m.parameters()):
        return
    kept = (
        f"the last good checkpoint ({run_dir / 'checkpoints' / 'last.pt'}, step {checkpoint_step}) is kept; "
        f"resume it with lower learning rates, e.g. animevid train --resume {run_dir} --lr-g ... --lr-d ..."
        if checkpoint_step is not None
        else "no checkpoint had been written yet; try lower learning rates or --amp off"
    )
    steps = f"step {last_step}" if first_step == last_step else f"steps {first_step}–{last_step}"
    raise TrainingDiverged(
        "training diverged: " + ", ".join(f"{key} = {means[key]}" for key in bad) + f" in {steps}; {kept}"
    )


def _set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _check_resumable(checkpoint: dict, config: TrainConfig, context: DistributedContext, steps_per_epoch: int, path: Path) -> None:
    saved = checkpoint["config"]
    changed = [f"--{key.replace('_', '-')} {saved.get(key)} → {getattr(config, key)}" for key in RESUME_FIXED_FIELDS if saved.get(key) != getattr(config, key)]
    if changed:
        raise UsageError(f"cannot resume {path} with other data settings ({'; '.join(changed)}): a resumed run keeps them")
    if checkpoint["world_size"] != context.world_size:
        raise UsageError(f"{path} was trained with {checkpoint['world_size']} process(es), not {context.world_size}: resume it with as many")
    if checkpoint["steps_per_epoch"] != steps_per_epoch:
        raise UsageError(
            f"{path} was trained with {checkpoint['steps_per_epoch']} steps an epoch, the photos now give {steps_per_epoch}: "
            "resume with the same photos"
        )


def _training_metadata(
    config: TrainConfig, step: int, epochs: int, num_photos: int, num_style: int, vgg: VGG19Features, context: DistributedContext
) -> dict[str, Any]:
    """What a style file records about its training: the settings that shape the result, not
    local paths or logging options."""
    settings = config.to_json()
    return {
        **{key: settings[key] for key in _METADATA_SETTINGS},
        "dataset": Path(str(config.anime)).name,
        "steps": step,
        "epochs_completed": epochs,
        "photos_count": num_photos,
        "style_images_count": num_style,
        "vgg_preprocessing": vgg.preprocessing,
        "world_size": context.world_size,
        "torch": torch.__version__,
    }


_METADATA_SETTINGS = (
    "epochs", "init_epochs", "batch_size", "image_size", "max_steps",
    "adv_weight", "con_weight", "gra_weight", "col_weight", "smooth_weight",
    "init_lr", "lr_g", "lr_d", "beta1", "beta2", "amp", "seed",
)  # fmt: skip


def _tensorboard_writer(folder: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(folder))


class MetricsLog:
    """metrics.jsonl. On resume, lines after the checkpoint's step are dropped: the resumed run
    writes them again, so the file reads as if the run had never stopped."""

    def __init__(self, path: Path, keep_until_step: int) -> None:
        self.path = path
        if path.exists():
            kept = []
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= keep_until_step:
                        kept.append(line + "\n")
                except (ValueError, KeyError, TypeError):
                    continue
            write_bytes_atomic(path, "".join(kept).encode())

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


@torch.no_grad()
def write_samples(generator: nn.Module, photos: torch.Tensor, path: Path, device: torch.device, amp: Amp) -> None:
    """A PNG grid: the validation photos in the top row, G's output below them."""
    outputs = []
    for chunk in photos.split(4):  # (≤4, 3, S, S)
        with amp.autocast():
            outputs.append(generator(chunk.to(device)).float().cpu())
    top = torch.cat(list(photos), dim=2)  # (3, S, N·S)
    bottom = torch.cat(list(torch.cat(outputs)), dim=2)  # (3, S, N·S)
    grid = torch.cat([top, bottom], dim=1)  # (3, 2S, N·S)
    image = ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()  # (2S, N·S, 3) RGB
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if ok:
        write_bytes_atomic(path, encoded.tobytes())


# -- checkpoints -----------------------------------------------------------------------------------


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every RNG the process has, in types ``torch.load(weights_only=True)`` accepts."""
    numpy_state = np.random.get_state(legacy=False)
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    numpy_state = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": numpy_state["bit_generator"],
            "state": {"key": numpy_state["key"].numpy().astype(np.uint32), "pos": numpy_state["pos"]},
            "has_gauss": numpy_state["has_gauss"],
            "gauss": numpy_state["gauss"],
        }
    )
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def save_checkpoint(
    path: Path,
    *,
    generator: nn.Module,
    discriminator: nn.Module,
    init_optimizer: torch.optim.Optimizer,
    generator_optimizer: torch.optim.Optimizer,
    discriminator_optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    step: int,
    epoch: int,
    batch: int,
    steps_per_epoch: int,
    config: TrainConfig,
    world_size: int,
) -> None:
    """Write the whole training state atomically; ``epoch``/``batch`` is where to continue."""
    device = next(generator.parameters()).device
    state = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "generator": generator.state_dict(),
        "discriminator": discriminator.state_dict(),
        "init_optimizer": init_optimizer.state_dict(),
        "generator_optimizer": generator_optimizer.state_dict(),
        "discriminator_optimizer": discriminator_optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler.is_enabled() else {},
        "rng": rng_state(device),
        "step": step,
        "epoch": epoch,
        "batch": batch,
        "steps_per_epoch": steps_per_epoch,
        "world_size": world_size,
        "config": config.to_json(),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`save_checkpoint` (read with ``weights_only=True``)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # torch raises many types for damaged files
        raise InputError(f"cannot read checkpoint {path}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not an animevid training checkpoint")
    if checkpoint.get("version") != CHECKPOINT_VERSION:
        raise InputError(f"{path} is a version {checkpoint.get('version')} checkpoint; this animevid reads version {CHECKPOINT_VERSION}")
    return checkpoint


# -- benchmark hook --------------------------------------------------------------------------------


def make_benchmark_step(
    device: str | torch.device,
    batch_size: int = 4,
    image_size: int = 256,
    *,
    amp: str = "auto",
    channels_last: bool = True,
    seed: int = 0,
) -> Callable[[], dict[str, torch.Tensor]]:
    """A callable doing one full :func:`gan_step` (D and G, all losses) on a fixed random batch,
    with random VGG weights, as training does on ``device``. It returns the (unsynced) losses;
    benchmarks synchronize the device around calls themselves."""
    device = torch.device(device)
    torch.manual_seed(seed)
    channels_last = channels_last and device.type == "cuda"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    vgg = VGG19Features("caffe").eval().requires_grad_(False).to(device, memory_format=memory_format)
    generator = AnimeGANGenerator().to(device, memory_format=memory_format)
    discriminator = Discriminator().to(device, memory_format=memory_format)
    generator_optimizer = torch.optim.Adam(generator.parameters(), lr=8e-5, betas=(0.5, 0.999))
    discriminator_optimizer = torch.optim.Adam(discriminator.parameters(), lr=1.6e-4, betas=(0.5, 0.999))
    amp_settings = resolve_amp(amp, device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_settings.dtype is torch.float16)
    shape = (batch_size, 3, image_size, image_size)
    gray = torch.randint(0, 256, (batch_size, 1, image_size, image_size), dtype=torch.uint8)
    cpu_batch = TrainBatch(
        torch.randint(0, 256, shape, dtype=torch.uint8), torch.randint(0, 256, shape, dtype=torch.uint8), gray, gray.flip(2)
    )
    batch = to_model_input(cpu_batch, device, channels_last)
    weights = LossWeights()

    def step() -> dict[str, torch.Tensor]:
        return gan_step(generator, discriminator, vgg, batch, generator_optimizer, discriminator_optimizer, weights, amp_settings, scaler)

    return step
