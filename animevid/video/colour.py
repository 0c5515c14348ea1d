"""YUV 4:2:0 ↔ RGB as torch ops, so that a video's colour conversion can run on the GPU.

The CPU pipeline converts every frame twice with FFmpeg's swscale (to rgb24 after decoding, back
to yuv420p before encoding). These functions compute the same conversions on any torch device:

* :func:`yuv420_to_rgb` reproduces swscale's yuv420p → rgb24 (the fixed-point path FFmpeg runs
  for it: chroma repeated over its 2×2 luma block, 13-bit coefficients, products truncated), so
  it matches ``VideoFrame.to_ndarray(format="rgb24")`` bit for bit for frames of even height
  (any width). Frames of odd height take another swscale path (interpolated chroma) that this
  does not reproduce: :func:`device_conversion_matches_host` says which frames qualify;
* :func:`rgb_to_yuv420` computes rgb24 → yuv420p as swscale's default (bilinear) scaler does:
  luma per pixel, chroma averaged over each horizontal pair and filtered vertically with the
  bilinear 2:1 taps (1, 3, 3, 1)/8 centred between two rows. It is float arithmetic, not
  swscale's integer one: within 1 level of ``VideoFrame.reformat(format="yuv420p")``.

Both take the matrix (BT.601, BT.709, BT.2020 non-constant luminance) and the range (limited, or
full as in yuvj420p) that :func:`matrix_for` and :func:`is_full_range` read from a frame's tags,
as swscale does. :class:`Yuv420Layout` is what a video job needs around the generator: frames
packed as planes in one flat buffer (stored orientation, the decoder's layout) in, upright and
padded RGB to the generator, and planes of the padded frame (the encoder's layout) out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# (Kr, Kb) of each matrix: Y = Kr R + (1 - Kr - Kb) G + Kb B.
MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}
# swscale's inverse tables (libswscale/yuv2rgb.c ff_yuv2rgb_coeffs): crv, cbu, cgu, cgv in 16.16
# fixed point, for limited-range chroma.
_SWS_INVERSE = {
    "bt601": (104597, 132201, 25675, 53279),
    "bt709": (117489, 138438, 13975, 34925),
    "bt2020": (110013, 140363, 12277, 42626),
}
# AVColorSpace values (libavutil/pixfmt.h) and the matrix swscale picks for each; anything else,
# unspecified included, is BT.601 there too.
_AVCOL_SPC_BT709, _AVCOL_SPC_BT2020_NCL, _AVCOL_SPC_BT2020_CL = 1, 9, 10
_AVCOL_RANGE_JPEG = 2


def matrix_for(colorspace: int | None) -> str:
    """The matrix swscale uses for a frame tagged with AVColorSpace ``colorspace``."""
    if colorspace == _AVCOL_SPC_BT709:
        return "bt709"
    if colorspace in (_AVCOL_SPC_BT2020_NCL, _AVCOL_SPC_BT2020_CL):
        return "bt2020"
    return "bt601"


def is_full_range(color_range: int | None, pixel_format: str = "") -> bool:
    """Full ("JPEG") range: tagged AVCOL_RANGE_JPEG, or a yuvj pixel format."""
    return color_range == _AVCOL_RANGE_JPEG or pixel_format.startswith("yuvj")


def device_conversion_matches_host(pixel_format: str, stored_height: int) -> bool:
    """Whether :func:`yuv420_to_rgb` gives exactly the host pipeline's RGB for such frames.

    8-bit 4:2:0 frames of even height only: swscale converts odd heights on another path.
    """
    return pixel_format in ("yuv420p", "yuvj420p") and stored_height % 2 == 0


def _check_matrix(matrix: str) -> None:
    if matrix not in MATRICES:
        raise ValueError(f"unknown matrix {matrix!r} (use {', '.join(MATRICES)})")


def _sws_coefficients(matrix: str, full_range: bool) -> tuple[int, int, int, int, int, int]:
    """(y, vr, ub, ug, vg) coefficients times 2^13 and the luma offset times 8, as swscale sets them up."""
    crv, cbu, cgu, cgv = _SWS_INVERSE[matrix]
    cgu, cgv = -cgu, -cgv
    cy, oy = 1 << 16, 0
    if full_range:
        crv, cbu, cgu, cgv = (_c_divide(c * 224, 255) for c in (crv, cbu, cgu, cgv))
    else:
        cy, oy = cy * 255 // 219, 16 << 16

    def to_int16(value: int) -> int:  # swscale's roundToInt16 of a 16.16 value times 2^13
        return (value * (1 << 13) + (1 << 15)) >> 16

    return to_int16(cy), to_int16(crv), to_int16(cbu), to_int16(cgu), to_int16(cgv), (oy * 8 + (1 << 15)) >> 16


def _c_divide(numerator: int, denominator: int) -> int:
    """C's integer division (towards zero), which swscale's table setup uses."""
    quotient = abs(numerator) // denominator
    return quotient if numerator >= 0 else -quotient


def _repeat_2x2(chroma: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, h2, w2) → (B, height, width): every chroma sample over its 2×2 luma block."""
    batch, h2, w2 = chroma.shape
    return chroma[:, :, None, :, None].expand(batch, h2, 2, w2, 2).reshape(batch, 2 * h2, 2 * w2)[:, :height, :width]


def yuv420_to_rgb(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor, matrix: str = "bt601", full_range: bool = False) -> torch.Tensor:
    """(B, H, W) luma and (B, ⌈H/2⌉, ⌈W/2⌉) chroma uint8 planes → (B, H, W, 3) uint8 RGB, on their device.

    Integer arithmetic exactly as swscale's yuv420p → rgb24 converter: each term
    ``floor(value · 8 · coefficient / 2^16)``, summed and saturated to 0..255.
    """
    _check_matrix(matrix)
    height, width = y.shape[-2:]
    if u.shape[-2:] != ((height + 1) // 2, (width + 1) // 2) or v.shape != u.shape:
        raise ValueError(f"chroma planes {tuple(u.shape)}, {tuple(v.shape)} do not fit a {width}x{height} 4:2:0 frame")
    c_y, c_vr, c_ub, c_ug, c_vg, o_y = _sws_coefficients(matrix, full_range)
    luma = ((y.to(torch.int32) * 8 - o_y) * c_y) >> 16
    u8 = u.to(torch.int32) * 8 - 1024
    v8 = v.to(torch.int32) * 8 - 1024
    # Chroma terms at chroma resolution (a quarter of the work), then spread over their blocks.
    red = _repeat_2x2((v8 * c_vr) >> 16, height, width)
    green = _repeat_2x2(((u8 * c_ug) >> 16) + ((v8 * c_vg) >> 16), height, width)
    blue = _repeat_2x2((u8 * c_ub) >> 16, height, width)
    rgb = torch.stack([luma + red, luma + green, luma + blue], dim=-1)  # (B, H, W, 3)
    return rgb.clamp_(0, 255).to(torch.uint8)


def rgb_to_yuv420(rgb: torch.Tensor, matrix: str = "bt601", full_range: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, H, W, 3) uint8 RGB, H and W even → uint8 planes (B, H, W), (B, H/2, W/2), (B, H/2, W/2).

    Chroma is averaged over horizontal pairs and filtered vertically with the taps (1, 3, 3, 1)/8
    (edges repeated), as swscale's default bilinear scaler does for yuv420p output.
    """
    _check_matrix(matrix)
    batch, height, width, channels = rgb.shape
    if channels != 3 or height % 2 or width % 2:
        raise ValueError(f"expected (B, H, W, 3) RGB with even H and W, got {tuple(rgb.shape)}")
    k_r, k_b = MATRICES[matrix]
    x = rgb.to(torch.float32)
    red, green, blue = x.unbind(-1)
    luma = k_r * red + (1.0 - k_r - k_b) * green + k_b * blue  # [0, 255]
    blue_difference = (blue - luma) / (2.0 * (1.0 - k_b))  # [-127.5, 127.5]
    red_difference = (red - luma) / (2.0 * (1.0 - k_r))
    chroma = torch.stack([blue_difference, red_difference], dim=1)  # (B, 2, H, W)
    chroma = chroma.view(batch, 2, height, width // 2, 2).mean(-1)  # (B, 2, H, W/2): horizontal pairs
    padded = F.pad(chroma, (0, 0, 1, 1), mode="replicate")  # (B, 2, H + 2, W/2)
    taps = padded.new_tensor([1.0, 3.0, 3.0, 1.0]).div_(8.0).view(1, 1, 4, 1).expand(2, 1, 4, 1)
    chroma = F.conv2d(padded, taps, stride=(2, 1), groups=2)  # (B, 2, H/2, W/2): rows 2i-1 .. 2i+2
    if full_range:
        # swscale truncates full-range chroma: an offset of 127.5 then rounding reproduces that
        # (0.06 level off on average on random RGB; 128 would be 0.56 off).
        y_scale, y_offset, c_scale, c_offset = 1.0, 0.0, 1.0, 127.5
    else:
        y_scale, y_offset, c_scale, c_offset = 219.0 / 255.0, 16.0, 224.0 / 255.0, 128.0
    y = luma.mul_(y_scale).add_(y_offset)
    uv = chroma.mul_(c_scale).add_(c_offset)

    def to_uint8(plane: torch.Tensor) -> torch.Tensor:
        return plane.round_().clamp_(0, 255).to(torch.uint8)

    return to_uint8(y), to_uint8(uv[:, 0]), to_uint8(uv[:, 1])


@dataclass(frozen=True)
class Yuv420Layout:
    """A video job's frames as packed 4:2:0 planes: the decoder's side and the encoder's side.

    In: each frame as stored (``stored_height`` × ``stored_width``, before rotation), its Y, U, V
    planes one after another in a flat uint8 row (see :meth:`input_planes`). Out: the frame
    upright and padded to ``height`` × ``width`` (even), Y, U, V likewise.
    """

    stored_height: int
    stored_width: int
    rotation: int  # degrees counter-clockwise, a multiple of 90 (as animevid.video.reader.upright)
    height: int  # upright, padded
    width: int
    source_matrix: str = "bt601"
    source_full_range: bool = False
    output_matrix: str = "bt601"
    output_full_range: bool = False

    def __post_init__(self) -> None:
        _check_matrix(self.source_matrix)
        _check_matrix(self.output_matrix)
        upright = (self.stored_width, self.stored_height) if self.rotation in (90, 270) else (self.stored_height, self.stored_width)
        if self.height % 2 or self.width % 2 or self.height < upright[0] or self.width < upright[1]:
            raise ValueError(f"output {self.width}x{self.height} must be even and hold the upright {upright[1]}x{upright[0]} frame")

    @property
    def input_chroma_size(self) -> tuple[int, int]:
        return (self.stored_height + 1) // 2, (self.stored_width + 1) // 2

    @property
    def input_bytes(self) -> int:
        """Bytes of one frame in the decoder's layout."""
        chroma_h, chroma_w = self.input_chroma_size
        return self.stored_height * self.stored_width + 2 * chroma_h * chroma_w

    @property
    def output_bytes(self) -> int:
        """Bytes of one frame in the encoder's layout (yuv420p of the padded frame)."""
        return self.height * self.width * 3 // 2

    def input_planes(self, packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Views of (…, input_bytes) as Y (…, h, w), U and V (…, ⌈h/2⌉, ⌈w/2⌉)."""
        return _split(packed, (self.stored_height, self.stored_width), self.input_chroma_size)

    def output_planes(self, packed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Views of (…, output_bytes) as Y (…, H, W), U and V (…, H/2, W/2)."""
        return _split(packed, (self.height, self.width), (self.height // 2, self.width // 2))

    def to_rgb(self, packed: torch.Tensor) -> torch.Tensor:
        """(B, input_bytes) uint8 → (B, height, width, 3) uint8 RGB: upright, the last row/column repeated into the padding."""
        rgb = yuv420_to_rgb(*self.input_planes(packed), self.source_matrix, self.source_full_range)
        if self.rotation:
            rgb = torch.rot90(rgb, self.rotation // 90, dims=(1, 2))  # counter-clockwise, as np.rot90
        pad_h, pad_w = self.height - rgb.shape[1], self.width - rgb.shape[2]
        if pad_h or pad_w:
            last_row = rgb[:, -1:].expand(-1, pad_h, -1, -1)
            rgb = torch.cat([rgb, last_row], dim=1)
            last_column = rgb[:, :, -1:].expand(-1, -1, pad_w, -1)
            rgb = torch.cat([rgb, last_column], dim=2)
        return rgb.contiguous()

    def from_rgb(self, rgb: torch.Tensor) -> torch.Tensor:
        """(B, height, width, 3) uint8 RGB → (B, output_bytes) uint8 planes, on the same device."""
        y, u, v = rgb_to_yuv420(rgb, self.output_matrix, self.output_full_range)
        batch = rgb.shape[0]
        return torch.cat([y.reshape(batch, -1), u.reshape(batch, -1), v.reshape(batch, -1)], dim=1)


def _split(packed: torch.Tensor, luma: tuple[int, int], chroma: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    luma_bytes, chroma_bytes = luma[0] * luma[1], chroma[0] * chroma[1]
    if packed.shape[-1] != luma_bytes + 2 * chroma_bytes:
        raise ValueError(f"expected {luma_bytes + 2 * chroma_bytes} bytes per frame, got {packed.shape[-1]}")
    y = packed[..., :luma_bytes].unflatten(-1, luma)
    u = packed[..., luma_bytes : luma_bytes + chroma_bytes].unflatten(-1, chroma)
    v = packed[..., luma_bytes + chroma_bytes :].unflatten(-1, chroma)
    return y, u, v
