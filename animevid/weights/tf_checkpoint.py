"""Read TensorFlow 1.x checkpoints (``NAME.index`` + ``NAME.data-00000-of-00001``) without TensorFlow.

A TF checkpoint "bundle" is two files:

* ``NAME.index``: a LevelDB-style sorted table (SSTable). Its keys are tensor names; each value is a
  ``BundleEntryProto`` protobuf (dtype, shape, shard, offset, size, crc32c). The empty key holds a
  ``BundleHeaderProto``.
* ``NAME.data-00000-of-00001``: the raw little-endian tensor bytes, at the offsets listed in the index.

Both carry CRC32C checksums, masked as LevelDB and TensorFlow store them (:func:`masked_crc32c`):
each table block has one in its trailer, each tensor one in its entry. Both are verified, as
TensorFlow's own reader does, so a corrupted file is refused (naming the tensor) instead of
silently giving a generator that paints noise.

Only what AnimeGAN's checkpoints use is supported: one shard, uncompressed table blocks, and the
numeric dtypes below. Anything else is refused with a :class:`CheckpointError`.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import numpy as np

from ..errors import CheckpointError

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48  # two BlockHandles padded to 40 bytes, then the 8-byte magic
_BLOCK_TRAILER_SIZE = 5  # 1 byte compression type + 4 bytes masked crc32c
_CRC_MASK_DELTA = 0xA282EAD8

# TensorFlow DataType enum values -> numpy dtypes (little-endian, as TF writes them).
_TF_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    6: np.dtype("i1"),  # DT_INT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    19: np.dtype("<f2"),  # DT_HALF
}


@dataclass(frozen=True)
class TensorEntry:
    """One tensor's record in a checkpoint index."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c: int  # masked, as stored

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


# --- protobuf wire format (just enough to decode BundleEntryProto) ---------------------------------


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointError("truncated varint in checkpoint index")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise CheckpointError("malformed varint in checkpoint index")


def proto_fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """Decode one protobuf message into (field number, value) pairs, in order."""
    fields: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:  # varint
            value, pos = _read_varint(buf, pos)
        elif wire_type == 1:  # fixed64
            value, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        elif wire_type == 2:  # length-delimited
            length, pos = _read_varint(buf, pos)
            value, pos = buf[pos : pos + length], pos + length
        elif wire_type == 5:  # fixed32
            value, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire_type} in checkpoint index")
        if pos > len(buf):
            raise CheckpointError("truncated protobuf field in checkpoint index")
        fields.append((number, value))
    return fields


def _decode_entry(name: str, value: bytes) -> TensorEntry:
    dtype_code, dims, shard_id, offset, size, crc, has_slices = 0, [], 0, 0, 0, 0, False
    for number, field in proto_fields(value):
        if number == 1:
            dtype_code = field
        elif number == 2:  # TensorShapeProto: repeated Dim dim = 2 { int64 size = 1 }
            for shape_number, dim in proto_fields(field):
                if shape_number == 2:
                    dims.append(dict(proto_fields(dim)).get(1, 0))
        elif number == 3:
            shard_id = field
        elif number == 4:
            offset = field
        elif number == 5:
            size = field
        elif number == 6:  # fixed32 crc32c
            crc = field
        elif number == 7:
            has_slices = True
    if has_slices:
        raise CheckpointError(f"tensor {name!r} is stored in slices, which is not supported")
    if dtype_code not in _TF_DTYPES:
        raise CheckpointError(f"tensor {name!r} has unsupported TensorFlow dtype code {dtype_code}")
    return TensorEntry(name, _TF_DTYPES[dtype_code], tuple(int(d) for d in dims), shard_id, offset, size, crc)


def masked_crc32c(data: bytes) -> int:
    """CRC32C of ``data``, masked as LevelDB and TensorFlow store it (``crc32c::Mask``).

    The rotation keeps a CRC computed over bytes that embed CRCs from being trivially related to them.
    """
    crc = google_crc32c.value(data)
    return ((crc >> 15 | crc << 17) + _CRC_MASK_DELTA) & 0xFFFFFFFF


# --- LevelDB table ----------------------------------------------------------------------------------


def _block_handle(buf: bytes, pos: int) -> tuple[int, int, int]:
    offset, pos = _read_varint(buf, pos)
    size, pos = _read_varint(buf, pos)
    return offset, size, pos


def _read_block(table: bytes, offset: int, size: int) -> bytes:
    end = offset + size
    if end + _BLOCK_TRAILER_SIZE > len(table):
        raise CheckpointError("checkpoint index is truncated (a block runs past the end)")
    # The trailer's CRC covers the block and its compression-type byte.
    (stored_crc,) = struct.unpack_from("<I", table, end + 1)
    if masked_crc32c(table[offset : end + 1]) != stored_crc:
        raise CheckpointError(f"checkpoint index is corrupted: the block at byte {offset} fails its CRC32C check")
    compression = table[end]
    if compression != 0:
        raise CheckpointError(f"checkpoint index uses compressed blocks (type {compression}), not supported")
    return table[offset:end]


def _block_entries(block: bytes) -> list[tuple[bytes, bytes]]:
    if len(block) < 4:
        raise CheckpointError("checkpoint index has a malformed block")
    (num_restarts,) = struct.unpack_from("<I", block, len(block) - 4)
    data_end = len(block) - 4 - 4 * num_restarts
    if data_end < 0:
        raise CheckpointError("checkpoint index has a malformed block")
    entries: list[tuple[bytes, bytes]] = []
    pos, key = 0, b""
    while pos < data_end:
        shared, pos = _read_varint(block, pos)
        unshared, pos = _read_varint(block, pos)
        value_len, pos = _read_varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]  # keys are prefix-compressed
        pos += unshared
        entries.append((key, block[pos : pos + value_len]))
        pos += value_len
    return entries


def read_index(index_path: str | os.PathLike) -> dict[str, TensorEntry]:
    """Parse a checkpoint ``.index`` file into ``{tensor name: TensorEntry}`` (sorted by name)."""
    path = Path(index_path)
    try:
        table = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint index {path}: {exc.strerror or exc}") from exc
    if len(table) < _FOOTER_SIZE:
        raise CheckpointError(f"{path} is not a TensorFlow checkpoint index (too short)")
    footer = table[-_FOOTER_SIZE:]
    (magic,) = struct.unpack_from("<Q", footer, 40)
    if magic != _TABLE_MAGIC:
        raise CheckpointError(f"{path} is not a TensorFlow checkpoint index (bad magic number)")
    _, _, pos = _block_handle(footer, 0)  # metaindex block: unused by TF bundles
    index_offset, index_size, _ = _block_handle(footer, pos)

    entries: dict[str, TensorEntry] = {}
    for _, handle in _block_entries(_read_block(table, index_offset, index_size)):
        offset, size, _ = _block_handle(handle, 0)
        for key, value in _block_entries(_read_block(table, offset, size)):
            if key == b"":
                continue  # BundleHeaderProto
            name = key.decode("utf-8")
            entries[name] = _decode_entry(name, value)
    if not entries:
        raise CheckpointError(f"checkpoint index {path} lists no tensors")
    return entries


def checkpoint_paths(prefix: str | os.PathLike) -> tuple[Path, Path]:
    """Return ``(index, data)`` paths for a checkpoint prefix (``.../Hayao-60.ckpt``).

    The ``.index`` or ``.data-00000-of-00001`` file itself is also accepted in place of the prefix.
    """
    text = os.fspath(prefix)
    for suffix in (".index", ".data-00000-of-00001", ".meta"):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
            break
    return Path(text + ".index"), Path(text + ".data-00000-of-00001")


def is_checkpoint_prefix(prefix: str | os.PathLike) -> bool:
    index, data = checkpoint_paths(prefix)
    return index.is_file() and data.is_file()


def read_checkpoint(prefix: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every tensor of a single-shard checkpoint into numpy arrays (TF layouts kept as stored)."""
    index_path, data_path = checkpoint_paths(prefix)
    entries = read_index(index_path)
    shards = {entry.shard_id for entry in entries.values()}
    if shards != {0}:
        raise CheckpointError(f"checkpoint {index_path.name} has several shards {sorted(shards)}, not supported")
    try:
        data = data_path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint data {data_path}: {exc.strerror or exc}") from exc
    tensors: dict[str, np.ndarray] = {}
    for name, entry in entries.items():
        expected = entry.numel * entry.dtype.itemsize
        if entry.size != expected:
            raise CheckpointError(f"tensor {name!r}: index says {entry.size} bytes, shape {entry.shape} needs {expected}")
        if entry.offset + entry.size > len(data):
            raise CheckpointError(
                f"checkpoint data {data_path.name} is truncated: tensor {name!r} ends at byte "
                f"{entry.offset + entry.size}, file has {len(data)}"
            )
        if masked_crc32c(data[entry.offset : entry.offset + entry.size]) != entry.crc32c:
            raise CheckpointError(
                f"checkpoint data {data_path.name} is corrupted: tensor {name!r} fails its CRC32C check"
            )
        flat = np.frombuffer(data, dtype=entry.dtype, count=entry.numel, offset=entry.offset)
        tensors[name] = flat.reshape(entry.shape).copy()
    return tensors
