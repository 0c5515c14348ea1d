"""Network definitions: one module per architecture."""

from .animegan import AnimeGANGenerator
from .cartoongan import CartoonGANGenerator
from .discriminator import Discriminator

__all__ = ["AnimeGANGenerator", "CartoonGANGenerator", "Discriminator"]
