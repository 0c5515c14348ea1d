import fcntl
import os
import time

import pytest

from animevid.weights.download import ABANDONED_AFTER_SECONDS, download, partial_path, remove_abandoned_downloads
from animevid.errors import DownloadError
from tests.http_server import serve

PAYLOAD = bytes(range(256)) * 1000  # 256,000 bytes, every offset distinguishable modulo 256


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "server"
    root.mkdir()
    (root / "weights.bin").write_bytes(PAYLOAD)
    return root


def test_download_writes_the_file_and_reports_every_byte(served, tmp_path):
    received = []
    with serve(served) as (url, log):
        path = download(url + "weights.bin", tmp_path / "out" / "weights.bin", on_bytes=received.append)
    assert path.read_bytes() == PAYLOAD and sum(received) == len(PAYLOAD)
    assert log.requests == [("/weights.bin", None)]
    assert sorted(p.name for p in path.parent.iterdir()) == ["weights.bin"]


def test_an_interrupted_download_resumes_where_it_stopped(served, tmp_path):
    destination = tmp_path / "weights.bin"
    partial_path(destination).write_bytes(PAYLOAD[:100_000])  # what a killed download left
    received = []
    with serve(served) as (url, log):
        download(url + "weights.bin", destination, on_bytes=received.append)
    assert log.requests == [("/weights.bin", "bytes=100000-")]
    assert destination.read_bytes() == PAYLOAD
    assert sum(received) == len(PAYLOAD)  # the bytes on disk count as progress too
    assert not partial_path(destination).exists()


def test_a_server_without_ranges_sends_everything_again(served, tmp_path):
    destination = tmp_path / "weights.bin"
    partial_path(destination).write_bytes(b"x" * 5000)  # must not end up in front of the file
    with serve(served, ranges=False) as (url, log):
        download(url + "weights.bin", destination)
    assert destination.read_bytes() == PAYLOAD


def test_a_dropped_connection_keeps_the_part_and_the_next_call_completes_it(served, tmp_path):
    destination = tmp_path / "weights.bin"
    with serve(served) as (url, log):
        log.cut_after["/weights.bin"] = 70_000
        with pytest.raises(DownloadError, match="weights.bin") as error:
            download(url + "weights.bin", destination, timeout=10)
        assert "\n" not in str(error.value)
        assert not destination.exists() and partial_path(destination).read_bytes() == PAYLOAD[:70_000]
        download(url + "weights.bin", destination, timeout=10)
    assert log.requests[-1] == ("/weights.bin", "bytes=70000-")
    assert destination.read_bytes() == PAYLOAD


def test_a_file_of_the_wrong_size_is_refused_and_deleted(served, tmp_path):
    destination = tmp_path / "weights.bin"
    with serve(served) as (url, _), pytest.raises(DownloadError, match=f"got {len(PAYLOAD)} bytes, expected 1234"):
        download(url + "weights.bin", destination, expected_size=1234)
    assert list(tmp_path.iterdir()) == [served]


def test_http_errors_are_one_line_and_leave_nothing(served, tmp_path):
    with serve(served) as (url, _), pytest.raises(DownloadError, match="HTTP 404"):
        download(url + "missing.bin", tmp_path / "missing.bin")
    assert list(tmp_path.iterdir()) == [served]


def test_unreachable_servers_are_reported():
    with pytest.raises(DownloadError, match="failed"):
        download("http://127.0.0.1:9/x", os.devnull + "-never", timeout=5)


def test_a_second_process_on_the_same_file_is_refused(served, tmp_path):
    destination = tmp_path / "weights.bin"
    with partial_path(destination).open("ab") as other:  # another downloader holds the lock
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with serve(served) as (url, log), pytest.raises(DownloadError, match="another process is downloading weights.bin"):
            download(url + "weights.bin", destination)
    assert log.requests == [] and not destination.exists()


def test_only_abandoned_downloads_are_removed(tmp_path):
    fresh = tmp_path / "kon-4c5ab5a3f153" / "Paprika-54.ckpt.index.part"
    old_partial = tmp_path / "hayao-b7c16f7c58e6" / "Hayao-60.ckpt.index.part"
    old_complete = tmp_path / "hayao-b7c16f7c58e6" / "Hayao-60.ckpt.index"
    for path in (fresh, old_partial, old_complete):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"1234")
    a_while_ago = time.time() - ABANDONED_AFTER_SECONDS - 60
    for path in (old_partial, old_complete):
        os.utime(path, (a_while_ago, a_while_ago))
    assert remove_abandoned_downloads(tmp_path) == [old_complete, old_partial]
    assert fresh.exists() and not old_partial.parent.exists()  # its empty folder went too
