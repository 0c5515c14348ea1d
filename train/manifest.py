"""The ``manifest.jsonl`` of a style dataset: one JSON object per line, appended as the run goes.

Record types (field ``"type"``):

* ``header`` (first line): ``manifest_version``, ``tool``, ``source`` (``name``, ``size`` in bytes,
  ``path``), ``options`` (every argument that shapes the set), ``video`` (frame size, rate, codec,
  duration) and ``software`` versions.
* ``image``: one per style image, written after its two files (see :mod:`animevid.train.frames`).
* ``shot``: one per detected shot, after its images.
* ``done`` (last line, only once the run finished): totals.

Appending one flushed line per record means an interrupted run leaves every finished image
recorded; a line cut short by a crash is ignored when reading. A finished run rewrites the file
atomically in canonical order, so a resumed run ends with the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from animevid.errors import OutputError
from animevid.fileio import write_bytes_atomic


MANIFEST_NAME = "manifest.jsonl"
MANIFEST_VERSION = 1


@dataclass
class Manifest:
    """The records of a manifest file, as read back."""

    header: dict | None = None
    images: dict[str, dict] = field(default_factory=dict)  # by "file"; a later record replaces an earlier one
    shots: list[dict] = field(default_factory=list)
    done: dict | None = None
    records: list[dict] = field(default_factory=list)  # every well-formed record, in file order


def encode_record(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def read_manifest(path: Path) -> Manifest | None:
    """The manifest at ``path``; None when there is none, or the file is not a manifest of ours."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    manifest = Manifest()
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by an interruption
        if not isinstance(record, dict):
            continue
        kind = record.get("type")
        if kind == "header" and manifest.header is None and not manifest.records:
            manifest.header = record
        elif kind == "image" and isinstance(record.get("file"), str):
            manifest.images[record["file"]] = record
        elif kind == "shot":
            manifest.shots.append(record)
        elif kind == "done":
            manifest.done = record
        else:
            continue
        manifest.records.append(record)
    if manifest.header is None or manifest.header.get("tool") != "animevid extract-frames":
        return None
    return manifest


def write_manifest(path: Path, records: list[dict]) -> None:
    """Replace the manifest at ``path`` by ``records``, atomically."""
    write_bytes_atomic(path, "".join(encode_record(record) for record in records).encode("utf-8"))


class ManifestAppender:
    """Appends records to a manifest, one flushed line each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._file: IO[str] | None = path.open("a", encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"{path}: cannot be written ({exc.strerror or exc})") from None

    def append(self, record: dict) -> None:
        assert self._file is not None, "append after close"
        try:
            self._file.write(encode_record(record))
            self._file.flush()
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot be written ({exc.strerror or exc})") from None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "ManifestAppender":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
