"""Named styles: where their weights live, how to install them, and how to fetch official ones.

Installed styles are ``<home>/styles/<name>.safetensors``, where ``<home>`` is ``$ANIMEVID_HOME``
or the platform's user data folder (``~/.local/share/animevid`` on Linux).

The known styles (:data:`KNOWN_STYLES`) are the authors' published generators: ``hayao`` is the
paper's AnimeGAN (v1) Hayao-60; ``kon``, ``shinkai`` and ``hayao-v2`` are AnimeGANv2 generators;
``face-paint`` is bryandlee's PyTorch-trained AnimeGANv2 for portraits, which cannot be fetched
from a pinned source and is installed with ``styles add``. :func:`fetch_style` downloads an
official checkpoint from a raw URL at a fixed commit (which can only ever serve that commit's
bytes), verifies it (hayao: both files' git blob SHA-1; every TF checkpoint: each tensor's
CRC32C in the index, and names and shapes against the network), converts and installs it,
recording the SHA-256 of every downloaded file in the style's metadata.

A mirror (``--mirror URL``, ``$ANIMEVID_MIRROR``) replaces ``https://raw.githubusercontent.com/``
in every download URL, so a mirror serves ``OWNER/REPOSITORY/COMMIT/PATH`` as GitHub does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn


from .download import download, remove_abandoned_downloads
from ..errors import AnimevidError, DownloadError, StyleNotFoundError, UsageError, WeightsError
from ..fileio import animevid_home, hash_file, remove_stale_temporaries
from ..progress import ProgressReporter
from .formats import LEGACY_ARCHITECTURE, load_weights, read_metadata, save_weights

logger = logging.getLogger(__name__)

RAW_GITHUB = "https://raw.githubusercontent.com/"
_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_NETWORKS = {"animegan-v1": "v1", "animegan-v2": "v2", LEGACY_ARCHITECTURE: "v1"}  # architecture id -> network


@dataclass(frozen=True)
class RemoteFile:
    path: str  # inside the repository
    git_sha1: str | None = None  # git blob id, where known
    size: int | None = None  # bytes, where known


@dataclass(frozen=True)
class OfficialCheckpoint:
    """A TensorFlow checkpoint (index and data file) in a GitHub repository, pinned to a commit."""

    repository: str  # OWNER/NAME
    commit: str
    index: RemoteFile
    data: RemoteFile

    @property
    def files(self) -> tuple[RemoteFile, RemoteFile]:
        return (self.index, self.data)

    @property
    def name(self) -> str:
        """The checkpoint's own name, e.g. ``Paprika-54``."""
        return Path(self.index.path).name.removesuffix(".ckpt.index")

    def url(self, remote: RemoteFile, base: str = RAW_GITHUB) -> str:
        return f"{base.rstrip('/')}/{self.repository}/{self.commit}/{remote.path}"

    def describe(self) -> str:
        return f"{self.repository}@{self.commit[:7]} {self.name}"


@dataclass(frozen=True)
class KnownStyle:
    name: str
    architecture: str  # "animegan-v1" or "animegan-v2"
    artist: str
    film: str
    official: OfficialCheckpoint | None = None  # fetchable official weights
    published: str = ""  # where the weights are published when they cannot be fetched

    @property
    def network(self) -> str:
        return _NETWORKS[self.architecture]


def _v2_checkpoint(folder: str, name: str, commit: str) -> OfficialCheckpoint:
    prefix = f"checkpoint/{folder}/{name}.ckpt"
    return OfficialCheckpoint(
        "TachibanaYoshino/AnimeGANv2", commit, RemoteFile(prefix + ".index"), RemoteFile(prefix + ".data-00000-of-00001")
    )


# Commits: each is one where the search index of the authors' repositories holds the checkpoint's
# .index file (for hayao, the commit recorded with the shared reference copy of the index).
KNOWN_STYLES: dict[str, KnownStyle] = {
    style.name: style
    for style in (
        KnownStyle(
            "hayao", "animegan-v1", "Miyazaki Hayao", "The Wind Rises",
            OfficialCheckpoint(
                "TachibanaYoshino/AnimeGAN",
                "b7c16f7c58e6c609f4064b1228782419a7e7a45c",
                RemoteFile("checkpoint/generator_Hayao_weight/Hayao-60.ckpt.index", "36907806b09cb6e244576eb36e0fe3137fc64ee0", 5_565),
                RemoteFile(
                    "checkpoint/generator_Hayao_weight/Hayao-60.ckpt.data-00000-of-00001",
                    "f4e7d3e5eba35bd5fbe0e8b2ea57565f4b49b2a7",
                    15_824_384,
                ),
            ),
        ),
        KnownStyle(
            "kon", "animegan-v2", "Kon Satoshi", "Paprika",
            _v2_checkpoint("generator_Paprika_weight", "Paprika-54", "4c5ab5a3f153726e0aae05950f13fc10c9f92b6e"),
        ),
        KnownStyle(
            "shinkai", "animegan-v2", "Makoto Shinkai", "Your Name, Weathering with You",
            _v2_checkpoint("generator_Shinkai_weight", "Shinkai-53", "453725e87472c809f21a320c8f9d34c7ffb179ea"),
        ),
        KnownStyle(
            "hayao-v2", "animegan-v2", "Miyazaki Hayao", "The Wind Rises",
            _v2_checkpoint("generator_Hayao_weight", "Hayao-99", "7d480eab25a501dfbed8c21cce43e7bf0ecdff60"),
        ),
        KnownStyle(
            "face-paint", "animegan-v2", "bryandlee (portraits)", "Face Portrait v2, trained on faces",
            published="face_paint_512_v2.pt (bryandlee/animegan2-pytorch, weights/)",
        ),
    )
}  # fmt: skip


def styles_dir() -> Path:
    return animevid_home() / "styles"


def downloads_dir() -> Path:
    """Where downloads in progress live (resumable ``.part`` files), outside the styles folder."""
    return animevid_home() / "downloads"


def style_path(name: str) -> Path:
    return styles_dir() / f"{name}.safetensors"


def validate_style_name(name: str) -> str:
    if not _NAME_PATTERN.match(name):
        raise UsageError(f"invalid style name {name!r}: use lowercase letters, digits, '-' and '_'")
    return name


def remove_leftovers() -> None:
    """Delete what killed processes left in the styles and downloads folders (only stale files of ours)."""
    remove_stale_temporaries(styles_dir())
    if styles_dir().is_dir():
        for path in styles_dir().glob(".fetch-*"):  # download folders of versions before downloads_dir
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
    remove_abandoned_downloads(downloads_dir())


# -- listing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StyleInfo:
    """One row of ``animevid styles``."""

    name: str
    network: str  # "v1", "v2" ("" when unknown)
    artist: str  # "" for styles of your own
    film: str
    source: str  # where the installed weights came from, or how to get them
    installed: bool
    path: Path | None  # the weights file, when installed
    semantics: str = ""  # "tf1" or "pytorch", when installed


def installed_styles() -> list[str]:
    """Names of the installed styles, sorted."""
    folder = styles_dir()
    if not folder.is_dir():
        return []
    names = (path.name.removesuffix(".safetensors") for path in folder.glob("*.safetensors"))
    # Dot-names (temporaries, hidden files) fail the pattern, whatever their suffix.
    return sorted(name for name in names if _NAME_PATTERN.match(name) and style_path(name).is_file())


def list_styles() -> list[StyleInfo]:
    """Known styles (installed or not) and every installed style, sorted by name."""
    remove_leftovers()
    installed = installed_styles()
    return [_style_info(name, name in installed) for name in sorted(set(KNOWN_STYLES) | set(installed))]


def _style_info(name: str, installed: bool) -> StyleInfo:
    known = KNOWN_STYLES.get(name)
    artist, film = (known.artist, known.film) if known else ("", "")
    if not installed:
        network = known.network if known else ""
        return StyleInfo(name, network, artist, film, _how_to_install(known), False, None)
    path = style_path(name)
    try:
        metadata = read_metadata(path)
    except WeightsError:
        return StyleInfo(name, "", artist, film, "unreadable file", True, path)
    network = _NETWORKS.get(metadata.get("architecture", "animegan-v1"), metadata.get("architecture", ""))
    semantics = metadata.get("semantics", "tf1")
    return StyleInfo(name, network, artist, film, metadata.get("source", ""), True, path, semantics)


def _how_to_install(known: KnownStyle | None) -> str:
    if known is None:
        return ""
    if known.official is not None:
        return f"{known.official.describe()} (fetched on first use)"
    return f"{known.published}: animevid styles add {known.name} FILE"


# -- installing --------------------------------------------------------------------------------------


def add_style(
    name: str,
    source: str | os.PathLike,
    *,
    overwrite: bool = False,
    semantics: str | None = None,
    training: dict | None = None,
) -> Path:
    """Install weights from ``source`` (any format :func:`animevid.weights.formats.load_weights` reads) as style ``name``.

    ``semantics`` overrides how the weights are run (``tf1`` or ``pytorch``); by default the
    format tells (see :func:`animevid.weights.formats.load_weights`). It is recorded with the style.
    """
    validate_style_name(name)
    destination = style_path(name)
    if destination.exists() and not overwrite:
        raise UsageError(f"style {name!r} is already installed at {destination} (use --overwrite to replace it)")
    weights = load_weights(source, semantics=semantics)
    destination.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers()
    return save_weights(weights, destination, style=name, source=str(source), training=training)


def remove_style(name: str) -> Path:
    path = style_path(validate_style_name(name))
    if not path.is_file():
        raise StyleNotFoundError(f"style {name!r} is not installed")
    path.unlink()
    return path


def git_blob_sha1(path: Path) -> str:
    """Git's object id of a file's content: sha1(b"blob <size>\\0" + content)."""
    return hash_file(path, hashlib.sha1(f"blob {path.stat().st_size}\0".encode()))


# -- fetching ----------------------------------------------------------------------------------------


def mirror_base(mirror: str | None = None) -> str:
    """The base URL that downloads use: ``mirror``, else ``$ANIMEVID_MIRROR``, else raw.githubusercontent.com."""
    return (mirror or os.environ.get("ANIMEVID_MIRROR") or RAW_GITHUB).rstrip("/") + "/"


def fetch_style(
    name: str,
    *,
    mirror: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
    on_bytes: Callable[[int], None] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download a style's official weights, verify them, convert and install them.

    ``mirror`` replaces ``https://raw.githubusercontent.com/`` (see the module's docstring).
    An interrupted download resumes on the next call; files that fail verification are deleted
    and nothing is installed. ``progress`` shows a progress bar (on stderr); ``on_bytes`` is
    called with the size of every chunk received.
    """
    known = KNOWN_STYLES.get(validate_style_name(name))
    if known is None or known.official is None:
        raise StyleNotFoundError(f"style {name!r} has no official weights to fetch; {how_to_get(name)}")
    destination = style_path(name)
    if destination.exists() and not overwrite:
        return destination
    official, base = known.official, mirror_base(mirror)
    styles_dir().mkdir(parents=True, exist_ok=True)
    remove_leftovers()
    workdir = downloads_dir() / f"{name}-{official.commit[:12]}"
    total = sum(remote.size for remote in official.files) if all(r.size for r in official.files) else None
    logger.info("fetching style %r: %s from %s", name, official.describe(), base)
    with ProgressReporter(f"fetch {name}", total=total, unit="bytes", interval=2.0, enabled=progress) as bar:
        advance = _both(bar.advance, on_bytes)
        local = [_fetch_file(official, remote, base, workdir, advance, timeout) for remote in official.files]
    installed = _install(known, base, local, destination)
    shutil.rmtree(workdir, ignore_errors=True)
    return installed


def _both(first: Callable[[int], None], second: Callable[[int], None] | None) -> Callable[[int], None]:
    if second is None:
        return first
    return lambda count: (first(count), second(count))


def _fetch_file(
    official: OfficialCheckpoint, remote: RemoteFile, base: str, workdir: Path, on_bytes: Callable[[int], None], timeout: float
) -> Path:
    """One file of a checkpoint, downloaded (or resumed) into ``workdir`` and checked by git blob id."""
    local = workdir / Path(remote.path).name
    if not local.is_file():  # already complete when an earlier fetch stopped after downloading it
        download(official.url(remote, base), local, expected_size=remote.size, on_bytes=on_bytes, timeout=timeout)
    if remote.git_sha1 is not None and git_blob_sha1(local) != remote.git_sha1:
        shutil.rmtree(workdir, ignore_errors=True)  # a bad download is not resumed
        raise DownloadError(f"{local.name}: checksum mismatch (corrupted, or not the official file); nothing was installed")
    return local


def _install(known: KnownStyle, base: str, files: list[Path], destination: Path) -> Path:
    """Convert a downloaded checkpoint (its files in ``files``, index first) into an installed style."""
    official = known.official
    try:
        weights = load_weights(files[0])
        if weights.architecture != known.architecture:
            raise WeightsError(f"it holds an {weights.architecture} generator, not {known.architecture}")
    except AnimevidError as exc:
        shutil.rmtree(files[0].parent, ignore_errors=True)  # a bad download is not resumed
        raise DownloadError(f"{official.describe()} from {base}: {exc}; nothing was installed") from None
    extra = {
        "sha256": json.dumps({path.name: hash_file(path) for path in files}, sort_keys=True),
        "official": f"{official.repository}@{official.commit}",
    }
    source = official.url(official.index, base).removesuffix(".index")
    return save_weights(weights, destination, style=known.name, source=source, extra=extra)


def how_to_get(name: str) -> str:
    known = KNOWN_STYLES.get(name)
    hints = []
    if known is not None and known.official is not None:
        hints.append(f"fetch the official weights with 'animevid styles fetch {name}'")
    if known is not None and known.published:
        hints.append(f"get {known.published}")
    hints.append(f"install weights you have with 'animevid styles add {name} FILE'")
    if known is None or known.architecture == "animegan-v1":  # training is the paper's v1 GAN
        hints.append(f"or train it with 'animevid train --name {name} ...'")
    return ", ".join(hints)


def is_fetchable(name: str) -> bool:
    known = KNOWN_STYLES.get(name)
    return known is not None and known.official is not None


def check_available(names: Iterable[str]) -> None:
    """Raise :class:`StyleNotFoundError` naming the first style that is neither installed nor fetchable."""
    for name in names:
        validate_style_name(name)
        if not style_path(name).is_file() and not is_fetchable(name):
            _raise_not_installed(name)


def _raise_not_installed(name: str) -> NoReturn:
    what = "known but not installed" if name in KNOWN_STYLES else "not installed"
    raise StyleNotFoundError(f"style {name!r} is {what}: {how_to_get(name)}")


def resolve_style(name: str, *, auto_fetch: bool = True, mirror: str | None = None, progress: bool = False) -> Path:
    """The weights file of style ``name``, fetching official weights on first use when they exist."""
    validate_style_name(name)
    path = style_path(name)
    if path.is_file():
        return path
    if auto_fetch and is_fetchable(name):
        return fetch_style(name, mirror=mirror, progress=progress)
    _raise_not_installed(name)


def weights_source(
    style: str | None, weights: str | os.PathLike | None, *, mirror: str | None = None, progress: bool = False
) -> Path:
    """The weights file meant by exactly one of a style name (resolved, fetched on first use) or a path."""
    if (style is None) == (weights is None):
        raise UsageError("give exactly one of --style NAME or --weights FILE")
    return Path(weights) if weights is not None else resolve_style(style, mirror=mirror, progress=progress)
