"""Running a generator: the :class:`~.stylizer.Stylizer` on a device, and what it needs.

* :mod:`.stylizer` — device, precision, batching and upload/download overlap, for any caller;
* :mod:`.openvino` — the CPU engine (the generator exported to ONNX, converted, cached, compiled);
* :mod:`.openvino_bands` — the same engine band by band, for images too large to run whole;
* :mod:`.onnx_export` — the generator as an ONNX model;
* :mod:`.memory` — whether a frame fits whole, band by band, or not at all;
* :mod:`.resources` — the CPUs and memory this process may use;
* :mod:`.tuning` — every CUDA default in one place.

The engine knows frames as tensors and arrays, never files or containers: it imports nothing
from :mod:`animevid.video` or :mod:`animevid.jobs`.
"""
