"""``animevid train``: train a style from photos and a style dataset (paper §3.2–3.3).

Every option is a field of :class:`~animevid.train.config.TrainConfig` and takes its default from
there (shown by ``--help``): a default exists in one place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from animevid.train.config import AMP_MODES, TrainConfig  # torch-free: the CLI starts fast

_PATH = click.Path(path_type=Path)
_DEFAULTS = {field.name: field.default for field in dataclasses.fields(TrainConfig)}


def _setting(flags: str, help: str, **options: Any) -> Callable:
    """A click option for the TrainConfig field that ``flags`` names, with the field's default."""
    name = flags.split("/")[0].removeprefix("--").replace("-", "_")
    default = _DEFAULTS[name]
    options.setdefault("show_default", default is not None and default is not False)
    return click.option(flags, default=default, help=help, **options)


@click.command()
@_setting("--photos", type=_PATH, help="Folder of real photos (S_data(p)).")
@_setting("--anime", type=_PATH, help="Style dataset folder made by 'animevid extract-frames' (style/, smooth/).")
@_setting("--vgg", type=_PATH, help="VGG19 weights: torchvision's vgg19 .pth state dict, or the authors' vgg19.npy.")
@_setting("--name", type=str, help="Install the trained generator as this style.")
@_setting("--out", type=_PATH, show_default="runs/NAME", help="Run folder (checkpoints, samples, metrics).")
@_setting("--resume", type=_PATH, help="Continue the run in this folder from its last checkpoint.")
@_setting("--val-photos", type=_PATH, show_default="the first training photos", help="Photos for the per-epoch sample grid.")
@_setting("--epochs", help="Adversarial epochs (after the initialization).")
@_setting("--init-epochs", help="Initialization epochs: G alone, content loss.")
@_setting("--batch-size", help="Batch size per process.")
@_setting("--image-size", help="Training crop size (multiple of 8).")
@_setting("--max-steps", type=int, help="Stop after this many steps in all (checkpoint and export as usual).")
@_setting("--adv-weight", help="ω_adv (G's and D's adversarial losses).")
@_setting("--con-weight", help="ω_con (content loss).")
@_setting("--gra-weight", help="ω_gra (grayscale style loss).")
@_setting("--col-weight", help="ω_col (color reconstruction loss).")
@_setting("--smooth-weight", help="D's weight for edge-smoothed images.")
@_setting("--init-lr", help="Learning rate of the initialization.")
@_setting("--lr-g", help="Generator learning rate.")
@_setting("--lr-d", help="Discriminator learning rate.")
@_setting("--beta1", help="Adam β1.")
@_setting("--beta2", help="Adam β2.")
@_setting("--device", help="auto, cpu, cuda or cuda:N (torchrun: this process's GPU).")
@_setting("--amp", type=click.Choice(AMP_MODES), help="Mixed precision (auto: bf16/fp16 on CUDA, off on the CPU).")
@_setting("--channels-last/--no-channels-last", help="channels_last memory format on CUDA.")
@_setting("--num-workers", help="Data loading processes.")
@_setting("--seed", help="Seed of the weights' initialization and of the data order.")
@_setting("--deterministic", is_flag=True, help="Deterministic algorithms only (slower; for exact reproduction).")
@_setting("--checkpoint-every", help="Steps between checkpoints (also at every epoch end; 0: epoch ends only).")
@_setting("--log-every", help="Steps between metric lines.")
@_setting("--samples", help="Validation photos in each epoch's sample grid (0: none).")
@_setting("--keep-generators/--no-keep-generators", help="Keep each adversarial epoch's generator (16 MB each).")
@_setting("--overwrite", is_flag=True, help="Replace an installed style of the same name that this run did not install.")
@_setting("--progress/--no-progress", help="Show a progress bar.")
@_setting("--tensorboard/--no-tensorboard", help="Also log to TensorBoard when it is installed.")
@click.pass_context
def train(ctx: click.Context, **options: Any) -> None:
    """Train an AnimeGAN style from unpaired photos and a style dataset, and install it.

    The defaults are the paper's: initialization epochs (G alone, content loss), then epochs
    alternating D and G steps with Adam. Ctrl-C or SIGTERM stops at the next step with a
    checkpoint; --resume continues exactly, also with a larger --max-steps after the run ended.
    Multi-GPU: run it under torchrun.

    This trains the paper's network and GAN (AnimeGAN, v1). The AnimeGANv2 styles (kon, shinkai,
    hayao-v2, face-paint) are the authors' published weights; they cannot be trained here.
    """
    from animevid.train.config import resume_config
    from animevid.train.loop import train as run_training

    if options["resume"] is not None:
        # Settings not given on the command line are the run's own (its config.json).
        given = {
            key: value
            for key, value in options.items()
            if key != "resume" and ctx.get_parameter_source(key) in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        }
        config = resume_config(options["resume"], **given)
    else:
        config = TrainConfig(**options)
    result = run_training(config)
    if result.style_path is not None:
        click.echo(
            f"trained {result.step} steps (epochs completed: {result.init_epochs} initialization, {result.epochs} adversarial) "
            f"in {result.run_dir}; installed style {config.name!r} at {result.style_path}"
        )
