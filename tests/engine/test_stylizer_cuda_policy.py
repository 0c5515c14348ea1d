"""The stylizer's process-wide and failure policies, checked without a GPU.

cuDNN autotuning is switched on for one job and restored after; the torch.compile fallback takes
only compile errors (never out of memory, never an error of the compiled code itself); on CUDA
the last, partial batch of a job has the full batch's shape (no new autotuning round).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from animevid.models import AnimeGANGenerator
from animevid.engine.stylizer import FrameBatch, Stylizer, cudnn_autotuning, is_compile_failure
from animevid.options import InferenceOptions


@pytest.fixture
def cudnn_flag():
    previous = torch.backends.cudnn.benchmark
    yield
    torch.backends.cudnn.benchmark = previous


@pytest.mark.parametrize("before", [False, True])
def test_cudnn_autotuning_is_on_during_a_cuda_job_and_restored_after(cudnn_flag, before):
    torch.backends.cudnn.benchmark = before
    with cudnn_autotuning(torch.device("cuda", 0)):  # a device object needs no GPU; the flag is plain state
        assert torch.backends.cudnn.benchmark
    assert torch.backends.cudnn.benchmark is before
    with pytest.raises(KeyboardInterrupt), cudnn_autotuning(torch.device("cuda", 0)):
        raise KeyboardInterrupt
    assert torch.backends.cudnn.benchmark is before


def test_cudnn_autotuning_leaves_the_flag_alone_off_cuda(cudnn_flag):
    torch.backends.cudnn.benchmark = False
    with cudnn_autotuning(torch.device("cpu")):
        assert not torch.backends.cudnn.benchmark


def test_an_abandoned_run_batches_restores_the_flag(cudnn_flag, monkeypatch):
    # run_batches is a generator: a caller that stops early (a failed encoder) closes it.
    torch.backends.cudnn.benchmark = False
    stylizer = Stylizer(AnimeGANGenerator(), InferenceOptions(device="cpu", engine="torch", compile=False))
    monkeypatch.setattr(stylizer, "device", torch.device("cuda", 0))  # the flag's policy only: nothing runs on it
    monkeypatch.setattr(stylizer, "_stylize", lambda uploaded, pool, stop, colour=None, after=None: uploaded.batch)
    batches = (FrameBatch(torch.zeros(1, 8, 8, 3, dtype=torch.uint8), 0, i) for i in range(3))
    run = stylizer.run_batches(batches)
    next(run)
    assert torch.backends.cudnn.benchmark
    run.close()
    assert not torch.backends.cudnn.benchmark


def _dynamo_error(inner: Exception) -> Exception:
    from torch._dynamo.exc import BackendCompilerFailed

    try:
        raise BackendCompilerFailed(lambda graph: graph, inner, None) from inner
    except BackendCompilerFailed as error:
        return error


def test_compile_failures_are_told_from_other_errors():
    from torch._inductor.exc import CppCompileError, InductorError

    assert is_compile_failure(_dynamo_error(RuntimeError("g++ not found")))
    assert is_compile_failure(InductorError(RuntimeError("triton missing"), None))
    assert is_compile_failure(CppCompileError(["g++"], "error: missing header"))
    oom = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert not is_compile_failure(oom)
    assert not is_compile_failure(_dynamo_error(oom))  # OOM while inductor autotunes: still out of memory
    assert not is_compile_failure(RuntimeError("an error of the compiled code"))
    assert not is_compile_failure(ValueError("bad input"))


@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory"), RuntimeError("illegal memory access")])
def test_the_compile_fallback_does_not_swallow_other_errors(monkeypatch, error):
    from animevid.engine import stylizer as stylizer_module

    def compiled(x):
        raise error

    monkeypatch.setattr(stylizer_module.torch, "compile", lambda module, **kwargs: compiled)
    stylizer = Stylizer(AnimeGANGenerator(), InferenceOptions(device="cpu", engine="torch", compile=True))
    frames = torch.from_numpy(np.zeros((1, 16, 16, 3), np.uint8))
    with pytest.raises(type(error)):
        stylizer.frames(frames)
    assert stylizer.compiled  # still compiled: the error was not the compiler's


def test_a_compiled_or_cuda_generator_sees_full_batches_only(monkeypatch):
    # The CPU eager generator gets the partial last batch as it is; a fixed-shape one (compiled,
    # or any on CUDA) gets the whole buffer and the stale tail is dropped.
    stylizer = Stylizer(AnimeGANGenerator(), InferenceOptions(device="cpu", engine="torch", compile=False))
    seen: list[int] = []
    monkeypatch.setattr(stylizer, "frames", lambda pixels: seen.append(pixels.shape[0]) or pixels.clone())
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(7)]
    assert [int(f[0, 0, 0]) for f in stylizer.stream(frames, batch_size=4)] == list(range(7))
    assert seen == [4, 3]
    seen.clear()
    monkeypatch.setattr(Stylizer, "fixed_batch_shape", property(lambda self: True))
    assert [int(f[0, 0, 0]) for f in stylizer.stream(frames, batch_size=4)] == list(range(7))
    assert seen == [4, 4]
