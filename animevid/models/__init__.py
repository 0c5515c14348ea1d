"""Network definitions: one module per architecture."""

from __future__ import annotations

from torch import nn

from .animegan import AnimeGANGenerator
from .animegan_v2 import AnimeGANv2Generator
from .cartoongan import CartoonGANGenerator
from .discriminator import Discriminator

# The generators weights can be loaded into, by the architecture id their metadata records.
GENERATORS: dict[str, type[nn.Module]] = {
    "animegan-v1": AnimeGANGenerator,
    "animegan-v2": AnimeGANv2Generator,
}

__all__ = ["GENERATORS", "AnimeGANGenerator", "AnimeGANv2Generator", "CartoonGANGenerator", "Discriminator"]
