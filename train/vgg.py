"""The perceptual network of the content and gram losses: VGG19 up to conv4_4, before its ReLU.

The authors' losses read ``conv4_4_no_activation`` (``tools/vgg19.py``, ``ops.con_loss``), i.e. the
conv4_4 output before ReLU, and so does this module. The network is frozen and in eval mode; the
losses backpropagate through it into the generator's output, never into its weights.

Two weight files are accepted, each with the preprocessing its weights were trained with:

* torchvision's ImageNet VGG19 state dict (``vgg19-dcbb9e9d.pth``; keys ``features.N.weight``/
  ``bias``): RGB in [0, 1] normalized by the ImageNet mean and std. Max-pooling floors odd sizes,
  as torchvision's does.
* the authors' ``vgg19.npy`` (Caffe weights converted by tensorflow-vgg): a dict
  ``{layer: [weight (H, W, in, out), bias]}``; BGR input in 0–255 minus the Caffe mean
  [103.939, 116.779, 123.68]. Max-pooling is TF's "SAME" (odd sizes rounded up).

The layers are defined here (no torchvision dependency); only conv1_1 … conv4_4 are loaded.

Why ``vgg19.npy`` is not read with ``np.load(allow_pickle=True)``: that file is a numpy object
array, which numpy stores as a Python pickle, and unpickling runs whatever callables the file
names. A weights file downloaded from a mirror must not be able to run code, so the pickle is
read by :class:`_NumpyOnlyUnpickler`, which can build numpy arrays and dtypes and nothing else
(the same idea as ``torch.load(weights_only=True)``, used for the torchvision file). A file that
names anything else is refused with :class:`WeightsError`.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from animevid.errors import WeightsError

# (name, in channels, out channels, index in torchvision's vgg19().features)
CONV_LAYERS: tuple[tuple[str, int, int, int], ...] = (
    ("conv1_1", 3, 64, 0),
    ("conv1_2", 64, 64, 2),
    ("conv2_1", 64, 128, 5),
    ("conv2_2", 128, 128, 7),
    ("conv3_1", 128, 256, 10),
    ("conv3_2", 256, 256, 12),
    ("conv3_3", 256, 256, 14),
    ("conv3_4", 256, 256, 16),
    ("conv4_1", 256, 512, 19),
    ("conv4_2", 512, 512, 21),
    ("conv4_3", 512, 512, 23),
    ("conv4_4", 512, 512, 25),
)
POOL_AFTER = frozenset({"conv1_2", "conv2_2", "conv3_4"})
FEATURE_CHANNELS = 512

IMAGENET_MEAN = (0.485, 0.456, 0.406)  # RGB, of [0, 1] images
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # of 0–255 images

PREPROCESSINGS = ("torchvision", "caffe")


class VGG19Features(nn.Module):
    """RGB in [-1, 1] (B, 3, H, W) → conv4_4 before ReLU (B, 512, H/8, W/8).

    ``preprocessing`` is "torchvision" or "caffe" and must match the weights (see module doc).
    """

    def __init__(self, preprocessing: str = "torchvision") -> None:
        super().__init__()
        if preprocessing not in PREPROCESSINGS:
            raise ValueError(f"preprocessing must be one of {PREPROCESSINGS}, got {preprocessing!r}")
        self.preprocessing = preprocessing
        self.convs = nn.ModuleDict({name: nn.Conv2d(cin, cout, 3, padding=1) for name, cin, cout, _ in CONV_LAYERS})
        # Preprocessing as one per-channel affine map of the [-1, 1] input: x * scale + shift.
        if preprocessing == "torchvision":
            std = torch.tensor(IMAGENET_STD)
            scale = 0.5 / std
            shift = (0.5 - torch.tensor(IMAGENET_MEAN)) / std
        else:
            # BGR order: the channel flip happens in forward, scale/shift are per BGR channel
            scale = torch.full((3,), 127.5)
            shift = 127.5 - torch.tensor(CAFFE_MEAN_BGR)
        self.register_buffer("input_scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("input_shift", shift.view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocessing == "caffe":
            x = x.flip(1)  # RGB → BGR
        x = x * self.input_scale + self.input_shift
        # TF's "SAME" max-pool rounds odd sizes up; torchvision's rounds down.
        ceil_mode = self.preprocessing == "caffe"
        last = CONV_LAYERS[-1][0]
        for name, _, _, _ in CONV_LAYERS:
            x = self.convs[name](x)
            if name == last:
                break  # conv4_4 before its ReLU, as the authors' losses use it
            x = F.relu(x)
            if name in POOL_AFTER:
                x = F.max_pool2d(x, 2, 2, ceil_mode=ceil_mode)
        return x


def load_vgg19(path: str | Path) -> VGG19Features:
    """A frozen :class:`VGG19Features` (eval mode, no parameter gradients) from either weights file.

    The format is recognized from the file's content: numpy's ``.npy`` magic means the authors'
    Caffe-converted dict; otherwise a torch (``weights_only``) or ``.safetensors`` state dict in
    torchvision's key layout. Missing, foreign or misshapen weights raise :class:`WeightsError`.
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"VGG19 weights file {path} does not exist")
    if not path.is_file():
        raise WeightsError(f"VGG19 weights {path} is not a file")
    with path.open("rb") as handle:
        magic = handle.read(6)
    if magic == b"\x93NUMPY":
        tensors = _caffe_npy_tensors(path)
        preprocessing = "caffe"
    else:
        tensors = _torchvision_tensors(path)
        preprocessing = "torchvision"
    vgg = VGG19Features(preprocessing)
    vgg.convs.load_state_dict(tensors)
    return vgg.eval().requires_grad_(False)


# -- torchvision state dict -------------------------------------------------------------------------


def _torchvision_tensors(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise WeightsError(f"{path} is not a readable safetensors file: {exc}") from exc
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for foreign or malicious files
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise WeightsError(
                f"{path} is neither the authors' vgg19.npy nor a torch state dict (weights only): {first_line}"
            ) from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path} does not hold a VGG19 state dict")
    tensors = {}
    for name, cin, cout, index in CONV_LAYERS:
        for part, shape in (("weight", (cout, cin, 3, 3)), ("bias", (cout,))):
            key = f"features.{index}.{part}"
            if key not in state:
                raise WeightsError(
                    f"{path} is not torchvision's VGG19 state dict: {key} ({name}) is missing "
                    "(expected the plain VGG19, not VGG16 or VGG19-BN)"
                )
            tensor = state[key]
            if tuple(tensor.shape) != shape:
                raise WeightsError(f"{path}: {key} ({name}) has shape {tuple(tensor.shape)}, expected {shape}")
            tensors[f"{name}.{part}"] = tensor.to(torch.float32)
    return tensors


# -- the authors' vgg19.npy -------------------------------------------------------------------------


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays (and containers of them); refuses every other callable."""

    _RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's own array reconstructor
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # files written by numpy 1.x (and Python 2)
        ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,  # numpy 2.x
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a weights file may only hold numpy arrays") from None


def read_npy_object(path: Path) -> object:
    """The object stored in a ``.npy`` object array (e.g. a dict), unpickled numpy-only."""
    try:
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise WeightsError(f"{path}: unsupported .npy version {version[0]}.{version[1]}")
            if dtype != np.dtype(object):
                raise WeightsError(f"{path} holds a plain {dtype} array, not the authors' dict of VGG19 layers")
            # encoding latin1: the authors' file was pickled by Python 2 (its str are raw bytes)
            array = _NumpyOnlyUnpickler(handle, encoding="latin1").load()
    except WeightsError:
        raise
    except (pickle.UnpicklingError, ValueError, EOFError, OSError, TypeError, AttributeError) as exc:
        raise WeightsError(f"cannot read {path} as the authors' vgg19.npy: {exc}") from exc
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape) or array.dtype != object:
        raise WeightsError(f"{path} is not a numpy object array")
    return array.item() if array.shape == () else array


def _caffe_npy_tensors(path: Path) -> dict[str, torch.Tensor]:
    layers = read_npy_object(path)
    if not isinstance(layers, dict):
        raise WeightsError(f"{path} does not hold a dict of VGG19 layers")
    tensors = {}
    for name, cin, cout, _ in CONV_LAYERS:
        entry = layers.get(name)
        if entry is None:
            raise WeightsError(f"{path} is not the authors' vgg19.npy: layer {name} is missing")
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and all(isinstance(a, np.ndarray) for a in entry)):
            raise WeightsError(f"{path}: layer {name} is not a [weight, bias] pair of arrays")
        weight, bias = entry
        if weight.shape != (3, 3, cin, cout):
            raise WeightsError(f"{path}: {name} weight has shape {weight.shape}, expected {(3, 3, cin, cout)} (H, W, in, out)")
        if bias.shape != (cout,):
            raise WeightsError(f"{path}: {name} bias has shape {bias.shape}, expected {(cout,)}")
        # TF's HWIO → torch's OIHW
        tensors[f"{name}.weight"] = torch.from_numpy(np.ascontiguousarray(weight.transpose(3, 2, 0, 1), dtype=np.float32))
        tensors[f"{name}.bias"] = torch.from_numpy(np.asarray(bias, dtype=np.float32))
    return tensors
