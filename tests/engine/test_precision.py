"""``--dtype auto`` on the CPU: bf16 only where measured indistinguishable from fp32, cached per weights and CPU.

The measurements here run with torch (fp32, and bf16 autocast: bf16's rounding on any CPU) on small
calibration frames instead of OpenVINO, so that they run anywhere in seconds; fp32's forward is made
slower, as it is where bf16 is native, so that what decides is the bound and not this CPU's speed.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from animevid.engine import precision
from animevid.engine.precision import BOUND, Measurement, PrecisionChoice, choose_cpu_precision, compare, decide
from animevid.engine.stylizer import Stylizer
from animevid.options import InferenceOptions
from animevid.weights.formats import GeneratorWeights, load_generator, random_weights, save_weights

pytest.importorskip("openvino")  # the cache key is the OpenVINO conversion's, the CPU as OpenVINO sees it

BF16 = torch.bfloat16
_CALIBRATION = precision.calibration_frames  # the real one, before any test replaces it


class TorchRunner:
    """fp32 eager and bf16 autocast on a clock of their own: an fp32 frame takes 3 units, a bf16 frame 1
    (as where bf16 is native), so that what decides is the bound, not this (shared) machine's load.
    Counts the engines it builds."""

    def __init__(self) -> None:
        self.built: list[torch.dtype] = []
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def __call__(self, generator: nn.Module, dtype: torch.dtype):
        self.built.append(dtype)

        def forward(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode(), torch.autocast("cpu", dtype=BF16, enabled=dtype == BF16):
                y = generator(x).float()
            self.now += 3.0 if dtype == torch.float32 else 1.0
            return y

        return forward


@pytest.fixture
def offered(monkeypatch, tmp_path):
    """bf16 offered (as on a CPU with native bf16), one small calibration frame timed once, a cache of this test's own."""
    monkeypatch.setattr(precision, "candidates", lambda: ("bfloat16",))
    monkeypatch.setattr(precision, "calibration_frames", lambda: _CALIBRATION((32, 40), 1))
    monkeypatch.setattr(precision, "TIMED_ROUNDS", 1)
    monkeypatch.setenv("ANIMEVID_CACHE", str(tmp_path / "cache"))
    runner = TorchRunner()
    monkeypatch.setattr(precision, "openvino_runner", runner)
    monkeypatch.setattr(precision, "clock", runner.clock)
    return runner


def v2_weights_file(tmp_path, name: str, *, bias_shift: float = 0.0):
    """A v2 weights file; ``bias_shift`` adds a constant to every channel of the first inverted residual
    block's depthwise bias. The layer norm after it subtracts it again: fp32 computes nearly the same
    function. bf16 does not: the depthwise outputs sit near ``bias_shift``, where bf16's 8-bit mantissa
    steps by several units, more than their variation, before the norm sees them."""
    weights = random_weights("animegan-v2", "tf1", seed=5)
    state = dict(weights.state_dict)
    state["c.blocks.0.depthwise.bias"] = state["c.blocks.0.depthwise.bias"] + bias_shift
    return save_weights(GeneratorWeights(state, "animegan-v2", "tf1"), tmp_path / f"{name}.safetensors", style=name, source="tests")


# -- the bound and the figures, against hand-computed values -------------------------------------------


def test_compare_gives_the_max_mean_and_psnr_on_the_uint8_scale():
    reference = torch.zeros(1, 3, 2, 2)  # level 127.5 -> 128 after rounding
    output = reference.clone()
    output[0, 0, 0, 0] = 4 / 127.5  # 4 levels up: 132
    max_lsb, mean_lsb, psnr = compare(output, reference)
    assert max_lsb == 4 and mean_lsb == pytest.approx(4 / 12)
    assert psnr == pytest.approx(10 * math.log10(255**2 / (16 / 12)))


@pytest.mark.parametrize(
    ("max_lsb", "psnr", "passes"), [(8, 45.0, True), (9, 60.0, False), (2, 44.9, False), (0, math.inf, True)]
)
def test_the_bound_is_8_levels_and_45_db(max_lsb, psnr, passes):
    assert BOUND.passes(max_lsb, psnr) is passes


def test_decide_keeps_the_fastest_candidate_within_the_bound_and_fp32_otherwise():
    within = Measurement("bfloat16", 5, 0.4, 50.0, ms_per_frame=100, fp32_ms_per_frame=300)
    assert decide((within,)).dtype == BF16
    over = Measurement("bfloat16", 23, 2.3, 38.5, ms_per_frame=100, fp32_ms_per_frame=300)
    assert decide((over,)).dtype == torch.float32
    slower = Measurement("bfloat16", 1, 0.1, 60.0, ms_per_frame=400, fp32_ms_per_frame=300)
    assert decide((slower,)).dtype == torch.float32


def test_labels_say_what_was_measured():
    within = Measurement("bfloat16", 3, 0.44, 52.0, 100, 300)
    assert PrecisionChoice(BF16, "measured", (within,)).label() == "bfloat16 (measured: 0.4 LSB mean, 3 max vs fp32)"
    over = Measurement("bfloat16", 23, 2.3, 38.54, 100, 300)
    assert PrecisionChoice(torch.float32, "measured", (over,)).label() == (
        "float32 (auto: bfloat16 measured 23 LSB max, 38.5 dB vs fp32, over the bound)"
    )
    slower = Measurement("bfloat16", 1, 0.1, 60.0, 400, 300)
    assert PrecisionChoice(torch.float32, "measured", (slower,)).label() == "float32 (auto: bfloat16 measured no faster than fp32 (0.75x))"
    assert PrecisionChoice(torch.float32, "no native bf16 on this CPU").label() == "float32"


def test_calibration_frames_are_deterministic_and_varied():
    frames = _CALIBRATION((48, 64), 3)
    assert frames.shape == (3, 48, 64, 3) and frames.dtype == np.uint8
    assert np.array_equal(frames, _CALIBRATION((48, 64), 3))
    assert not np.array_equal(frames[0], frames[1])
    assert frames.min() <= 10 and frames.max() >= 245  # dark and bright extremes
    assert len(np.unique(frames[0].reshape(-1, 3), axis=0)) > 1000  # texture, not flat areas only


# -- the choice, measured ---------------------------------------------------------------------------


def test_auto_picks_bf16_when_its_difference_is_small(offered, tmp_path):
    generator = load_generator(v2_weights_file(tmp_path, "plain"))
    choice = choose_cpu_precision(generator)
    assert choice.dtype == BF16, choice.label()
    assert re.fullmatch(r"bfloat16 \(measured: \d\.\d LSB mean, \d max vs fp32\)", choice.label())


def test_auto_keeps_fp32_when_bf16_moves_the_picture(offered, tmp_path):
    generator = load_generator(v2_weights_file(tmp_path, "shifted", bias_shift=1000.0))
    choice = choose_cpu_precision(generator)
    assert choice.dtype == torch.float32
    (measured,) = choice.measurements
    assert measured.max_lsb > BOUND.max_lsb and measured.speedup > 1  # bf16 was faster: the bound refused it
    assert "over the bound" in choice.label()


def test_the_decision_is_cached_and_invalidated_by_the_weights_and_the_cpu_model(offered, tmp_path, monkeypatch):
    generator = load_generator(v2_weights_file(tmp_path, "plain"))
    first = choose_cpu_precision(generator)
    assert len(offered.built) == 2  # fp32 and bf16
    files = list((tmp_path / "cache" / "openvino").glob("*.precision-*.json"))
    assert len(files) == 1
    assert choose_cpu_precision(load_generator(v2_weights_file(tmp_path, "plain"))) == first
    assert len(offered.built) == 2  # from the cache: nothing measured
    choose_cpu_precision(load_generator(v2_weights_file(tmp_path, "shifted", bias_shift=1000.0)))
    assert len(offered.built) == 4  # other weights: measured again
    identity = precision.cpu_identity()
    monkeypatch.setattr(precision, "cpu_identity", lambda: {**identity, "cpu_model": "Another CPU"})
    choose_cpu_precision(generator)
    assert len(offered.built) == 6  # another CPU model: measured again
    assert len(list((tmp_path / "cache" / "openvino").glob("*.precision-*.json"))) == 3


def test_a_damaged_cached_decision_is_measured_again(offered, tmp_path):
    generator = load_generator(v2_weights_file(tmp_path, "plain"))
    first = choose_cpu_precision(generator)
    (path,) = (tmp_path / "cache" / "openvino").glob("*.precision-*.json")
    path.write_text("{not json")
    assert choose_cpu_precision(generator) == first and len(offered.built) == 4


def test_no_native_bf16_means_fp32_without_measuring(offered, monkeypatch, tmp_path):
    monkeypatch.setattr(precision, "candidates", lambda: ())
    choice = choose_cpu_precision(load_generator(v2_weights_file(tmp_path, "plain")))
    assert choice.dtype == torch.float32 and not offered.built
    assert choice.reason == "no native bf16 on this CPU" and choice.label() == "float32"


def test_auto_loads_the_network_only_when_there_is_something_to_measure(monkeypatch):
    monkeypatch.setattr(precision, "candidates", lambda: ())
    choice = precision.auto_precision(lambda: pytest.fail("the network was loaded with nothing to measure"))
    assert choice.dtype == torch.float32 and choice.label() == "float32"


def test_a_failed_measurement_runs_fp32_and_says_so(offered, monkeypatch, tmp_path, caplog):
    def broken(generator):
        raise RuntimeError("compilation failed\nwith details")

    monkeypatch.setattr(precision, "choose_cpu_precision", broken)
    with caplog.at_level("WARNING", logger=precision.__name__):
        assert precision.auto_precision(lambda: load_generator(v2_weights_file(tmp_path, "plain"))) is None
    assert "could not measure the faster precisions (compilation failed); running float32" in caplog.text


# -- the stylizer and its summary --------------------------------------------------------------------


class _Shifted(nn.Module):
    """A small generator whose first convolution's outputs sit near 1000 before a norm: bf16 breaks it."""

    MIN_SIZE = 4

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1, padding_mode="reflect")
        self.norm = nn.InstanceNorm2d(4)
        self.out = nn.Conv2d(4, 3, 1)
        with torch.no_grad():
            self.conv.bias += 1000.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.out(self.norm(self.conv(x))))



def test_the_stylizer_runs_and_reports_the_measured_choice(offered, tmp_path):
    from animevid.imageio import write_image
    from animevid.jobs.folder import stylize_image
    from tests.conftest import make_image

    stylizer = Stylizer(_Shifted().eval(), InferenceOptions(device="cpu", engine="openvino"))
    assert offered.built == [torch.float32, BF16]
    assert stylizer.dtype == torch.float32 and stylizer._openvino.dtype == torch.float32
    assert stylizer.dtype_label.startswith("float32 (auto: bfloat16 measured ") and "over the bound" in stylizer.dtype_label
    write_image(tmp_path / "in.png", make_image(24, 32))
    result = stylize_image(stylizer, tmp_path / "in.png", tmp_path / "out.png")
    assert f"on cpu, {stylizer.dtype_label}, batch size 1, openvino engine" in result.summary()


def test_an_explicit_dtype_is_obeyed_and_measures_nothing(offered):
    stylizer = Stylizer(_Shifted().eval(), InferenceOptions(device="cpu", engine="openvino", dtype="float32"))
    assert stylizer.dtype == torch.float32 and stylizer.precision is None and not offered.built
    assert stylizer.dtype_label == "float32"


def test_auto_on_the_torch_engine_measures_nothing(offered):
    stylizer = Stylizer(_Shifted().eval(), InferenceOptions(device="cpu", engine="torch"))
    assert stylizer.dtype == torch.float32 and stylizer.precision is None and not offered.built


def test_workers_get_the_parents_decision(offered, tmp_path):
    from animevid.jobs.parallel import decide_for_workers

    weights = v2_weights_file(tmp_path, "shifted", bias_shift=1000.0)
    options, label = decide_for_workers(weights, InferenceOptions(device="cpu"), ["cpu", "cpu"])
    assert options.dtype == "float32" and label.startswith("float32 (auto: bfloat16 measured")
    explicit = InferenceOptions(device="cpu", dtype="bfloat16")
    assert decide_for_workers(weights, explicit, ["cpu"]) == (explicit, None)
    assert len(offered.built) == 2  # measured once, in the parent
