"""The TF1 resize creates nothing on the host: no host-to-device copy (and so no sync) in a forward.

Checked on the ``meta`` device, which any machine has: a forward on meta tensors that builds a
tensor on the CPU (and copies it over, as ``tensor.to(device)`` after a CPU ``arange`` does) shows
up as an op whose output lives on the CPU. On CUDA the same code would be a blocking copy in every
Up-Conv; the GPU test in tests/test_gpu.py checks that with ``torch.cuda.set_sync_debug_mode``.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from animevid.models.resize import tf1_resize_bilinear
from animevid.weights.formats import build_generator


class HostTensorRecorder(TorchDispatchMode):
    """Records every op that returns a tensor not on ``device`` while the mode is active."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self.device = device
        self.host_ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor) and value.device != self.device:
                self.host_ops.append(f"{func} -> {value.device}")
        return out


def test_the_recorder_sees_a_host_tensor_copied_to_the_device():
    # The pattern the resize used to have: indices made on the CPU, then moved.
    with HostTensorRecorder(torch.device("meta")) as recorder:
        torch.arange(4).to("meta")
    assert recorder.host_ops


@pytest.mark.parametrize("in_size, out_size", [((5, 6), (10, 12)), ((3, 4), (7, 9)), ((64, 48), (128, 96))])
def test_resize_builds_its_indices_on_the_inputs_device(in_size, out_size):
    x = torch.empty(1, 3, *in_size, device="meta")
    with HostTensorRecorder(x.device) as recorder:
        y = tf1_resize_bilinear(x, out_size)
    assert y.shape == (1, 3, *out_size)
    assert recorder.host_ops == []


@pytest.mark.parametrize("architecture", ["animegan-v1", "animegan-v2"])
def test_a_generator_forward_creates_no_host_tensor(architecture):
    generator = build_generator(architecture, "tf1").to("meta").eval()
    x = torch.empty(2, 3, 36, 52, device="meta")  # odd quarter sizes: the Up-Convs resize by non-integer ratios
    with torch.inference_mode(), HostTensorRecorder(x.device) as recorder:
        y = generator(x)
    assert y.shape == x.shape
    assert recorder.host_ops == []
