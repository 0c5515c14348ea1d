"""The AnimeGAN paper's Table 1 (AnimeGAN vs CartoonGAN generators), reproduced and extended.

Static figures: parameters, model size (MiB in fp32 and fp16) and FLOPs at 256×256, counted with
:class:`torch.utils.flop_counter.FlopCounterMode`. That counter counts only convolutions and matrix
products (no norms, activations, pads or resizes) and counts one multiply-accumulate as 2 FLOPs, so
"GFLOPs" here are 2×MACs; MACs are printed too. The paper's figures are printed beside ours.

Speed: milliseconds per frame at batch 1 for each input size and variant (fp32 NCHW eager is the
plain baseline; channels_last; bf16 and, on CUDA, fp16 autocast; torch.compile), both models
timed in the same process, interleaved, median after warm-up. Each variant's output is compared
with the fp32 baseline's on the uint8 scale the product writes (1 LSB = 1/255 of the range).

Weights are random (seeded): speed does not depend on them, and the LSB differences are those of a
generator whose activations are of ordinary size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from animevid.models import AnimeGANGenerator, CartoonGANGenerator
from animevid.models.animegan import ConvNormLReLU, UpConv

from .common import Timing, fmt, interleaved_timings, markdown_table, size_name

MODELS: dict[str, type[nn.Module]] = {"animegan": AnimeGANGenerator, "cartoongan": CartoonGANGenerator}
MODEL_TITLES = {"animegan": "AnimeGAN", "cartoongan": "CartoonGAN"}

# Chen, Liu, Hu, "AnimeGAN: a novel lightweight GAN for photo animation" (2019), Table 1.
PAPER = {
    "animegan": {"params": 3_956_096, "size_mb": 15.09, "gflops": 38.66, "ms": 43.0},
    "cartoongan": {"params": 12_253_152, "size_mb": 46.74, "gflops": 108.98, "ms": 51.0},
}
PAPER_DEVICE = "GTX 1080 Ti"
FLOPS_SIZE = (256, 256)

DTYPE_TOKENS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
LAYOUT_TOKENS = {"channels_last", "cl"}
COMPILE_TOKEN = "compile"


@dataclass(frozen=True)
class Variant:
    """How the generator runs: autocast dtype, memory format, compiled or eager."""

    name: str
    dtype: torch.dtype = torch.float32
    channels_last: bool = False
    compiled: bool = False

    @property
    def is_baseline(self) -> bool:
        return self.dtype == torch.float32 and not self.channels_last and not self.compiled


def parse_variant(spec: str) -> Variant:
    """``fp32``, ``channels_last``, ``bf16``, ``fp16``, ``compile`` or a ``+`` combination of them."""
    dtype, channels_last, compiled = torch.float32, False, False
    for token in spec.split("+"):
        token = token.strip()
        if token in DTYPE_TOKENS:
            dtype = DTYPE_TOKENS[token]
        elif token in LAYOUT_TOKENS:
            channels_last = True
        elif token == COMPILE_TOKEN:
            compiled = True
        else:
            raise ValueError(f"unknown variant token {token!r} in {spec!r} (use fp32, bf16, fp16, channels_last, compile)")
    return Variant(spec, dtype, channels_last, compiled)


def default_variants(device: torch.device) -> list[str]:
    """The issue's variants: the plain baseline, channels_last, half precision, torch.compile."""
    half = ["bf16", "fp16"] if device.type == "cuda" else ["bf16"]
    return ["fp32", "channels_last", *half, "compile"]


def check_variants(variants: Sequence[Variant], device: torch.device) -> list[str]:
    """Reasons why variants cannot run here (fp16 autocast is a CUDA feature for these convs)."""
    return [f"{v.name}: fp16 needs CUDA" for v in variants if v.dtype == torch.float16 and device.type != "cuda"]


# -- static figures -------------------------------------------------------------------------------


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass(frozen=True)
class FlopCount:
    """One forward pass at a given size: FLOPs (2×MACs) in all, per top-level block, MACs per conv kind."""

    total: int
    per_module: dict[str, int]  # top-level blocks
    macs_by_kind: dict[str, int]
    all_modules: dict[str, int]  # every module path (e.g. "b1.down.resized")


def count_flops(model: nn.Module, height: int, width: int) -> FlopCount:
    """Count with :class:`FlopCounterMode` (convolutions and matmuls, 2 FLOPs per MAC), and, in the
    same forward pass, the MACs of each convolution kind (dense k×k or depthwise) from its output shape."""
    macs_by_kind: dict[str, int] = {}

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        k_h, k_w = module.kernel_size
        if isinstance(module, nn.ConvTranspose2d):  # every input pixel scatters a k×k×C_out patch
            kind = f"transposed {k_h}x{k_w}"
            macs = inputs[0].numel() * (module.out_channels // module.groups) * k_h * k_w
        else:
            kind = "depthwise" if module.groups > 1 else f"dense {k_h}x{k_w}"
            macs = output.numel() * (module.in_channels // module.groups) * k_h * k_w
        macs_by_kind[kind] = macs_by_kind.get(kind, 0) + macs

    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    hooks = [m.register_forward_hook(record) for m in convs]
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(torch.zeros(1, 3, height, width))
    finally:
        for hook in hooks:
            hook.remove()
    name = type(model).__name__
    all_modules = {
        module.removeprefix(name + "."): sum(counts.values())
        for module, counts in counter.get_flop_counts().items()
        if module.startswith(name + ".")
    }
    per_module = {module: flops for module, flops in all_modules.items() if "." not in module}
    return FlopCount(counter.get_total_flops(), per_module, macs_by_kind, all_modules)


def figure_variant_animegan() -> AnimeGANGenerator:
    """AnimeGAN as the paper's Fig. 2 draws it: the second Up-Conv outputs 64 channels, not 128."""
    model = AnimeGANGenerator()
    model.u1.up = UpConv(128, 64)
    model.u1.conv1 = ConvNormLReLU(64, 64)
    return model


def animegan_flops_investigation(count: FlopCount) -> dict[str, object]:
    """Which counting, if any, reproduces the paper's 38.66 GFLOPs for AnimeGAN at 256×256?

    ``count`` is AnimeGAN's own count at 256×256. Every candidate is computed, none is assumed;
    each is reported with its distance from the paper's figure.
    """
    total = count.total
    depthwise_flops = 2 * count.macs_by_kind.get("depthwise", 0)
    dense3_flops = 2 * count.macs_by_kind.get("dense 3x3", 0)
    encoder_middle = sum(count.per_module.get(name, 0) for name in ("b1", "b2", "m"))
    resized_branches = sum(count.all_modules.get(f"{block}.down.resized", 0) for block in ("b1", "b2"))
    figure_model = figure_variant_animegan().eval()
    figure_total = count_flops(figure_model, *FLOPS_SIZE).total
    paper = PAPER["animegan"]["gflops"] * 1e9
    candidates = [
        ("all convolutions, 2×MACs (our convention)", total),
        ("all convolutions, MACs", total // 2),
        ("all convolutions except depthwise, 2×MACs", total - depthwise_flops),
        ("dense 3×3 convolutions only, 2×MACs", dense3_flops),
        ("encoder + middle only (b1, b2, m: everything before the first Up-Conv), 2×MACs", encoder_middle),
        ("encoder + middle without the Down-Convs' resize branches (the convs before the first Up-Conv that no resize feeds), 2×MACs",
         encoder_middle - resized_branches),
        (f"Fig. 2 layout (64-ch second Up-Conv, {count_parameters(figure_model):,} params), 2×MACs", figure_total),
    ]
    return {
        "paper_gflops": PAPER["animegan"]["gflops"],
        "per_module_gflops": {name: flops / 1e9 for name, flops in count.per_module.items()},
        "gmacs_by_conv_kind": {kind: macs / 1e9 for kind, macs in sorted(count.macs_by_kind.items())},
        "candidates": [
            {"counting": label, "gflops": flops / 1e9, "vs_paper_percent": 100 * (flops - paper) / paper}
            for label, flops in candidates
        ],
    }


def static_figures() -> tuple[dict[str, dict[str, object]], dict[str, FlopCount]]:
    """Parameters, sizes and FLOPs at 256×256 of each model (and the raw counts)."""
    figures, counts = {}, {}
    for key, cls in MODELS.items():
        model = cls().eval()
        params = count_parameters(model)
        counts[key] = count = count_flops(model, *FLOPS_SIZE)
        figures[key] = {
            "params": params,
            "size_mib_fp32": params * 4 / 2**20,
            "size_mib_fp16": params * 2 / 2**20,
            "gflops_256": count.total / 1e9,
            "gmacs_256": count.total / 2e9,
            "gflops_256_per_module": {name: value / 1e9 for name, value in count.per_module.items()},
            "gmacs_256_by_conv_kind": {kind: macs / 1e9 for kind, macs in sorted(count.macs_by_kind.items())},
        }
    return figures, counts


# -- speed ----------------------------------------------------------------------------------------


def synthetic_input(height: int, width: int, device: torch.device) -> torch.Tensor:
    """A smooth, colourful, deterministic image in [-1, 1]: outputs then look like outputs of photos."""
    ys = torch.linspace(0, 1, height).view(height, 1)
    xs = torch.linspace(0, 1, width).view(1, width)
    image = torch.stack(
        [
            torch.sin(12 * xs + 3 * ys),
            torch.cos(9 * ys - 4 * xs),
            torch.sin(7 * (xs + ys)) * torch.cos(5 * xs),
        ]
    )
    return (0.8 * image).unsqueeze(0).to(device)


def to_uint8_scale(y: torch.Tensor) -> torch.Tensor:
    """[-1, 1] → the uint8 levels the product writes (as :meth:`animevid.engine.stylizer.Stylizer.frames`)."""
    return y.float().add(1.0).mul(127.5).round().clamp(0, 255)


def lsb_difference(output: torch.Tensor, reference: torch.Tensor) -> dict[str, float]:
    diff = (to_uint8_scale(output) - to_uint8_scale(reference)).abs()
    return {"max_lsb": diff.max().item(), "mean_lsb": diff.mean().item()}


def make_runner(model: nn.Module, variant: Variant, x: torch.Tensor, device: torch.device) -> Callable[[], torch.Tensor]:
    """A no-argument callable running one forward pass of ``model`` as ``variant`` says."""
    memory_format = torch.channels_last if variant.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    x = x.contiguous(memory_format=memory_format)
    # dynamic=False: every benchmarked size gets kernels specialized for it, as a video job would.
    forward = torch.compile(model, dynamic=False) if variant.compiled else model

    def run() -> torch.Tensor:
        autocast = (
            torch.autocast(device.type, dtype=variant.dtype) if variant.dtype != torch.float32 else nullcontext()
        )
        with torch.inference_mode(), autocast:
            return forward(x)

    return run


def seeded_model(key: str, seed: int = 0) -> nn.Module:
    """The same random weights for every variant of a model (the LSB comparison needs that)."""
    torch.manual_seed(seed)
    return MODELS[key]().eval().requires_grad_(False)


def time_size(
    height: int,
    width: int,
    variants: Sequence[Variant],
    *,
    repeats: int,
    warmup: int,
    device: torch.device,
    models: Sequence[str] = tuple(MODELS),
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, object]]:
    """Time every (model, variant) at one size, interleaved; compare outputs with the fp32 baseline."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the product sets it: one size per job, autotuned in warm-up
    x = synthetic_input(height, width, device)
    candidates: dict[str, Callable[[], torch.Tensor]] = {}
    for key in models:
        for variant in variants:
            # Each variant gets its own copy: changing one model's memory format must not change another's.
            candidates[f"{key}/{variant.name}"] = make_runner(seeded_model(key), variant, x, device)
    first_call_s: dict[str, float] = {}
    outputs: dict[str, torch.Tensor] = {}
    graph_breaks: dict[str, int] = {}
    breaks_so_far = [_graph_break_count()]

    def on_warmup(name: str, index: int, seconds: float, result: object) -> None:
        if index == 0:
            first_call_s[name] = seconds
            outputs[name] = result.detach().float().cpu()  # type: ignore[union-attr]
            # Warm-ups run one candidate after another, so new graph breaks belong to this one.
            graph_breaks[name] = _graph_break_count() - breaks_so_far[0]
            breaks_so_far[0] += graph_breaks[name]
            log(f"  {size_name(height, width)} {name}: first call {seconds:.2f} s")

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with _quiet_dynamo():
        timings: dict[str, Timing] = interleaved_timings(
            candidates, repeats=repeats, device=device, warmup=max(1, warmup), on_warmup=on_warmup
        )
    baseline = next((v for v in variants if v.is_baseline), None)
    result: dict[str, dict[str, object]] = {}
    for key in models:
        reference = outputs[f"{key}/{baseline.name}"] if baseline else None
        base_median = timings[f"{key}/{baseline.name}"].median if baseline else None
        per_variant: dict[str, object] = {}
        for variant in variants:
            name = f"{key}/{variant.name}"
            timing = timings[name]
            entry: dict[str, object] = {
                "ms_per_frame": timing.median * 1e3,
                "first_call_s": first_call_s[name],
                "timing": timing.as_dict(),
                "speedup_vs_fp32": base_median / timing.median if base_median else None,
            }
            if variant.compiled:
                entry["graph_breaks"] = graph_breaks[name]
            entry.update(lsb_difference(outputs[name], reference) if reference is not None else {"max_lsb": None, "mean_lsb": None})
            per_variant[variant.name] = entry
        result[key] = per_variant
    if device.type == "cuda":
        result["cuda_max_memory_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20  # type: ignore[assignment]
    return result


def _graph_break_count() -> int:
    from torch._dynamo.utils import counters

    return sum(counters["graph_break"].values())


@contextmanager
def _quiet_dynamo() -> Iterator[None]:
    """Graph-break warnings are counted into the results instead of flooding the tables' output."""
    logger = logging.getLogger("torch._dynamo")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@dataclass(frozen=True)
class Table1Settings:
    sizes: tuple[tuple[int, int], ...]  # (height, width)
    repeats: tuple[int, ...]  # timed runs per size
    warmup: int
    variants: tuple[str, ...]  # at sizes below LARGE_PIXELS
    large_variants: tuple[str, ...]  # at LARGE_PIXELS and above

    def variants_for(self, height: int, width: int) -> tuple[str, ...]:
        return self.large_variants if height * width >= LARGE_PIXELS else self.variants


LARGE_PIXELS = 1280 * 720


def default_settings(device: torch.device, quick: bool) -> Table1Settings:
    """Sizes, repeats and variants that keep a full run reasonable on the device.

    CUDA: every variant at 256×256, 720p and 1080p, 20/10/5 timed runs after 3 warm-ups.

    CPU (measured on a 2-core EPYC): one AnimeGAN fp32 frame takes about a second at 256×256 but
    tens of seconds at 720p and 1080p, CartoonGAN about as long. Every timed run costs one such
    frame per model and variant, so the CPU default times every variant five times at 256×256, but
    at 720p and 1080p only fp32, channels_last (the product's memory format) and bf16, once each,
    after one warm-up (the warm-up is where torch.compile compiles and oneDNN builds its kernels,
    so it is never skipped); torch.compile is left out there (one more compilation per size and
    model). Flags select more.
    """
    variants = tuple(default_variants(device))
    if quick:
        # torch.compile alone takes a minute or two on a small CPU: the smoke check leaves it out.
        quick_variants = tuple(v for v in variants if v != "compile")
        return Table1Settings(((32, 32),), (1,), 1, quick_variants, quick_variants)
    sizes = ((256, 256), (720, 1280), (1080, 1920))
    if device.type == "cuda":
        return Table1Settings(sizes, (20, 10, 5), 3, variants, variants)
    return Table1Settings(sizes, (5, 1, 1), 1, variants, ("fp32", "channels_last", "bf16"))


def run(device: torch.device, settings: Table1Settings, log: Callable[[str], None] = print) -> dict[str, object]:
    """Table 1: static figures, the FLOPs investigation, and speed per size and variant."""
    figures, counts = static_figures()
    speed: dict[str, object] = {}
    variants_per_size: dict[str, list[str]] = {}
    for (height, width), repeats in zip(settings.sizes, settings.repeats):
        variants = [parse_variant(spec) for spec in settings.variants_for(height, width)]
        problems = check_variants(variants, device)
        if problems:
            raise ValueError("; ".join(problems))
        if not any(v.is_baseline for v in variants):
            variants.insert(0, Variant("fp32"))  # speed-ups and LSB differences need the baseline
        name = size_name(height, width)
        variants_per_size[name] = [v.name for v in variants]
        log(f"table1: {name}, variants {', '.join(variants_per_size[name])}: {repeats} timed run(s) after {settings.warmup} warm-up")
        speed[name] = time_size(height, width, variants, repeats=repeats, warmup=settings.warmup, device=device, log=log)
    return {
        "status": "ok",
        "flops_convention": "torch.utils.flop_counter.FlopCounterMode: convolutions and matmuls only, 1 MAC = 2 FLOPs",
        "paper": {"figures": PAPER, "device": PAPER_DEVICE},
        "static": figures,
        "animegan_flops_investigation": animegan_flops_investigation(counts["animegan"]),
        "sizes": [size_name(h, w) for h, w in settings.sizes],
        "variants": variants_per_size,
        "repeats": list(settings.repeats),
        "warmup": settings.warmup,
        "speed": speed,
    }


# -- report ---------------------------------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.3f}" if a and b else "—"


def markdown(result: dict[str, object], device_label: str) -> str:
    static = result["static"]
    a, c = static["animegan"], static["cartoongan"]
    pa, pc = PAPER["animegan"], PAPER["cartoongan"]
    sizes = result["sizes"]
    first_size = sizes[0] if sizes else None
    speed = result["speed"]
    rows = [
        ["Parameters", f"{a['params']:,}", f"{pa['params']:,}", f"{c['params']:,}", f"{pc['params']:,}",
         _ratio(a["params"], c["params"]), _ratio(pa["params"], pc["params"])],
        ["Size fp32 (MiB)", fmt(a["size_mib_fp32"]), fmt(pa["size_mb"]), fmt(c["size_mib_fp32"]), fmt(pc["size_mb"]),
         _ratio(a["size_mib_fp32"], c["size_mib_fp32"]), _ratio(pa["size_mb"], pc["size_mb"])],
        ["Size fp16 (MiB)", fmt(a["size_mib_fp16"]), "—", fmt(c["size_mib_fp16"]), "—",
         _ratio(a["size_mib_fp16"], c["size_mib_fp16"]), "—"],
        ["GFLOPs at 256×256 (2×MACs)", fmt(a["gflops_256"]), fmt(pa["gflops"]), fmt(c["gflops_256"]), fmt(pc["gflops"]),
         _ratio(a["gflops_256"], c["gflops_256"]), _ratio(pa["gflops"], pc["gflops"])],
        ["GMACs at 256×256", fmt(a["gmacs_256"]), "—", fmt(c["gmacs_256"]), "—", _ratio(a["gmacs_256"], c["gmacs_256"]), "—"],
    ]  # fmt: skip
    if first_size is not None:
        ms_a = speed[first_size]["animegan"]["fp32"]["ms_per_frame"]
        ms_c = speed[first_size]["cartoongan"]["fp32"]["ms_per_frame"]
        rows.append(
            [f"ms/frame {first_size.replace('x', '×')}, fp32, batch 1 (ours: {device_label}; paper: {PAPER_DEVICE})",
             fmt(ms_a, 1), fmt(pa["ms"], 0), fmt(ms_c, 1), fmt(pc["ms"], 0), _ratio(ms_a, ms_c), _ratio(pa["ms"], pc["ms"])]
        )  # fmt: skip
    parts = [
        "### Table 1: AnimeGAN vs CartoonGAN generators",
        "",
        markdown_table(
            ["", "AnimeGAN (measured)", "AnimeGAN (paper)", "CartoonGAN (measured)", "CartoonGAN (paper)",
             "AnimeGAN/CartoonGAN (measured)", "AnimeGAN/CartoonGAN (paper)"],
            rows,
        ),  # fmt: skip
        "",
        f"FLOPs: {result['flops_convention']}. Sizes: MiB = 2^20 bytes (the paper's 15.09 'MB' for"
        " 3,956,096 fp32 parameters is MiB).",
        "",
    ]
    investigation = result["animegan_flops_investigation"]
    parts += [
        "#### Where do the paper's 38.66 AnimeGAN GFLOPs come from?",
        "",
        markdown_table(
            ["Counting (AnimeGAN, 256×256)", "GFLOPs", "vs paper's 38.66"],
            [[row["counting"], fmt(row["gflops"]), f"{row['vs_paper_percent']:+.1f} %"] for row in investigation["candidates"]],
        ),
        "",
        "GFLOPs per block (2×MACs): "
        + ", ".join(f"{name} {value:.2f}" for name, value in investigation["per_module_gflops"].items())
        + "; GMACs per convolution kind: "
        + ", ".join(f"{kind} {value:.2f}" for kind, value in investigation["gmacs_by_conv_kind"].items())
        + ".",
        "",
    ]
    for size in sizes:
        per_size = speed[size]
        rows = []
        for variant in result["variants"][size]:
            ea, ec = per_size["animegan"][variant], per_size["cartoongan"][variant]
            rows.append(
                [variant, fmt(ea["ms_per_frame"], 1), f"{ea['speedup_vs_fp32']:.2f}×", _lsb(ea),
                 fmt(ec["ms_per_frame"], 1), f"{ec['speedup_vs_fp32']:.2f}×", _lsb(ec),
                 _ratio(ea["ms_per_frame"], ec["ms_per_frame"])]
            )  # fmt: skip
        repeats = result["repeats"][sizes.index(size)]
        parts += [
            f"#### {size.replace('x', '×')}, batch 1, {device_label}: median of {repeats} run(s) after {result['warmup']} warm-up, interleaved",
            "",
            markdown_table(
                ["Variant", "AnimeGAN ms", "speed-up", "Δ vs fp32 max / mean (LSB)",
                 "CartoonGAN ms", "speed-up", "Δ vs fp32 max / mean (LSB)", "AnimeGAN/CartoonGAN time"],
                rows,
            ),  # fmt: skip
            "",
        ]
        for variant in result["variants"][size]:
            ea, ec = per_size["animegan"][variant], per_size["cartoongan"][variant]
            if "graph_breaks" in ea:
                parts += [
                    f"`{variant}`: first call (compilation; shorter when inductor's on-disk cache holds kernels from an "
                    f"earlier run) {ea['first_call_s']:.1f} s for AnimeGAN, {ec['first_call_s']:.1f} s for CartoonGAN; "
                    f"graph breaks: {ea['graph_breaks']} and {ec['graph_breaks']}.",
                    "",
                ]
        if "cuda_max_memory_allocated_mib" in per_size:
            parts += [f"Peak CUDA memory allocated at this size: {per_size['cuda_max_memory_allocated_mib']:.0f} MiB.", ""]
    return "\n".join(parts)


def _lsb(entry: dict[str, object]) -> str:
    if entry.get("max_lsb") is None:
        return "—"
    return f"{entry['max_lsb']:.0f} / {entry['mean_lsb']:.3f}"
