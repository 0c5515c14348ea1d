"""Training data: folders, pairing, crops, grayscale, [-1, 1] tensors, and the epoch/resume sampler."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from animevid.errors import InputError
from tests.conftest import make_image
from tests.train_helpers import make_photos, make_style_dataset, write_rgb
from animevid.train.data import PairedSampler, TrainBatch, TrainImages, find_style_set, list_images, load_val_photos, random_crop, to_model_input
from animevid.train.loop import _batches


def test_list_images_sorted_and_ignores_other_files(tmp_path):
    make_photos(tmp_path, 3)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"")
    assert [p.name for p in list_images(tmp_path, "photos")] == ["photo_000.jpg", "photo_001.jpg", "photo_002.jpg"]


def test_empty_folder_and_unreadable_image_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="contains no images"):
        list_images(tmp_path, "photos")
    make_photos(tmp_path, 2)
    (tmp_path / "broken.png").write_bytes(b"this is no PNG")
    with pytest.raises(InputError, match=r"broken\.png is not a readable image"):
        list_images(tmp_path, "photos")


def test_style_set_pairs_style_and_smooth_by_name(tmp_path):
    make_style_dataset(tmp_path, 3)
    style_set = find_style_set(tmp_path)
    assert [p.name for p in style_set.style] == [p.name for p in style_set.smooth]
    assert all(p.parent.name == "smooth" for p in style_set.smooth)
    (style_set.smooth[1]).unlink()
    with pytest.raises(InputError, match=r"lacks the edge-smoothed version of 1 style image\(s\) \(e\.g\. frame_001\.png\)"):
        find_style_set(tmp_path)


def test_folder_without_smooth_is_not_a_dataset(tmp_path):
    make_photos(tmp_path / "style", 2)
    with pytest.raises(InputError, match="not a style dataset .*extract-frames"):
        find_style_set(tmp_path)


def test_random_crop_resizes_short_side_and_cuts_the_same_window(tmp_path):
    image = make_image(40, 80, seed=3)
    rng = np.random.default_rng(0)
    first, second = random_crop([image, image.copy()], 20, rng)
    assert first.shape == (20, 20, 3)
    np.testing.assert_array_equal(first, second)
    small = make_image(10, 12)
    (crop,) = random_crop([small], 16, np.random.default_rng(0))  # upscaled: short side 10 → 16
    assert crop.shape == (16, 16, 3)


def test_sample_fields_gray_and_pairing(tmp_path):
    make_photos(tmp_path / "photos", 2, size=(40, 48))
    dataset_dir = tmp_path / "anime"
    image = make_image(36, 44, seed=9)
    write_rgb(dataset_dir / "style" / "a.png", image)
    write_rgb(dataset_dir / "smooth" / "a.png", image)  # identical: the crops must coincide
    dataset = TrainImages(list_images(tmp_path / "photos", "photos"), find_style_set(dataset_dir), image_size=32)
    sample = dataset[(1, 0, 1234)]
    assert sample.photo.shape == sample.anime.shape == (3, 32, 32)
    assert sample.anime_gray.shape == sample.smooth_gray.shape == (1, 32, 32)
    assert all(field.dtype == torch.uint8 for field in sample)
    torch.testing.assert_close(sample.anime_gray, sample.smooth_gray)
    rgb = sample.anime.permute(1, 2, 0).numpy()
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(sample.anime_gray[0].numpy(), luma)
    # the same key gives the same sample (seeded per sample, not per worker)
    again = dataset[(1, 0, 1234)]
    assert all(torch.equal(a, b) for a, b in zip(sample, again))


def test_to_model_input_maps_to_unit_range_and_replicates_gray():
    batch = (
        torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2).expand(2, 3, 2, 2).contiguous(),
        torch.full((2, 3, 2, 2), 255, dtype=torch.uint8),
        torch.tensor([[0, 51], [102, 255]], dtype=torch.uint8).view(1, 1, 2, 2).expand(2, 1, 2, 2).contiguous(),
        torch.zeros((2, 1, 2, 2), dtype=torch.uint8),
    )
    model_input = to_model_input(TrainBatch(*batch), torch.device("cpu"))
    assert all(field.shape == (2, 3, 2, 2) and field.dtype == torch.float32 for field in model_input)
    assert model_input.photo.min() == -1 and model_input.photo.max() == 1
    gray = model_input.anime_gray
    torch.testing.assert_close(gray[:, 0], gray[:, 1])
    torch.testing.assert_close(gray[:, 0], gray[:, 2])
    torch.testing.assert_close(gray[0, 0], torch.tensor([[-1.0, 51 / 127.5 - 1], [102 / 127.5 - 1, 1.0]]))


def test_epoch_is_defined_by_the_photos():
    sampler = PairedSampler(10, 3, batch_size=2, seed=0)
    assert sampler.batches_per_epoch == 5
    sampler.set_epoch(0)
    keys = list(sampler)
    assert len(keys) == len(sampler) == 10
    assert sorted(k[0] for k in keys) == list(range(10))  # every photo once
    assert {k[1] for k in keys} == {0, 1, 2}  # the small style set cycled
    assert len({k[2] for k in keys}) == 10  # one seed per sample
    sampler.set_epoch(1)
    assert list(sampler) != keys  # reshuffled each epoch
    sampler.set_epoch(0)
    assert list(sampler) == keys  # ... deterministically


def test_more_style_images_than_photos_are_all_reached_over_epochs():
    sampler = PairedSampler(4, 10, batch_size=2, seed=0)
    seen = set()
    for epoch in range(5):
        sampler.set_epoch(epoch)
        seen |= {k[1] for k in sampler}
    assert seen == set(range(10))


def test_resume_position_skips_whole_batches():
    sampler = PairedSampler(9, 4, batch_size=2, seed=7)
    sampler.set_epoch(3)
    full = list(sampler)
    assert len(full) == 8  # the ninth photo does not fill a batch
    sampler.set_epoch(3, skip_batches=2)
    assert list(sampler) == full[4:]
    assert len(sampler) == 4


def test_processes_share_the_photos_without_overlap():
    shares = []
    for rank in range(2):
        sampler = PairedSampler(10, 3, batch_size=2, seed=0, rank=rank, world_size=2)
        sampler.set_epoch(0)
        shares.append(list(sampler))
    photos = [[k[0] for k in share] for share in shares]
    assert len(photos[0]) == len(photos[1]) == 4  # 10 photos / 2 processes = 5 each, 2 whole batches
    assert not set(photos[0]) & set(photos[1])
    assert not {k[2] for k in shares[0]} & {k[2] for k in shares[1]}


def test_too_few_photos_for_one_batch():
    with pytest.raises(InputError, match="fewer than one batch"):
        PairedSampler(3, 5, batch_size=4, seed=0)


def test_worker_count_does_not_change_the_data(tmp_path):
    make_photos(tmp_path / "photos", 4, size=(40, 56))
    make_style_dataset(tmp_path / "anime", 3, size=(48, 40))
    dataset = TrainImages(list_images(tmp_path / "photos", "photos"), find_style_set(tmp_path / "anime"), image_size=32)
    batches = {}
    for workers in (0, 2):
        sampler = PairedSampler(4, 3, batch_size=2, seed=5)
        sampler.set_epoch(1)
        batches[workers] = list(DataLoader(dataset, batch_size=2, sampler=sampler, num_workers=workers))
    assert len(batches[0]) == 2
    for first, second in zip(batches[0], batches[2]):
        assert all(torch.equal(a, b) for a, b in zip(first, second))


def test_damaged_image_found_by_a_worker_is_reported_in_one_line(tmp_path):
    photos = make_photos(tmp_path / "photos", 2)
    damaged = photos / "photo_001.jpg"
    damaged.write_bytes(damaged.read_bytes()[:40])  # a JPEG header and nothing else
    make_style_dataset(tmp_path / "anime", 1)
    dataset = TrainImages(list_images(photos, "photos"), find_style_set(tmp_path / "anime"), image_size=16)
    sampler = PairedSampler(2, 1, batch_size=2, seed=0)
    loader = DataLoader(dataset, batch_size=2, sampler=sampler, num_workers=1)
    with pytest.raises(InputError) as caught:
        list(_batches(loader))
    message = str(caught.value)
    assert "\n" not in message and "photo_001.jpg" in message, message


def test_val_photos_are_center_crops_in_unit_range(tmp_path):
    paths = [write_rgb(tmp_path / f"{i}.png", make_image(30, 50, seed=i)) for i in range(3)]
    photos = load_val_photos(paths, 24)
    assert photos.shape == (3, 3, 24, 24)
    assert photos.min() >= -1 and photos.max() <= 1
