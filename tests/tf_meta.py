"""Read node attributes from an exported TF1 graph (``.meta``, a MetaGraphDef) without TensorFlow.

Test-only: the product needs only the checkpoint index; the tests use the official graph to check
the model's epsilons, strides and resize mode against what the authors actually ran.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

from animevid.weights.tf_checkpoint import proto_fields


@dataclass
class Node:
    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, object] = field(default_factory=dict)


def _packed_varints(buf: bytes) -> list[int]:
    from animevid.weights.tf_checkpoint import _read_varint

    values, pos = [], 0
    while pos < len(buf):
        value, pos = _read_varint(buf, pos)
        values.append(value)
    return values


def _attr_value(buf: bytes) -> object:
    for number, value in proto_fields(buf):
        if number == 5:  # b
            return bool(value)
        if number == 3:  # i
            return value
        if number == 2:  # s
            return value.decode("utf-8", "replace")
        if number == 1:  # list: ints (field 3, packed) are all the tests need
            ints: list[int] = []
            for list_number, list_value in proto_fields(value):
                if list_number == 3:
                    ints += _packed_varints(list_value) if isinstance(list_value, bytes) else [list_value]
            return ints
        if number == 8:  # tensor: a scalar float constant
            for tensor_number, tensor_value in proto_fields(value):
                if tensor_number == 5:
                    return struct.unpack("<f", tensor_value[:4])[0] if isinstance(tensor_value, bytes) else tensor_value
                if tensor_number == 4 and len(tensor_value) == 4:
                    return struct.unpack("<f", tensor_value)[0]
            return None
    return None


def read_graph_nodes(meta_path: Path) -> dict[str, Node]:
    meta = Path(meta_path).read_bytes()
    graph = next(value for number, value in proto_fields(meta) if number == 2)  # MetaGraphDef.graph_def
    nodes: dict[str, Node] = {}
    for number, node_bytes in proto_fields(graph):
        if number != 1:  # GraphDef.node
            continue
        node = Node("", "")
        for node_number, value in proto_fields(node_bytes):
            if node_number == 1:
                node.name = value.decode()
            elif node_number == 2:
                node.op = value.decode()
            elif node_number == 3:
                node.inputs.append(value.decode())
            elif node_number == 5:  # map<string, AttrValue> entry
                entry = dict(proto_fields(value))
                node.attrs[entry[1].decode()] = _attr_value(entry.get(2, b""))
        nodes[node.name] = node
    return nodes
