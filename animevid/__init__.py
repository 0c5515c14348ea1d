"""animevid: turn video and photos into anime style with AnimeGAN, and train new styles from films.

    >>> import animevid
    >>> animevid.stylize("photo.jpg", "anime.png", style="hayao")

The public API is imported lazily so that ``animevid --help`` does not pay for importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "stylize": "animevid.api",
    "StylizeResult": "animevid.result",
    "Stylizer": "animevid.engine.stylizer",
    "InferenceOptions": "animevid.options",
    "VideoOptions": "animevid.options",
    "ParallelOptions": "animevid.options",
    "AnimeGANGenerator": "animevid.models",
    "AnimeGANv2Generator": "animevid.models",
    "GeneratorWeights": "animevid.weights.formats",
    "load_generator": "animevid.weights.formats",
    "load_weights": "animevid.weights.formats",
    "save_weights": "animevid.weights.formats",
    "list_styles": "animevid.weights.styles",
    "AnimevidError": "animevid.errors",
    "Deflicker": "animevid.video.temporal",
}

__all__ = [
    "__version__",
    "stylize",
    "StylizeResult",
    "Stylizer",
    "InferenceOptions",
    "VideoOptions",
    "ParallelOptions",
    "AnimeGANGenerator",
    "AnimeGANv2Generator",
    "GeneratorWeights",
    "load_generator",
    "load_weights",
    "save_weights",
    "list_styles",
    "AnimevidError",
    "Deflicker",
]

if TYPE_CHECKING:
    from .api import stylize
    from .errors import AnimevidError
    from .models import AnimeGANGenerator, AnimeGANv2Generator
    from .result import StylizeResult
    from .options import InferenceOptions, ParallelOptions, VideoOptions
    from .engine.stylizer import Stylizer
    from .weights.formats import GeneratorWeights, load_generator, load_weights, save_weights
    from .weights.styles import list_styles
    from .video.temporal import Deflicker


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'animevid' has no attribute {name!r}")
