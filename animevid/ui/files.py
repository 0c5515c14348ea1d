"""Where the web app keeps uploads and results: folders under the data dir, old files deleted."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from pathlib import Path

from ..fileio import animevid_home


def ui_dir() -> Path:
    return animevid_home() / "ui"


def uploads_dir() -> Path:
    return ui_dir() / "uploads"


def results_dir() -> Path:
    return ui_dir() / "results"


def result_path(source: str | Path, label: str, suffix: str) -> Path:
    """A new file name in the results folder: the upload's name, what was made of it, a time and a random tag."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(source).stem)[:40] or "upload"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = results_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{stem}.{label}.{stamp}-{secrets.token_hex(3)}{suffix}"


def remove_older_than(hours: float, now: float | None = None) -> int:
    """Delete uploads and results not modified for ``hours``; return how many entries went.

    An upload folder counts as new when anything in it is (Gradio keeps each upload in a folder of its own).
    """
    limit = (time.time() if now is None else now) - hours * 3600
    removed = 0
    for folder in (uploads_dir(), results_dir()):
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            try:
                if _newest_change(entry) >= limit:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed += 1
            except OSError:
                continue  # another process got there first
    return removed


def keep(path: str | Path) -> None:
    """Mark an upload as in use now, so that cleaning never takes it from under a job."""
    now = time.time()
    for target in (Path(path), Path(path).parent):
        try:
            os.utime(target, (now, now))
        except OSError:
            pass


def _newest_change(entry: Path) -> float:
    newest = entry.lstat().st_mtime
    if entry.is_dir() and not entry.is_symlink():
        newest = max([newest, *(child.lstat().st_mtime for child in entry.iterdir())])
    return newest
