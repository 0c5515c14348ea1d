"""``animevid ui``: the local web app."""

from __future__ import annotations

import click

from ..options import DEFAULT_UI_HOST, DEFAULT_UI_KEEP_HOURS, DEFAULT_UI_MAX_FILE_SIZE


@click.command()
@click.option("--host", default=DEFAULT_UI_HOST, show_default=True, help="Address to listen on (0.0.0.0: every network; the app has no accounts).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port [default: the first free one from 7860].")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default browser.")
@click.option("--max-file-size", default=DEFAULT_UI_MAX_FILE_SIZE, show_default=True, help="Largest upload, e.g. 500mb, 4gb.")
@click.option("--keep-hours", type=float, default=DEFAULT_UI_KEEP_HOURS, show_default=True, help="Delete uploads and results older than this.")
def ui(host: str, port: int | None, open_browser: bool, max_file_size: str, keep_hours: float) -> None:
    """Start the web app: photos, videos (with progress and cancel) and styles, in a browser.

    Local only: it serves this machine (127.0.0.1) unless --host says otherwise. Uploads and
    results are kept under the data folder ($ANIMEVID_HOME/ui). Needs: pip install 'animevid[ui]'.
    """
    from ..options import UiOptions
    from ..ui import start

    page = start(UiOptions(host=host, port=port, max_file_size=max_file_size, keep_hours=keep_hours), open_browser=open_browser)
    click.echo(f"animevid ui: {page.local_url} (Ctrl-C stops it)")
    page.block_thread()
