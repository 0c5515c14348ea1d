"""Test helpers that write TensorFlow checkpoint files (index table + data) from numpy arrays.

An independent, minimal writer of the same on-disk format the reader parses, so the reader is
tested against bytes it did not produce itself, and synthetic data files can be laid out at the
offsets of the official index. Checksums are real: every table block and every tensor carries its
masked CRC32C, as TensorFlow writes them (the mask is checked against the official index).
"""

from __future__ import annotations

import struct
from pathlib import Path

import google_crc32c
import numpy as np

_DTYPE_CODES = {np.dtype("<f4"): 1, np.dtype("<f8"): 2, np.dtype("<i4"): 3, np.dtype("<i8"): 9}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, wire_type: int, payload: bytes | int) -> bytes:
    key = _varint(number << 3 | wire_type)
    if wire_type == 0:
        return key + _varint(payload)
    if wire_type == 5:
        return key + struct.pack("<I", payload)
    return key + _varint(len(payload)) + payload


def mask_crc(crc: int) -> int:
    """LevelDB's ``crc32c::Mask``: rotate right by 15 bits, add 0xa282ead8 (mod 2^32)."""
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    return (rotated + 0xA282EAD8) & 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    rotated = (masked - 0xA282EAD8) & 0xFFFFFFFF
    return ((rotated >> 17) | (rotated << 15)) & 0xFFFFFFFF


def bundle_entry(dtype_code: int, shape: tuple[int, ...], offset: int, data: bytes) -> bytes:
    dims = b"".join(_field(2, 2, _field(1, 0, d)) for d in shape)
    entry = _field(1, 0, dtype_code) + _field(2, 2, dims)
    if offset:
        entry += _field(4, 0, offset)
    return entry + _field(5, 0, len(data)) + _field(6, 5, mask_crc(google_crc32c.value(data)))


def _block_trailer(block: bytes) -> bytes:
    """Compression type 0 (none), then the masked CRC32C of the block and that type byte."""
    return b"\0" + struct.pack("<I", mask_crc(google_crc32c.value(block + b"\0")))


def _block(entries: list[tuple[bytes, bytes]], restart_interval: int = 4) -> bytes:
    out, restarts, previous = bytearray(), [], b""
    for i, (key, value) in enumerate(entries):
        if i % restart_interval == 0:
            restarts.append(len(out))
            shared = 0
        else:
            shared = 0
            while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
                shared += 1
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        previous = key
    for restart in restarts or [0]:
        out += struct.pack("<I", restart)
    out += struct.pack("<I", len(restarts or [0]))
    return bytes(out)


def write_index(path: Path, entries: dict[str, bytes], block_entries: int = 16) -> None:
    """Write an SSTable mapping names to serialized BundleEntryProtos (several data blocks)."""
    items = [(b"", _field(1, 0, 1))] + sorted((k.encode(), v) for k, v in entries.items())
    table, index_entries = bytearray(), []
    for start in range(0, len(items), block_entries):
        chunk = items[start : start + block_entries]
        block = _block(chunk)
        handle = _varint(len(table)) + _varint(len(block))
        table += block + _block_trailer(block)
        index_entries.append((chunk[-1][0], handle))
    meta_block = _block([])
    meta_handle = _varint(len(table)) + _varint(len(meta_block))
    table += meta_block + _block_trailer(meta_block)
    index_block = _block(index_entries, restart_interval=1)
    index_handle = _varint(len(table)) + _varint(len(index_block))
    table += index_block + _block_trailer(index_block)
    footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    path.write_bytes(bytes(table) + footer)


def write_checkpoint(prefix: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write ``prefix.index`` and ``prefix.data-00000-of-00001`` holding ``tensors``."""
    data, entries = bytearray(), {}
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        raw = array.tobytes()
        entries[name] = bundle_entry(_DTYPE_CODES[array.dtype], array.shape, len(data), raw)
        data += raw
    write_index(Path(f"{prefix}.index"), entries)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))


def force_crc32c(raw: bytearray, crc: int) -> None:
    """Flip low mantissa bits of the last float32 values in ``raw`` so that its CRC32C becomes ``crc``.

    CRC32C is affine over GF(2): flipping a set of bits changes the CRC by the XOR of what each flip
    alone changes, and that depends only on the bit's distance from the end. So the effect of each
    candidate bit (the lowest 8 of each of the last 16 values: relative changes below 2^-15) is
    computed on a zero tail, and Gaussian elimination picks the flips that reach ``crc``.
    """
    tail = min(len(raw), 64)
    zero_tail = google_crc32c.value(bytes(tail))
    basis: list[tuple[int, int]] = []  # (CRC change, bitmask of the candidate flips making it), distinct top bits
    candidates = [(4 * value, bit) for value in range(tail // 4) for bit in range(8)]
    for index, (byte, bit) in enumerate(candidates):
        flipped = bytearray(tail)
        flipped[byte] = 1 << bit
        change, flips = google_crc32c.value(bytes(flipped)) ^ zero_tail, 1 << index
        for top_change, top_flips in basis:
            if change ^ top_change < change:
                change, flips = change ^ top_change, flips ^ top_flips
        if change:
            basis = sorted([*basis, (change, flips)], reverse=True)
    needed, flips = google_crc32c.value(bytes(raw)) ^ crc, 0
    for top_change, top_flips in basis:
        if needed ^ top_change < needed:
            needed, flips = needed ^ top_change, flips ^ top_flips
    if needed:
        raise ValueError("these candidate bits cannot reach that CRC")
    for index, (byte, bit) in enumerate(candidates):
        if flips >> index & 1:
            raw[len(raw) - tail + byte] ^= 1 << bit


def synthetic_data_for_index(index_path: Path, data_path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Fill a data file with random float32 values at the offsets an existing index lists.

    Each tensor is nudged (:func:`force_crc32c`) to the CRC32C that the index records, so the
    official index checks out against the synthetic data, as it does against the real one.
    """
    from animevid.weights.tf_checkpoint import read_index

    entries = read_index(index_path)
    rng = np.random.default_rng(seed)
    end = max(e.offset + e.size for e in entries.values())
    buffer = bytearray(end)
    tensors = {}
    for name, entry in entries.items():
        array = rng.standard_normal(entry.shape).astype("<f4") * 0.05
        if name.endswith("gamma"):
            array += 1.0
        raw = bytearray(array.tobytes())
        force_crc32c(raw, unmask_crc(entry.crc32c))
        buffer[entry.offset : entry.offset + entry.size] = raw
        tensors[name] = np.frombuffer(bytes(raw), dtype="<f4").reshape(entry.shape)
    data_path.write_bytes(bytes(buffer))
    return tensors
