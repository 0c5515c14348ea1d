"""The AnimeGAN training loop (paper §3.3), from data to an installed style.

``train(config)`` reads top to bottom: data, models, resume, outputs, then one loop with a step
per batch — ``init_step`` in the initialization epochs (G alone, content loss), ``gan_step`` after
them (a D step then a G step on the same batch, as the authors' code alternates them) — and, at the
boundary after each step, logging, the epoch's outputs and checkpoints; at the end the generator
is exported as a style.

Run folder (``--out``, default ``runs/<name>``)::

    config.json                     the settings (``--resume`` reads them back) and the run's id
    metrics.jsonl                   one JSON line per logging step (step, phase, epoch, losses, steps/s)
    checkpoints/last.pt             the whole training state (see :mod:`animevid.train.checkpoint`)
    samples/init-NNN.png            after each initialization epoch and each adversarial epoch:
    samples/epoch-NNN.png             the validation photos (top) and G's output (bottom)
    generators/epoch-NNN.safetensors  the generator after adversarial epoch NNN
    generator.safetensors           the final generator (also installed as style <name>)
    tensorboard/                    when the tensorboard package is installed

Epochs are counted as the paper counts them: adversarial epochs from 1, the initialization epochs
apart (``init-NNN``, phase ``init`` in the metrics). ``epoch-060`` is the generator after 60
adversarial epochs. (The authors' code numbers all epochs from 0, initialization first, so with
its one initialization epoch its checkpoint 60 is saved after 60 adversarial epochs too.)

Resuming loads ``checkpoints/last.pt`` and continues at the same batch of the same epoch with
the same data (see :mod:`animevid.train.data`), so a resumed run computes what the uninterrupted
run would. SIGINT and SIGTERM stop the run at the next step boundary with a checkpoint of it
(:mod:`animevid.train.interruption`). A run may always replace the style it installed itself (its
``run_id`` is in the style's training metadata), so a finished run can be continued in chunks
with ``--resume RUN --max-steps N``; a style of another origin needs ``--overwrite``, and that is
checked before the first step.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from animevid.errors import InputError, Interrupted, OutputError, TrainingDiverged, UsageError
from animevid.fileio import write_bytes_atomic
from animevid.models.animegan import AnimeGANGenerator
from animevid.models.discriminator import Discriminator
from animevid.imageio import write_image
from animevid.progress import ProgressReporter
from animevid.weights.styles import add_style
from animevid.weights.formats import GeneratorWeights, save_weights

from .checkpoint import Position, TrainState, load_checkpoint, restore_checkpoint, save_checkpoint
from .config import RESUME_FIXED_FIELDS, TrainConfig
from .data import PairedSampler, TrainBatch, TrainImages, find_style_set, list_images, load_val_photos, to_model_input
from .distributed import DistributedContext, any_rank, context_from_env, destroy_process_group, init_process_group, new_host_group, resolve_device, unwrap, wait_for_all, wrap
from .interruption import StopSignals, ignore_stop_signals
from .losses import LossWeights, color_loss, content_loss, discriminator_loss, generator_adversarial_loss, gram_loss
from .metrics import LossWindow, MetricsLog, tensorboard_writer
from .vgg import VGG19Features, load_vgg19


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
    init_epochs: int  # initialization epochs completed
    epochs: int  # adversarial epochs completed (the paper's count)
    metrics: dict[str, Any]  # the last logged record (step, phase, epoch, losses, steps_per_s)


@dataclass(frozen=True)
class Epoch:
    """An epoch as the paper counts them: the initialization epochs, then the adversarial epochs,
    each numbered from 1 within its phase."""

    phase: str  # "init" or "gan"
    number: int
    count: int  # epochs in this phase

    @classmethod
    def at(cls, index: int, config: TrainConfig) -> "Epoch":
        """The epoch at ``index`` (from 0) of the whole schedule, initialization first."""
        if index < config.init_epochs:
            return cls("init", index + 1, config.init_epochs)
        return cls("gan", index - config.init_epochs + 1, config.epochs)

    @property
    def file_stem(self) -> str:
        return f"{'init' if self.phase == 'init' else 'epoch'}-{self.number:03d}"

    @property
    def label(self) -> str:
        return f"{'init ' if self.phase == 'init' else ''}{self.number}/{self.count}"


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
    :class:`~animevid.errors.AnimevidError` subclasses for problems with the inputs,
    :class:`TrainingDiverged` when the losses become NaN/inf (the last checkpoint is kept), and
    :class:`Interrupted` on SIGINT/SIGTERM, after the checkpoint of the step boundary it stopped at.
    """
    # The run's id, which the styles it installs carry. A new run under torchrun draws one on
    # every rank; only rank 0's is written and used.
    config = config.with_run_id()
    config.validate()
    context = context_from_env()
    device = resolve_device(config.device, context)
    deterministic_before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    init_process_group(context, device)
    try:
        with StopSignals(announce=context.is_main) as signals:
            return _train(config, context, device, signals)
    finally:
        torch.use_deterministic_algorithms(deterministic_before[0], warn_only=deterministic_before[1])
        destroy_process_group(context)


def _train(config: TrainConfig, context: DistributedContext, device: torch.device, signals: StopSignals) -> TrainResult:
    # One function on purpose, like nanoGPT's train.py: setup, the loop and the export read top
    # to bottom in commented sections; each part of them is a named helper.
    run_dir, is_main = config.run_dir, context.is_main
    checkpoint_path = run_dir / "checkpoints" / "last.pt"
    channels_last = _configure_backends(config, device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    # -- data
    photos = list_images(Path(config.photos), "photos")
    style_set = find_style_set(Path(config.anime))
    val_paths = (list_images(Path(config.val_photos), "val-photos") if config.val_photos else photos)[: config.samples]
    sampler = PairedSampler(
        len(photos), len(style_set.style), batch_size=config.batch_size, seed=config.seed, rank=context.rank, world_size=context.world_size
    )
    loader = _loader(TrainImages(photos, style_set, config.image_size), sampler, config, device)
    steps_per_epoch = sampler.batches_per_epoch
    last_step = steps_per_epoch * config.total_epochs
    if config.max_steps is not None:
        last_step = min(last_step, config.max_steps)

    # -- models and optimizers (same seed on every rank; DDP also broadcasts rank 0's weights)
    torch.manual_seed(config.seed)
    vgg = load_vgg19(Path(config.vgg)).to(device, memory_format=memory_format)
    amp = resolve_amp(config.amp, device)
    state = _new_train_state(config, device, memory_format, amp)
    weights = LossWeights(config.adv_weight, config.con_weight, config.gra_weight, config.col_weight, config.smooth_weight)

    # -- resume: weights, optimizer and scaler states, RNG states, position in the data, loss window
    position, window, checkpoint_step = Position(), LossWindow(), None
    if config.resume is not None:
        position, window = _resume(checkpoint_path, state, config, context, steps_per_epoch, device)
        checkpoint_step = position.step
    generator, discriminator = wrap(state.generator, context, device), wrap(state.discriminator, context, device)
    host_group = new_host_group(context, device)

    # -- outputs (rank 0 only)
    run_metadata = _run_metadata(config, len(photos), len(style_set.style), vgg.preprocessing, context.world_size)
    outputs = RunOutputs(config, val_paths, device, amp, keep_until_step=position.step, enabled=is_main)

    # -- the loop: a step per batch; at the boundary after it, logging, the epoch's outputs, checkpoints
    last_metrics: dict[str, Any] = {}
    stopped_by = None  # the signal that stopped the run
    batches = _batches_from(position, loader, sampler, config.total_epochs)
    try:
        progress = ProgressReporter("train", total=last_step - position.step, unit="steps", enabled=config.progress and is_main)
        with signals.deferred(), progress:
            while position.step < last_step:
                cpu_batch = next(batches)
                # A signal is only recorded, so the step it arrived in was finished, never cut: the
                # run stops here, at the boundary after it, on every rank at once. (A signal during
                # the last step lets the run finish: its export is quick.)
                if any_rank(signals.received is not None, context, host_group):
                    stopped_by = signals.received or "a signal to another process"
                    break
                epoch = Epoch.at(position.epoch, config)

                # -- the step
                batch = to_model_input(cpu_batch, device, channels_last)
                if epoch.phase == "init":
                    losses = init_step(generator, vgg, batch.photo, state.init_optimizer, weights, amp, state.scaler)
                else:
                    losses = gan_step(
                        generator, discriminator, vgg, batch, state.generator_optimizer, state.discriminator_optimizer, weights, amp, state.scaler
                    )
                position.step += 1
                position.batch += 1
                window.add(losses)
                progress.advance()
                epoch_done = position.batch == steps_per_epoch
                periodic = config.checkpoint_every > 0 and position.step % config.checkpoint_every == 0
                checkpoint_due = epoch_done or position.step == last_step or periodic

                # -- logging: a device sync, so also where divergence is caught, before any checkpoint
                if checkpoint_due or position.step % config.log_every == 0:
                    means = window.means(context)
                    _check_finite(means, window.first_step(position.step), position.step, state, run_dir, checkpoint_step)
                    last_metrics = outputs.log(position.step, epoch, means, window.steps_per_second())
                    progress.set_fields(epoch=epoch.label, **means)
                    window = LossWindow()

                # -- end of epoch: its sample grid and generator; the data goes on with the next epoch
                if epoch_done:
                    outputs.end_of_epoch(state.generator, epoch, {**run_metadata, **_progress_metadata(position.step, steps_per_epoch, config)})
                    position.epoch, position.batch = position.epoch + 1, 0

                # -- checkpoint
                if checkpoint_due:
                    _write_checkpoint(checkpoint_path, state, position, window, steps_per_epoch, config, context)
                    checkpoint_step = position.step

            # -- stopped by a signal: a checkpoint of this boundary (with the unlogged loss window)
            if stopped_by is not None and checkpoint_step != position.step:
                if window.steps:
                    _check_finite(window.means(context), window.first_step(position.step), position.step, state, run_dir, checkpoint_step)
                _write_checkpoint(checkpoint_path, state, position, window, steps_per_epoch, config, context)
                checkpoint_step = position.step
        if stopped_by is not None:
            wait_for_all(context, host_group)  # rank 0 has written the checkpoint before any rank exits
            raise Interrupted(
                f"training stopped by {stopped_by} at step {position.step}; its checkpoint is saved: "
                f"continue with animevid train --resume {run_dir}"
            )

        # -- export: the generator as a style (rank 0)
        init_epochs_done, epochs_done = _epochs_completed(position.step, steps_per_epoch, config)
        installed = None
        if is_main:
            installed = _export(config, state.generator, {**run_metadata, **_progress_metadata(position.step, steps_per_epoch, config)})
        return TrainResult(run_dir, installed, position.step, init_epochs_done, epochs_done, last_metrics)
    except KeyboardInterrupt:  # a second signal, or one outside the steps
        kept = (
            f"its last checkpoint (step {checkpoint_step}) is kept: continue with animevid train --resume {run_dir}"
            if checkpoint_step is not None
            else "before its first checkpoint"
        )
        raise Interrupted(f"training stopped at once at step {position.step}, {kept}") from None
    finally:
        batches.close()
        outputs.close()


# -- helpers of the run ----------------------------------------------------------------------------


def _configure_backends(config: TrainConfig, device: torch.device) -> bool:
    """Determinism and CUDA kernel choices; returns whether to use channels_last (CUDA only)."""
    if config.deterministic:
        # warn_only: some CUDA backward kernels used here (reflection pad, bilinear resize) have
        # no deterministic version; the CPU path is fully deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not config.deterministic  # fixed input sizes
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = not config.deterministic
    return config.channels_last and device.type == "cuda"


def _loader(dataset: TrainImages, sampler: PairedSampler, config: TrainConfig, device: torch.device) -> DataLoader:
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
        persistent_workers=config.num_workers > 0,
        worker_init_fn=ignore_stop_signals,
    )


def _batches_from(start: Position, loader: DataLoader, sampler: PairedSampler, total_epochs: int) -> Iterator[TrainBatch]:
    """The batches from ``start`` on: the rest of its epoch, then whole epochs."""
    for epoch in range(start.epoch, total_epochs):
        sampler.set_epoch(epoch, skip_batches=start.batch if epoch == start.epoch else 0)
        yield from _batches(loader)


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


def _new_train_state(config: TrainConfig, device: torch.device, memory_format: torch.memory_format, amp: Amp) -> TrainState:
    generator = AnimeGANGenerator().to(device, memory_format=memory_format)
    discriminator = Discriminator().to(device, memory_format=memory_format)
    betas = (config.beta1, config.beta2)
    return TrainState(
        generator=generator,
        discriminator=discriminator,
        init_optimizer=torch.optim.Adam(generator.parameters(), lr=config.init_lr, betas=betas),
        generator_optimizer=torch.optim.Adam(generator.parameters(), lr=config.lr_g, betas=betas),
        discriminator_optimizer=torch.optim.Adam(discriminator.parameters(), lr=config.lr_d, betas=betas),
        scaler=torch.amp.GradScaler(device.type, enabled=amp.dtype is torch.float16),
    )


def _resume(
    path: Path, state: TrainState, config: TrainConfig, context: DistributedContext, steps_per_epoch: int, device: torch.device
) -> tuple[Position, LossWindow]:
    checkpoint = load_checkpoint(path)
    _check_resumable(checkpoint, config, context, steps_per_epoch, path)
    position = restore_checkpoint(checkpoint, state, device)
    # A resumed run may lower the learning rates (after a divergence).
    _set_learning_rate(state.init_optimizer, config.init_lr)
    _set_learning_rate(state.generator_optimizer, config.lr_g)
    _set_learning_rate(state.discriminator_optimizer, config.lr_d)
    window_state = checkpoint.get("loss_window")  # absent from checkpoints of earlier versions
    return position, LossWindow.from_state_dict(window_state, device) if window_state else LossWindow()


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


def _set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _check_finite(
    means: dict[str, float], first_step: int, last_step: int, state: TrainState, run_dir: Path, checkpoint_step: int | None
) -> None:
    bad = [key for key, value in means.items() if not math.isfinite(value)]
    if not bad:
        return
    # With fp16 the GradScaler skips steps whose gradients overflow, so a non-finite loss alone is
    # not a divergence; weights that stopped being finite are.
    networks = (state.generator, state.discriminator)
    if state.scaler.is_enabled() and all(torch.isfinite(p).all() for network in networks for p in network.parameters()):
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


def _write_checkpoint(
    path: Path, state: TrainState, position: Position, window: LossWindow, steps_per_epoch: int, config: TrainConfig, context: DistributedContext
) -> None:
    """Every rank calls it (the loss window is averaged over the ranks); rank 0 writes."""
    loss_window = window.state_dict(context)
    if context.is_main:
        save_checkpoint(
            path, state, position, loss_window=loss_window, steps_per_epoch=steps_per_epoch, config=config, world_size=context.world_size
        )


def _v1_weights(generator: nn.Module) -> GeneratorWeights:
    """Training is the paper's v1 GAN, in TF1 semantics (what the exported style runs under)."""
    return GeneratorWeights(generator.state_dict(), "animegan-v1", "tf1")


def _export(config: TrainConfig, generator: nn.Module, training: dict[str, Any]) -> Path:
    """Write generator.safetensors and install it as style ``config.name``."""
    run_dir, name = config.run_dir, str(config.name)
    final = save_weights(
        _v1_weights(generator), run_dir / "generator.safetensors", style=name, source=f"animevid train, {run_dir}", training=training
    )
    if not config.may_install_style():  # checked before the first step: installed from elsewhere since
        raise OutputError(
            f"style {name!r} was installed from elsewhere while this run trained; its generator is {final}: "
            f"install it with animevid styles add {name} {final} --overwrite"
        )
    return add_style(name, final, overwrite=True, training=training)


def _epochs_completed(step: int, steps_per_epoch: int, config: TrainConfig) -> tuple[int, int]:
    """(initialization, adversarial) epochs completed after ``step`` steps."""
    completed = step // steps_per_epoch
    return min(completed, config.init_epochs), max(0, completed - config.init_epochs)


def _run_metadata(config: TrainConfig, num_photos: int, num_style: int, vgg_preprocessing: str, world_size: int) -> dict[str, Any]:
    """What a style file records about the run that trained it: the settings that shape the
    result (not local paths or logging options), the data, and the run's id."""
    settings = config.to_json()
    return {
        **{key: settings[key] for key in _METADATA_SETTINGS},
        "dataset": Path(str(config.anime)).name,
        "photos_count": num_photos,
        "style_images_count": num_style,
        "vgg_preprocessing": vgg_preprocessing,
        "world_size": world_size,
        "torch": torch.__version__,
    }


_METADATA_SETTINGS = (
    "epochs", "init_epochs", "batch_size", "image_size", "max_steps",
    "adv_weight", "con_weight", "gra_weight", "col_weight", "smooth_weight",
    "init_lr", "lr_g", "lr_d", "beta1", "beta2", "amp", "seed", "run_id",
)  # fmt: skip


def _progress_metadata(step: int, steps_per_epoch: int, config: TrainConfig) -> dict[str, int]:
    init_epochs_done, epochs_done = _epochs_completed(step, steps_per_epoch, config)
    return {"steps": step, "init_epochs_completed": init_epochs_done, "epochs_completed": epochs_done}


# -- what the run writes as it goes ----------------------------------------------------------------


class RunOutputs:
    """What rank 0 writes while training: config.json, metrics lines (and TensorBoard), each
    epoch's sample grid and generator. On the other ranks (``enabled=False``) it writes nothing."""

    def __init__(
        self, config: TrainConfig, val_paths: list[Path], device: torch.device, amp: Amp, *, keep_until_step: int, enabled: bool
    ) -> None:
        self.config = config
        self.run_dir = config.run_dir
        self.device = device
        self.amp = amp
        self.enabled = enabled
        self.metrics_log = self.tensorboard = self.val_photos = None
        if not enabled:
            return
        for folder in ("checkpoints", "samples", "generators"):
            (self.run_dir / folder).mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(self.run_dir / "config.json", (json.dumps(config.to_json(), indent=2) + "\n").encode())
        self.metrics_log = MetricsLog(self.run_dir / "metrics.jsonl", keep_until_step=keep_until_step)
        self.tensorboard = tensorboard_writer(self.run_dir / "tensorboard") if config.tensorboard else None
        self.val_photos = load_val_photos(val_paths, config.image_size) if config.samples else None

    def log(self, step: int, epoch: Epoch, means: dict[str, float], steps_per_s: float) -> dict[str, Any]:
        """The metrics record of ``step``, written to metrics.jsonl and TensorBoard."""
        record = {"step": step, "phase": epoch.phase, "epoch": epoch.number, **means, "steps_per_s": steps_per_s, "time": time.time()}
        if self.enabled:
            self.metrics_log.write(record)
            if self.tensorboard is not None:
                for key, value in means.items():
                    self.tensorboard.add_scalar(f"{epoch.phase}/{key}", value, step)
        return record

    def end_of_epoch(self, generator: nn.Module, epoch: Epoch, training: dict[str, Any]) -> None:
        """The epoch's sample grid, and after an adversarial epoch its generator."""
        if not self.enabled:
            return
        if self.val_photos is not None:
            write_samples(generator, self.val_photos, self.run_dir / "samples" / f"{epoch.file_stem}.png", self.device, self.amp)
        if self.config.keep_generators and epoch.phase == "gan":
            save_weights(
                _v1_weights(generator),
                self.run_dir / "generators" / f"{epoch.file_stem}.safetensors",
                style=str(self.config.name),
                source=f"animevid train, {self.run_dir}, epoch {epoch.number}",
                training=training,
            )

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


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
    write_image(path, image)


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
