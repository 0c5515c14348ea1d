"""Test helpers that write TensorFlow checkpoint files (index table + data) from numpy arrays.

An independent, minimal writer of the same on-disk format the reader parses, so the reader is
tested against bytes it did not produce itself, and synthetic data files can be laid out at the
offsets of the official index.
"""

from __future__ import annotations

import struct
from pathlib import Path

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


def bundle_entry(dtype_code: int, shape: tuple[int, ...], offset: int, size: int) -> bytes:
    dims = b"".join(_field(2, 2, _field(1, 0, d)) for d in shape)
    entry = _field(1, 0, dtype_code) + _field(2, 2, dims)
    if offset:
        entry += _field(4, 0, offset)
    return entry + _field(5, 0, size) + _field(6, 5, 0)


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
        table += block + b"\0\0\0\0\0"  # no compression, crc not checked by the reader
        index_entries.append((chunk[-1][0], handle))
    meta_block = _block([])
    meta_handle = _varint(len(table)) + _varint(len(meta_block))
    table += meta_block + b"\0\0\0\0\0"
    index_block = _block(index_entries, restart_interval=1)
    index_handle = _varint(len(table)) + _varint(len(index_block))
    table += index_block + b"\0\0\0\0\0"
    footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    path.write_bytes(bytes(table) + footer)


def write_checkpoint(prefix: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write ``prefix.index`` and ``prefix.data-00000-of-00001`` holding ``tensors``."""
    data, entries = bytearray(), {}
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        raw = array.tobytes()
        entries[name] = bundle_entry(_DTYPE_CODES[array.dtype], array.shape, len(data), len(raw))
        data += raw
    write_index(Path(f"{prefix}.index"), entries)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))


def synthetic_data_for_index(index_path: Path, data_path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Fill a data file with random float32 values at the offsets an existing index lists."""
    from animevid.tf_checkpoint import read_index

    entries = read_index(index_path)
    rng = np.random.default_rng(seed)
    end = max(e.offset + e.size for e in entries.values())
    buffer = bytearray(end)
    tensors = {}
    for name, entry in entries.items():
        array = rng.standard_normal(entry.shape).astype("<f4") * 0.05
        if name.endswith("gamma"):
            array += 1.0
        buffer[entry.offset : entry.offset + entry.size] = array.tobytes()
        tensors[name] = array
    data_path.write_bytes(bytes(buffer))
    return tensors
