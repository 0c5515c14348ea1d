"""Named styles: where their weights live, how to install them, and how to fetch official ones.

Installed styles are ``<home>/styles/<name>.safetensors``, where ``<home>`` is ``$ANIMEVID_HOME``
or the platform's user data folder (``~/.local/share/animevid`` on Linux).

The paper's three styles are known by name. Only ``hayao`` has public official weights (the
authors' TensorFlow checkpoint, Hayao-60); ``fetch_style`` downloads it, checks both files by their
git blob SHA-1, converts and installs it. ``shinkai`` and ``kon`` must be trained or added.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .errors import DownloadError, StyleNotFoundError, UsageError, WeightsError
from .weights import load_state_dict, read_metadata, save_weights

OFFICIAL_REPOSITORY = "https://raw.githubusercontent.com/TachibanaYoshino/AnimeGAN/master/"
_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class RemoteFile:
    path: str  # relative to the repository root
    git_sha1: str
    size: int | None = None


@dataclass(frozen=True)
class KnownStyle:
    name: str
    artist: str
    film: str
    files: tuple[RemoteFile, ...] = ()  # official TF checkpoint (index first), if public


KNOWN_STYLES: dict[str, KnownStyle] = {
    style.name: style
    for style in (
        KnownStyle(
            "hayao",
            "Miyazaki Hayao",
            "The Wind Rises",
            (
                RemoteFile(
                    "checkpoint/generator_Hayao_weight/Hayao-60.ckpt.index",
                    "36907806b09cb6e244576eb36e0fe3137fc64ee0",
                ),
                RemoteFile(
                    "checkpoint/generator_Hayao_weight/Hayao-60.ckpt.data-00000-of-00001",
                    "f4e7d3e5eba35bd5fbe0e8b2ea57565f4b49b2a7",
                    15_824_384,
                ),
            ),
        ),
        KnownStyle("shinkai", "Makoto Shinkai", "Your Name"),
        KnownStyle("kon", "Kon Satoshi", "Paprika"),
    )
}


def animevid_home() -> Path:
    """The folder holding animevid's data: ``$ANIMEVID_HOME`` or the platform's user data folder."""
    override = os.environ.get("ANIMEVID_HOME")
    return Path(override) if override else Path(platformdirs.user_data_dir("animevid", appauthor=False))


def styles_dir() -> Path:
    return animevid_home() / "styles"


def style_path(name: str) -> Path:
    return styles_dir() / f"{name}.safetensors"


def validate_style_name(name: str) -> str:
    if not _NAME_PATTERN.match(name):
        raise UsageError(f"invalid style name {name!r}: use lowercase letters, digits, '-' and '_'")
    return name


@dataclass(frozen=True)
class StyleInfo:
    name: str
    installed: bool
    path: Path | None
    description: str
    source: str


def list_styles() -> list[StyleInfo]:
    """Known styles (installed or not) and every installed style, sorted by name."""
    names = set(KNOWN_STYLES)
    if styles_dir().is_dir():
        names |= {p.stem for p in styles_dir().glob("*.safetensors")}
    infos = []
    for name in sorted(names):
        path = style_path(name)
        installed = path.is_file()
        known = KNOWN_STYLES.get(name)
        description = f"{known.artist}, {known.film}" if known else ""
        if installed:
            try:
                source = read_metadata(path).get("source", "")
            except WeightsError:
                source = "unreadable file"
        elif known and known.files:
            source = "official weights: animevid styles fetch " + name
        else:
            source = "not installed: train it or add weights"
        infos.append(StyleInfo(name, installed, path if installed else None, description, source))
    return infos


def add_style(name: str, source: str | os.PathLike, *, overwrite: bool = False, training: dict | None = None) -> Path:
    """Install weights from ``source`` (safetensors, TF checkpoint, torch state dict) as style ``name``."""
    validate_style_name(name)
    destination = style_path(name)
    if destination.exists() and not overwrite:
        raise UsageError(f"style {name!r} is already installed at {destination} (use --overwrite to replace it)")
    state = load_state_dict(source)
    destination.parent.mkdir(parents=True, exist_ok=True)
    return save_weights(state, destination, style=name, source=str(source), training=training)


def remove_style(name: str) -> Path:
    path = style_path(validate_style_name(name))
    if not path.is_file():
        raise StyleNotFoundError(f"style {name!r} is not installed")
    path.unlink()
    return path


def git_blob_sha1(path: Path) -> str:
    """Git's object id of a file's content: sha1(b"blob <size>\\0" + content)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, destination: Path, on_bytes: Callable[[int], None] | None, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, destination.open("wb") as out:
            while chunk := response.read(1 << 16):
                out.write(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise DownloadError(f"downloading {url} failed: {reason}") from exc


def fetch_style(
    name: str,
    *,
    mirror: str | None = None,
    overwrite: bool = False,
    on_bytes: Callable[[int], None] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download a style's official weights, verify them, convert and install them.

    ``mirror`` replaces the base URL of the authors' repository (a local copy, a proxy, a test
    server); the files' relative paths and checksums stay the same.
    """
    known = KNOWN_STYLES.get(name)
    if known is None or not known.files:
        raise StyleNotFoundError(f"style {name!r} has no public official weights; {how_to_get(name)}")
    destination = style_path(name)
    if destination.exists() and not overwrite:
        return destination
    base = (mirror or os.environ.get("ANIMEVID_MIRROR") or OFFICIAL_REPOSITORY).rstrip("/") + "/"
    styles_dir().mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".fetch-", dir=styles_dir()))
    try:
        for remote in known.files:
            local = workdir / Path(remote.path).name
            _download(base + remote.path, local, on_bytes, timeout)
            if remote.size is not None and local.stat().st_size != remote.size:
                raise DownloadError(
                    f"{Path(remote.path).name}: got {local.stat().st_size} bytes, expected {remote.size}"
                )
            if git_blob_sha1(local) != remote.git_sha1:
                raise DownloadError(f"{Path(remote.path).name}: checksum mismatch (corrupted or not the official file)")
        index = workdir / Path(known.files[0].path).name
        state = load_state_dict(index)
        return save_weights(state, destination, style=name, source=base + known.files[0].path.removesuffix(".index"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def how_to_get(name: str) -> str:
    known = KNOWN_STYLES.get(name)
    hints = []
    if known is not None and known.files:
        hints.append(f"fetch the official weights with 'animevid styles fetch {name}'")
    hints.append(f"install weights you have with 'animevid styles add {name} FILE'")
    hints.append(f"or train it with 'animevid train --name {name} ...'")
    return ", ".join(hints)


def resolve_style(name: str, *, auto_fetch: bool = True, mirror: str | None = None) -> Path:
    """The weights file of style ``name``, fetching official weights on first use when they exist."""
    validate_style_name(name)
    path = style_path(name)
    if path.is_file():
        return path
    known = KNOWN_STYLES.get(name)
    if auto_fetch and known is not None and known.files:
        return fetch_style(name, mirror=mirror)
    what = "known but not installed" if known else "not installed"
    raise StyleNotFoundError(f"style {name!r} is {what}: {how_to_get(name)}")


def weights_source(style: str | None, weights: str | os.PathLike | None, *, mirror: str | None = None) -> Path:
    """The weights file meant by exactly one of a style name (resolved, fetched on first use) or a path."""
    if (style is None) == (weights is None):
        raise UsageError("give exactly one of --style NAME or --weights FILE")
    return Path(weights) if weights is not None else resolve_style(style, mirror=mirror)
