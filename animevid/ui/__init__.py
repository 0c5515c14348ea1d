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


def start(options: UiOptions | None = None, *, block: bool = True, open_browser: bool = False) -> gr.Blocks:
    """Build the page and serve it on ``options.host``/``options.port``.

    ``block=False`` returns at once with the server running in a thread (tests; ``page.close()``
    stops it); its address is ``page.local_url``. Raises :class:`AnimevidError` when Gradio is missing.
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
    page.launch(
        server_name=options.host, server_port=options.port, max_file_size=options.max_file_size, inbrowser=open_browser,
        prevent_thread_lock=not block, allowed_paths=[str(results_dir())], quiet=not block,
        show_error=True,
    )  # fmt: skip
    return page
