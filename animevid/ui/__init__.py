"""``animevid ui``: a local web app (Gradio) over the library, like the command line is one over a terminal.

Install with ``pip install 'animevid[ui]'``. The page loads nothing from the internet (Gradio 6 serves
its scripts and its theme's fonts itself; tests/ui/test_browser.py checks every request), sends no
analytics and checks for no updates; uploads and results live in
``$ANIMEVID_HOME/ui`` and are deleted after ``UiOptions.keep_hours``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import AnimevidError
from ..options import UiOptions

if TYPE_CHECKING:
    import gradio as gr

INSTALL_HINT = "pip install 'animevid[ui]'"


def _quiet_environment() -> None:
    """Before Gradio is imported: no analytics or update check, uploads under our data dir."""
    from .files import uploads_dir

    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "1"
    uploads_dir().mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(uploads_dir())


def start(options: UiOptions | None = None, *, open_browser: bool = False) -> gr.Blocks:
    """Build the page and serve it on ``options.host``/``options.port`` from a thread; return at once.

    The address is ``page.local_url``; ``page.block_thread()`` waits (until Ctrl-C), ``page.close()``
    stops the server. Raises :class:`AnimevidError` when Gradio is missing.
    """
    options = options or UiOptions()
    _quiet_environment()
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise AnimevidError(f"the web app needs Gradio: {INSTALL_HINT}") from None
    from .app import build
    from .files import remove_older_than, results_dir

    remove_older_than(options.keep_hours)
    page = build(options)
    page.queue(default_concurrency_limit=1)
    try:
        # quiet: Gradio's banner suggests share=True, a public link that this local app does not offer
        page.launch(
            server_name=options.host, server_port=options.port, max_file_size=options.max_file_size, inbrowser=open_browser,
            prevent_thread_lock=True, allowed_paths=[str(results_dir())], quiet=True, show_error=True,
        )  # fmt: skip
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise AnimevidError(f"cannot serve on {options.host}:{options.port or 'a port from 7860'}: {exc}") from None
    return page
