"""The app's folders under the data dir, and the cleaning of old uploads and results."""

from __future__ import annotations

import os
import time

from animevid.ui.files import keep, remove_older_than, result_path, results_dir, uploads_dir


def test_files_older_than_the_limit_go_and_newer_ones_stay(animevid_home):
    now = time.time()
    old_upload = uploads_dir() / "abc" / "clip.mp4"
    old_upload.parent.mkdir(parents=True)
    old_upload.write_bytes(b"x")
    for path in (old_upload, old_upload.parent):
        os.utime(path, (now - 3 * 3600, now - 3 * 3600))
    new_result = result_path("photo.png", "zeta", ".png")
    new_result.write_bytes(b"y")
    old_result = results_dir() / "old.png"
    old_result.write_bytes(b"z")
    os.utime(old_result, (now - 2.5 * 3600, now - 2.5 * 3600))
    assert remove_older_than(2.0, now=now) == 2
    assert not old_upload.parent.exists() and not old_result.exists() and new_result.is_file()
    assert results_dir() == animevid_home / "ui" / "results"


def test_result_names_keep_the_upload_name_readable_and_never_collide(animevid_home):
    first, second = result_path("my holiday (1).mov", "kon", ".mp4"), result_path("my holiday (1).mov", "kon", ".mp4")
    assert first != second
    assert first.name.startswith("my_holiday_1_.kon.") and first.suffix == ".mp4"


def test_an_upload_in_use_is_kept_however_old_its_folder(animevid_home):
    now = time.time()
    upload = uploads_dir() / "abc" / "clip.mp4"
    upload.parent.mkdir(parents=True)
    upload.write_bytes(b"x")
    for path in (upload, upload.parent):
        os.utime(path, (now - 48 * 3600, now - 48 * 3600))
    keep(upload)
    assert remove_older_than(24.0) == 0 and upload.is_file()
