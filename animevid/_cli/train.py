"""``animevid train``: train a style from photos and a style dataset (paper §3.2–3.3)."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

_PATH = click.Path(path_type=Path)


@click.command()
@click.option("--photos", type=_PATH, help="Folder of real photos (S_data(p)).")
@click.option("--anime", type=_PATH, help="Style dataset folder made by 'animevid extract-frames' (style/, smooth/).")
@click.option("--vgg", type=_PATH, help="VGG19 weights: torchvision's vgg19 .pth state dict, or the authors' vgg19.npy.")
@click.option("--name", help="Install the trained generator as this style.")
@click.option("--out", type=_PATH, help="Run folder (checkpoints, samples, metrics).  [default: runs/NAME]")
@click.option("--resume", type=_PATH, help="Continue the run in this folder from its last checkpoint.")
@click.option("--val-photos", type=_PATH, help="Photos for the per-epoch sample grid.  [default: the first training photos]")
@click.option("--epochs", type=int, default=100, show_default=True, help="Adversarial epochs (after the initialization).")
@click.option("--init-epochs", type=int, default=1, show_default=True, help="Initialization epochs: G alone, content loss.")
@click.option("--batch-size", type=int, default=4, show_default=True, help="Batch size per process.")
@click.option("--image-size", type=int, default=256, show_default=True, help="Training crop size (multiple of 8).")
@click.option("--max-steps", type=int, help="Stop after this many steps in all (checkpoint and export as usual).")
@click.option("--adv-weight", type=float, default=300.0, show_default=True, help="ω_adv (G's and D's adversarial losses).")
@click.option("--con-weight", type=float, default=1.5, show_default=True, help="ω_con (content loss).")
@click.option("--gra-weight", type=float, default=3.0, show_default=True, help="ω_gra (grayscale style loss).")
@click.option("--col-weight", type=float, default=10.0, show_default=True, help="ω_col (color reconstruction loss).")
@click.option("--smooth-weight", type=float, default=0.1, show_default=True, help="D's weight for edge-smoothed images.")
@click.option("--init-lr", type=float, default=1e-4, show_default=True, help="Learning rate of the initialization.")
@click.option("--lr-g", type=float, default=8e-5, show_default=True, help="Generator learning rate.")
@click.option("--lr-d", type=float, default=1.6e-4, show_default=True, help="Discriminator learning rate.")
@click.option("--beta1", type=float, default=0.5, show_default=True, help="Adam β1.")
@click.option("--beta2", type=float, default=0.999, show_default=True, help="Adam β2.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N (torchrun: this process's GPU).")
@click.option("--amp", type=click.Choice(["auto", "bf16", "fp16", "off"]), default="auto", show_default=True, help="Mixed precision (auto: bf16/fp16 on CUDA, off on the CPU).")
@click.option("--channels-last/--no-channels-last", default=True, show_default=True, help="channels_last memory format on CUDA.")
@click.option("--num-workers", type=int, default=4, show_default=True, help="Data loading processes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the weights' initialization and of the data order.")
@click.option("--deterministic", is_flag=True, help="Deterministic algorithms only (slower; for exact reproduction).")
@click.option("--checkpoint-every", type=int, default=1000, show_default=True, help="Steps between checkpoints (also at every epoch end; 0: epoch ends only).")
@click.option("--log-every", type=int, default=20, show_default=True, help="Steps between metric lines.")
@click.option("--samples", type=int, default=8, show_default=True, help="Validation photos in each epoch's sample grid (0: none).")
@click.option("--keep-generators/--no-keep-generators", default=True, show_default=True, help="Keep each epoch's generator (16 MB each).")
@click.option("--overwrite", is_flag=True, help="Replace an installed style of the same name at the end.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Show a progress bar.")
@click.option("--tensorboard/--no-tensorboard", default=True, show_default=True, help="Also log to TensorBoard when it is installed.")
@click.pass_context
def train(ctx: click.Context, **options) -> None:
    """Train an AnimeGAN style from unpaired photos and a style dataset, and install it.

    Defaults are the paper's: 1 initialization epoch (content loss, lr 1e-4), then 100 epochs
    alternating D and G steps with Adam, 256×256 crops, batch 4. Multi-GPU: run it under torchrun.

    This trains the paper's network and GAN (AnimeGAN, v1). The AnimeGANv2 styles (kon, shinkai,
    hayao-v2, face-paint) are the authors' published weights; they cannot be trained here.
    """
    from animevid.train.config import TrainConfig, resume_config
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
        click.echo(f"trained {result.step} steps ({result.epoch} epochs) in {result.run_dir}; installed style {config.name!r} at {result.style_path}")
