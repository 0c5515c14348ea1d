"""Installed styles with random weights, for tests of what uses styles (preview, listing, stylize)."""

from __future__ import annotations

from pathlib import Path

from animevid.weights import styles
from animevid.weights.formats import save_weights
from tests.conftest import random_generator_weights
from tests.reference_generators import write_v2_checkpoint

# Where kon's checkpoint lies under raw.githubusercontent.com (or a mirror), written out here rather
# than read from the table the tests check.
KON_PREFIX = "TachibanaYoshino/AnimeGANv2/4c5ab5a3f153726e0aae05950f13fc10c9f92b6e/checkpoint/generator_Paprika_weight/Paprika-54.ckpt"


def install_random_style(name: str, seed: int, architecture: str = "animegan-v1", semantics: str = "tf1") -> Path:
    path = styles.style_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_weights(random_generator_weights(seed, architecture, semantics), path, style=name, source="tests")


def write_kon_mirror(root: Path, seed: int = 3) -> Path:
    """A mirror laid out like raw.githubusercontent.com with a synthetic Paprika-54 (official naming, real CRCs)."""
    prefix = root / KON_PREFIX
    prefix.parent.mkdir(parents=True)
    write_v2_checkpoint(prefix, seed=seed)
    return root
