"""What a stylization job did: the type every job returns (:func:`animevid.stylize` and the jobs under it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StylizeResult:
    """What a job did, for the summary line."""

    kind: str  # "image", "folder" or "video"
    count: int  # images or frames written
    seconds: float
    device: str
    dtype: str
    batch_size: int = 1
    skipped: int = 0  # folder jobs with skip_existing: outputs already there, left as they were
    engine: str = "torch"  # what ran the generator: torch or openvino
    details: tuple[str, ...] = ()  # more summary lines (several workers: one per worker)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        unit = "frames" if self.kind == "video" else "images"
        kept = f"; {self.skipped} existing outputs kept" if self.skipped else ""
        line = (
            f"{self.count} {unit} in {self.seconds:.1f} s ({self.rate:.2f} {unit}/s) "
            f"on {self.device}, {self.dtype}, batch size {self.batch_size}, {self.engine} engine{kept}"
        )
        return "\n".join([line, *self.details])
