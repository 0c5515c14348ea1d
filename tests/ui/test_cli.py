"""``animevid ui`` on the command line: options checked, and a one-line error when Gradio is missing."""

from __future__ import annotations

import sys

from tests.clitools import assert_one_line_error, run_cli
from tests.ui.conftest import UI_ENVIRONMENT


def test_without_gradio_the_error_names_the_install_command(monkeypatch):
    for name in UI_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio raises ImportError
    assert_one_line_error(run_cli("ui", "--port", "1"), "pip install 'animevid[ui]'")


def test_bad_options_are_one_line_errors():
    assert_one_line_error(run_cli("ui", "--max-file-size", "lots"), "--max-file-size")
    assert_one_line_error(run_cli("ui", "--keep-hours", "0"), "--keep-hours")


def test_a_port_in_use_is_a_one_line_error(monkeypatch):
    import socket

    for name in UI_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_one_line_error(run_cli("ui", "--port", port), f"cannot serve on 127.0.0.1:{port}")
