"""Training data (§3.2): photos S_data(p), style images S_data(a), their grayscale S_data(x), and
the grayscale of their edge-smoothed versions S_data(y).

The photo set and the style set have different sizes. An epoch is defined by the photos (every
photo once, shuffled); style images are drawn from a fresh permutation of the style set, cycled
as often as needed. (The authors' code instead runs max(#photos, #style) / batch steps an epoch.)

Differences from the authors' loader, which reads the pre-sized 256² images whole: images of
any size are resized (short side to the training size) and randomly cropped; and each style
image comes with its own smoothed version, cut at the same place, where the authors' loader
drew smoothed images from an independent shuffle (the losses only use them separately, so the
expectation is the same).

Every random choice of a sample (which style image, where to crop) comes from a seed derived from
(seed, epoch, position in the epoch), not from a worker's RNG: the data stream is the same for any
number of workers and can be restarted in the middle of an epoch, which is what makes ``--resume``
continue exactly as if the run had never stopped.

Images leave the workers as uint8 (4× less to copy and pin than float) and become float in
[-1, 1] on the device, in :func:`to_model_input`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from animevid import imageio
from animevid.errors import InputError
from animevid.imageio import IMAGE_SUFFIXES, read_image

STYLE_DIR = "style"
SMOOTH_DIR = "smooth"


class TrainBatch(NamedTuple):
    """One sample or one batch. From the loader: uint8, gray with 1 channel. After
    :func:`to_model_input`: float in [-1, 1], every field (B, 3, S, S)."""

    photo: torch.Tensor  # p
    anime: torch.Tensor  # a
    anime_gray: torch.Tensor  # x
    smooth_gray: torch.Tensor  # y


# -- files ------------------------------------------------------------------------------------------


def list_images(folder: Path, what: str) -> list[Path]:
    """The images of ``folder`` (:func:`animevid.imageio.list_images`); :class:`InputError` if none or one is unreadable.

    Only the file signature is checked here (cheap for thousands of files); a file that is
    damaged past its header is reported when the loader reaches it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{what} folder {folder} does not exist")
    files = imageio.list_images(folder)
    if not files:
        raise InputError(f"{what} folder {folder} contains no images ({', '.join(IMAGE_SUFFIXES)})")
    for path in files:
        if path.stat().st_size == 0 or not cv2.haveImageReader(str(path)):
            raise InputError(f"{path} is not a readable image")
    return files


class StyleSet(NamedTuple):
    style: list[Path]  # anime frames
    smooth: list[Path]  # their edge-smoothed versions, same order


def find_style_set(dataset_dir: Path) -> StyleSet:
    """The style/ and smooth/ images of a dataset made by ``animevid extract-frames``, paired by name."""
    dataset_dir = Path(dataset_dir)
    style_dir, smooth_dir = dataset_dir / STYLE_DIR, dataset_dir / SMOOTH_DIR
    for folder in (style_dir, smooth_dir):
        if not folder.is_dir():
            raise InputError(
                f"{dataset_dir} is not a style dataset (no {folder.name}/ folder); make one with 'animevid extract-frames'"
            )
    style = list_images(style_dir, "style")
    smooth_by_name = {path.name: path for path in list_images(smooth_dir, "smooth")}
    missing = [path.name for path in style if path.name not in smooth_by_name]
    if missing:
        raise InputError(
            f"{smooth_dir} lacks the edge-smoothed version of {len(missing)} style image(s) (e.g. {missing[0]}); "
            "rebuild the dataset with 'animevid extract-frames'"
        )
    return StyleSet(style, [smooth_by_name[path.name] for path in style])


# -- geometry ---------------------------------------------------------------------------------------


def _resize_short_side(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = size / min(height, width)
    if scale == 1:
        return image
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))  # cv2 wants (W, H)
    return cv2.resize(image, new_size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def random_crop(images: list[np.ndarray], size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Resize the short side to ``size`` and cut the same random size×size window from every image."""
    height, width = images[0].shape[:2]
    images = [image if image.shape[:2] == (height, width) else cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA) for image in images]
    images = [_resize_short_side(image, size) for image in images]
    height, width = images[0].shape[:2]
    top = int(rng.integers(0, height - size + 1))
    left = int(rng.integers(0, width - size + 1))
    return [np.ascontiguousarray(image[top : top + size, left : left + size]) for image in images]


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    image = _resize_short_side(image, size)
    height, width = image.shape[:2]
    top, left = (height - size) // 2, (width - size) // 2
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def _chw(image: np.ndarray) -> torch.Tensor:
    if image.ndim == 2:
        image = image[:, :, None]
    return torch.from_numpy(image).permute(2, 0, 1).contiguous()  # (C, H, W)


# -- dataset and sampler ----------------------------------------------------------------------------


class TrainImages(Dataset):
    """Indexed by ``(photo_index, style_index, sample_seed)`` (see :class:`PairedSampler`)."""

    def __init__(self, photos: list[Path], style_set: StyleSet, image_size: int) -> None:
        self.photos = list(photos)
        self.style = list(style_set.style)
        self.smooth = list(style_set.smooth)
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.photos)

    def __getitem__(self, key: tuple[int, int, int]) -> TrainBatch:
        photo_index, style_index, sample_seed = key
        rng = np.random.default_rng(sample_seed)
        (photo,) = random_crop([read_image(self.photos[photo_index])], self.image_size, rng)
        # The smoothed image is cut at the same place as its original: a pair, as the dataset is.
        anime, smooth = random_crop(
            [read_image(self.style[style_index]), read_image(self.smooth[style_index])], self.image_size, rng
        )
        return TrainBatch(
            photo=_chw(photo),
            anime=_chw(anime),
            # BT.601 luma, as cv2.imread(..., IMREAD_GRAYSCALE) in the authors' loader
            anime_gray=_chw(cv2.cvtColor(anime, cv2.COLOR_RGB2GRAY)),
            smooth_gray=_chw(cv2.cvtColor(smooth, cv2.COLOR_RGB2GRAY)),
        )


class PairedSampler(Sampler):
    """Yields ``(photo_index, style_index, sample_seed)`` for this process's share of an epoch.

    Photos are shuffled (seeded by seed + epoch) and split between processes by torch's
    :class:`DistributedSampler`, used with one process too so that there is one code path. Only
    whole batches are yielded. ``set_epoch(epoch, skip_batches)`` picks the epoch and where in it
    to start.
    """

    def __init__(self, num_photos: int, num_style: int, *, batch_size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        if num_photos < batch_size * world_size:
            raise InputError(
                f"{num_photos} photo(s) are fewer than one batch (batch size {batch_size}"
                + (f" × {world_size} processes" if world_size > 1 else "")
                + "): add photos or lower --batch-size"
            )
        self.photo_sampler = DistributedSampler(
            range(num_photos), num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.num_style = num_style
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.batches_per_epoch = len(self.photo_sampler) // batch_size
        self.epoch = 0
        self.skip_batches = 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        if not 0 <= skip_batches <= self.batches_per_epoch:
            raise ValueError(f"skip_batches {skip_batches} outside [0, {self.batches_per_epoch}]")
        self.epoch = epoch
        self.skip_batches = skip_batches
        self.photo_sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return (self.batches_per_epoch - self.skip_batches) * self.batch_size

    def __iter__(self):
        count = self.batches_per_epoch * self.batch_size
        photo_indices = list(self.photo_sampler)[:count]
        # Style images: one stream for all processes, fresh permutation each pass over the set.
        global_count = count * self.world_size
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        passes = math.ceil(global_count / self.num_style)
        style_stream = torch.cat([torch.randperm(self.num_style, generator=generator) for _ in range(passes)]).tolist()
        for position in range(self.skip_batches * self.batch_size, count):
            global_position = position * self.world_size + self.rank  # DistributedSampler's interleaving
            sample_seed = int(np.random.SeedSequence([self.seed, self.epoch, global_position]).generate_state(1)[0])
            yield photo_indices[position], style_stream[global_position], sample_seed


# -- device side ------------------------------------------------------------------------------------


def _to_unit_range(images: torch.Tensor, device: torch.device, memory_format: torch.memory_format) -> torch.Tensor:
    images = images.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)  # gray replicated to 3 channels, (B, 3, H, W)
    return images.contiguous(memory_format=memory_format)


def to_model_input(batch: TrainBatch, device: torch.device, channels_last: bool = False) -> TrainBatch:
    """uint8 batch from the loader → float (B, 3, S, S) in [-1, 1] on ``device``."""
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    return TrainBatch(*(_to_unit_range(field, device, memory_format) for field in batch))


def load_val_photos(paths: list[Path], image_size: int) -> torch.Tensor:
    """Center crops of the validation photos, float (N, 3, S, S) in [-1, 1] on the CPU."""
    crops = [_chw(center_crop(read_image(path), image_size)) for path in paths]
    return torch.stack(crops).float() / 127.5 - 1.0
