"""``animevid export``: a generator as an ONNX model (ONNX Runtime, OpenVINO, browsers, mobile)."""

from __future__ import annotations

import click


@click.command("export")
@click.argument("destination", type=click.Path(path_type=str))
@click.option("--style", "-s", help="Style name (see 'animevid styles'); 'hayao' is fetched on first use.")
@click.option("--weights", "-w", type=click.Path(path_type=str), help="Generator weights file instead of --style.")
@click.option("--overwrite", is_flag=True, help="Replace an existing DESTINATION.")
@click.option("--mirror", envvar="ANIMEVID_MIRROR", hidden=True, help="Base URL replacing the official weights repository.")
def export(destination: str, style: str | None, weights: str | None, overwrite: bool, mirror: str | None) -> None:
    """Write the generator as an ONNX model to DESTINATION (.onnx).

    \b
    Input  'image': float32 (B, 3, H, W), RGB in [-1, 1] (pixel / 127.5 - 1), H, W >= 8.
    Output 'anime': float32 (B, 3, H, W), RGB in [-1, 1].
    Batch, height and width are dynamic.

    \b
    animevid export hayao.onnx --style hayao
    """
    from ..engine.onnx_export import export as run

    path = run(destination, style=style, weights=weights, overwrite=overwrite, mirror=mirror)
    click.echo(f"wrote {path}", err=True)
