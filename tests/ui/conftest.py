"""The web app started in the test's process on a free port, with random-weight styles in the test's ANIMEVID_HOME."""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Iterator

import pytest

from animevid.options import UiOptions
from animevid.ui import start
from tests.style_fixtures import install_random_style

# Looked up, not imported: Gradio reads its temporary folder when imported, and animevid.ui.start
# points it at the test's data dir first.
if importlib.util.find_spec("gradio") is None:
    pytest.skip("the web app's tests need Gradio: pip install -e '.[dev]'", allow_module_level=True)

# What animevid.ui.start sets in the environment; the test's monkeypatch puts them back.
UI_ENVIRONMENT = ("GRADIO_ANALYTICS_ENABLED", "HF_HUB_DISABLE_TELEMETRY", "HF_HUB_OFFLINE", "GRADIO_TEMP_DIR")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ui_styles(animevid_home) -> tuple[str, ...]:
    install_random_style("zeta", seed=1)
    install_random_style("alpha", seed=2, architecture="animegan-v2")
    return ("alpha", "zeta")


@pytest.fixture
def app_url(ui_styles, monkeypatch) -> Iterator[str]:
    for name in UI_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    page = start(UiOptions(port=free_port()))
    try:
        yield page.local_url
    finally:
        page.close()
