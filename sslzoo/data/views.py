"""Multi-view augmentation recipes on torchvision transforms v2.

Each recipe is a dataclass whose fields are the paper's augmentation parameters (with the paper's
defaults) and whose call maps one image (PIL, ``uint8`` tensor ``[C, H, W]`` or ``HxWxC`` array) to a
list of normalised ``float32`` tensors ``[3, size, size]``:

=============  ==========================================================================================
``simclr``     Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations"
               (ICML 2020), appendix A: crop 0.08-1, flip, colour jitter 0.8s/0.8s/0.8s/0.2s (p=0.8),
               grey p=0.2, blur p=0.5 (sigma 0.1-2.0), two views. CIFAR: s=0.5, no blur.
``byol``       Grill et al., "Bootstrap Your Own Latent" (NeurIPS 2020), table 6: colour jitter
               0.4/0.4/0.2/0.1 (p=0.8), grey p=0.2, blur p=1.0 / 0.1 and solarisation p=0.0 / 0.2 for
               the first / second view (the asymmetry of the paper).
``simclust``   Ge et al., "Learning the Relation between Similarity Loss and Clustering Loss in
               Self-Supervised Learning" (IEEE TIP 2023): BYOL's views plus a random permutation of the
               colour channels with p=0.8.
``multicrop``  Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
               Assignments" (SwAV, NeurIPS 2020): 2 global crops (224 px, scale 0.14-1) and N local crops
               (96 px, scale 0.05-0.14), with BYOL's colour/blur/solarisation per global view as in
               Caron et al., "Emerging Properties in Self-Supervised Vision Transformers" (DINO, ICCV 2021);
               local crops blur with p=0.5.
``linear_probe`` The usual linear-evaluation augmentation (crop 0.08-1 + flip), one view.
=============  ==========================================================================================

Small images (``size <= 64``, e.g. CIFAR, STL, digits) get the small-image defaults of SimCLR's CIFAR
experiments and of solo-learn's CIFAR recipes: no Gaussian blur (it erases a 32 px image) and, for BYOL /
SimClust, crop scale 0.2-1 as in SimSiam's CIFAR recipe. Pass ``small_image=False`` to keep the ImageNet
defaults, or any field explicitly to override either set.

How it is fast (``benchmarks/data_throughput.py``; one view, see :class:`View`): the random-resized crop
runs on the decoded ``uint8`` tensor (the only op that touches the full-size image; torch's ``uint8``
antialiased resize is several times faster than PIL's); then every colour op up to the blur -- ``/ 255``,
colour jitter, grey, channel permutation and normalisation -- is affine in RGB, so they are composed on
3x3 matrices (Python floats) and applied in one matrix product with one clamp; the blur (separable, kernel
truncated at 3 sigma, shifted multiply-adds over reused padded buffers) and the solarisation
(``min(x, 1 - x)``) run on the normalised result. A view draws all its random numbers in one call and
writes its intermediates into per-thread scratch buffers: at 224 px that took a quarter off the time of a
BYOL view pair, half off at 32 px (``tests/test_data_views.py`` checks the buffers never leak into results).

Deviations from torchvision's sequential ops, each documented where it happens and tested in
``tests/test_data_views.py``: (1) colour jitter clamps once, at the end, not after each of its four ops
(identical where no intermediate value leaves [0, 1]); (2) the hue jitter is a rotation about the grey axis,
not HSV's hexagonal hue shift (same hue angle at the primaries, close elsewhere; :func:`adjust_hue` keeps
the exact HSV op); (3) the blur's kernel has ``2 ceil(3 sigma) + 1`` taps instead of 23 (< 1e-3 apart on
[0, 1] images). Randomness comes from the global torch RNG only, so that
:func:`sslzoo.data.create_dataloader` can seed each sample (see there).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2 as v2
from PIL import Image as PILImage
from torch import Tensor, nn

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VIEW_RECIPES",
    "BYOLViews",
    "ColorJitter",
    "EvalTransform",
    "GaussianBlur",
    "LinearProbeViews",
    "MultiCropViews",
    "Normalize",
    "RandomChannelPermutation",
    "SimCLRViews",
    "SimClustViews",
    "View",
    "ViewRecipe",
    "adjust_hue",
    "apply_color_matrix",
    "build_eval_transform",
    "build_views",
    "gaussian_blur",
    "to_uint8_tensor",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SMALL_IMAGE_MAX_SIZE = 64


def to_uint8_tensor(image: Any) -> Tensor:
    """A PIL image, ``uint8`` tensor ``[C, H, W]`` or ``HxW[xC]`` array as an RGB ``uint8`` tensor ``[3, H, W]``."""
    if isinstance(image, PILImage.Image):
        if image.mode != "RGB":
            from .loader import pil_to_rgb

            image = pil_to_rgb(image)
        return torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1)
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image))
        image = image.unsqueeze(-1) if image.ndim == 2 else image
        image = image.permute(2, 0, 1)
    if not isinstance(image, Tensor) or image.ndim != 3 or image.dtype != torch.uint8:
        raise TypeError(
            "Expected a PIL image, a uint8 tensor [C, H, W] or a uint8 array [H, W(, C)], got "
            f"{type(image).__name__} {getattr(image, 'dtype', '')} {tuple(getattr(image, 'shape', ()))}."
        )
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    elif image.shape[0] == 4:
        image = image[:3]
    return image


def adjust_hue(image: Tensor, hue_factor: float) -> Tensor:
    """Rotate the hue of a float RGB image in [0, 1] by ``hue_factor`` turns (HSV, as ``F.adjust_hue``).

    Works in units of sixths of a turn; HSV keeps max and max-min, so only the hue needs computing:
    ``rgb = max - (max-min) * clamp(min(k, 4-k), 0, 1)`` with ``k = (n + 6h) mod 6``, n = 5, 3, 1.
    """
    if hue_factor == 0:
        return image
    maxc, argmax = image.max(0)
    delta = maxc - image.min(0).values
    # (g-b), (b-r), (r-g): the numerator of the hue formula for a maximum in r, g, b respectively.
    diffs = image[[1, 2, 0]] - image[[2, 0, 1]]
    numer = diffs.gather(0, argmax.unsqueeze(0)).squeeze(0)
    hue = numer.div_(torch.where(delta > 0, delta, torch.ones_like(delta))).add_(argmax.to(image.dtype) * 2)
    hue = torch.remainder(hue.add_(6.0 * hue_factor), 6.0)  # on one channel: 3x cheaper than on k
    k = torch.tensor([5.0, 3.0, 1.0], dtype=image.dtype).view(3, 1, 1) + hue
    k = torch.where(k >= 6.0, k - 6.0, k)
    k = torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
    return maxc - delta * k


# torchvision's rgb_to_grayscale weights (ITU-R 601-2 luma), used by its contrast, saturation and grayscale ops.
_GREY_WEIGHTS = [0.2989, 0.587, 0.114]

# An affine colour map x -> M x + o as 3 rows [M_i0, M_i1, M_i2, o_i] of Python floats: a view composes ~6
# of them per call, and plain floats do that in a third of the time of 3x3 numpy arrays (~10 vs ~30 us).
Affine = list[list[float]]


def _linear_then(linear: Sequence[Sequence[float]], affine: Affine) -> Affine:
    """The affine map ``x -> linear @ (M x + o)``."""
    return [
        [l0 * a0 + l1 * a1 + l2 * a2 for a0, a1, a2 in zip(*affine, strict=True)] for l0, l1, l2 in linear
    ]


def _grey_row(affine: Affine) -> list[float]:
    """``w^T`` applied to the rows of ``affine`` (``w``: torchvision's grey weights)."""
    w0, w1, w2 = _GREY_WEIGHTS
    return [w0 * a0 + w1 * a1 + w2 * a2 for a0, a1, a2 in zip(*affine, strict=True)]


def _uniform(u: float, low: float, high: float) -> float:
    """Map ``u`` in [0, 1) to [low, high)."""
    return low + (high - low) * u


def _hue_rotation(hue_factor: float) -> list[list[float]]:
    """Rotation by ``hue_factor`` turns about the grey axis ``(1, 1, 1) / sqrt(3)`` (Rodrigues' formula).

    HSV's hue is the angle around that axis, measured on a hexagon; this rotates on a circle, so it shifts
    the hue by the same angle at the primaries and secondaries and by up to a few degrees less or more in
    between, and it keeps the RGB mean where HSV keeps max and min. Written out as rows of Python floats
    (``cos I + sin K + (1 - cos) 11^T / 3``, ``K`` the cross-product matrix of the axis): ``a`` on the
    diagonal, ``b`` and ``c`` off it.
    """
    theta = 2 * math.pi * hue_factor
    cos, sin = math.cos(theta), math.sin(theta)
    a, s = cos + (1 - cos) / 3, sin / math.sqrt(3)
    b, c = (1 - cos) / 3 - s, (1 - cos) / 3 + s
    return [[a, b, c], [c, a, b], [b, c, a]]


def apply_color_matrix(image: Tensor, matrix: Any, offset: Any, *, out: Tensor | None = None) -> Tensor:
    """``matrix @ pixel + offset`` for every pixel of a float ``[3, H, W]`` image, in one pass.

    ``matrix`` (3x3) and ``offset`` (3) are arrays, tensors or nested lists.
    """
    m = torch.as_tensor(matrix, dtype=torch.float32)
    t = torch.as_tensor(offset, dtype=torch.float32).view(3, 1)
    if out is None:
        return torch.addmm(t, m, image.reshape(3, -1)).view(image.shape)
    torch.addmm(t, m, image.reshape(3, -1), out=out.view(3, -1))  # out may have padded rows (a blur plan)
    return out


class ColorJitter(nn.Module):
    """Brightness, contrast, saturation and hue jitter in random order, fused into one affine colour map.

    Factors are drawn as in ``v2.ColorJitter`` (uniform in ``[max(0, 1 - b), 1 + b]``, hue in ``[-h, h]``)
    and the four ops are applied in a random order, but each op is affine in RGB, so their product is one
    3x3 matrix + offset, applied in one pass with a single clamp to [0, 1] at the end (the idea of NVIDIA
    DALI's ``ColorTwist``). With ``w`` torchvision's grey weights and ``1`` the all-ones vector:

    - brightness ``f``: ``x -> f x``;
    - contrast ``f``: ``x -> f x + (1 - f) mean(w . x)``: the image mean is tracked through the map, so it
      is computed once, on the input;
    - saturation ``f``: ``x -> (f I + (1 - f) 1 w^T) x``;
    - hue ``h``: rotation by ``h`` turns about the grey axis (:func:`_hue_rotation`).

    Deviations from ``torchvision`` (tested in ``tests/test_data_views.py``): (1) torchvision clamps to
    [0, 1] after every op, this clamps once at the end, so the two agree exactly only where no intermediate
    value leaves [0, 1]; (2) torchvision's hue shift is HSV's (piecewise linear, keeps max and min), this
    one is a rotation (linear, keeps the RGB mean), equal in hue angle at the primaries and close elsewhere.
    HSV hue costs ~2 ms on a 224 px crop on one CPU thread, the whole fused map ~0.1 ms; :func:`adjust_hue`
    keeps the exact HSV op for callers that need it.
    """

    def __init__(
        self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0, hue: float = 0.0
    ):
        super().__init__()
        if not 0 <= hue <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {hue}.")
        if min(brightness, contrast, saturation) < 0:
            raise ValueError(
                f"brightness, contrast and saturation must be >= 0, got {brightness}, {contrast}, {saturation}."
            )
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue

    NUM_UNIFORMS = 8
    """Uniforms one :meth:`draw` consumes: 4 sort keys for the order of the ops, 4 for their factors."""

    def draw(self, uniforms: Sequence[float] | None = None) -> list[tuple[str, float]]:
        """The ops of one jitter, in random order, with their random factors (hue: in turns).

        ``uniforms``: :attr:`NUM_UNIFORMS` numbers in [0, 1) to draw from (default: from the torch RNG).
        The order is the argsort of the first four (a uniformly random permutation, like ``randperm``).
        """
        u = torch.rand(self.NUM_UNIFORMS).tolist() if uniforms is None else uniforms
        ops = []
        for op in sorted(range(4), key=u.__getitem__):
            f = u[4 + op]
            if op == 0 and self.brightness > 0:
                ops.append(("brightness", _uniform(f, max(0.0, 1 - self.brightness), 1 + self.brightness)))
            elif op == 1 and self.contrast > 0:
                ops.append(("contrast", _uniform(f, max(0.0, 1 - self.contrast), 1 + self.contrast)))
            elif op == 2 and self.saturation > 0:
                ops.append(("saturation", _uniform(f, max(0.0, 1 - self.saturation), 1 + self.saturation)))
            elif op == 3 and self.hue > 0:
                ops.append(("hue", _uniform(f, -self.hue, self.hue)))
        return ops

    @staticmethod
    def compose(
        ops: Sequence[tuple[str, float]], matrix: np.ndarray, offset: np.ndarray, mean_rgb: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Compose ``ops`` (as from :meth:`draw`) after the affine map ``x -> matrix @ x + offset``.

        ``mean_rgb`` is the per-channel mean of the map's input (contrast blends with the grey mean of
        its own input, which an affine map carries along). Returns the new ``(matrix, offset)``.
        """
        affine = [
            [*row, o] for row, o in zip(np.asarray(matrix).tolist(), np.asarray(offset).tolist(), strict=True)
        ]
        affine = ColorJitter._compose_affine(ops, affine, np.asarray(mean_rgb).tolist())
        return np.array([row[:3] for row in affine]), np.array([row[3] for row in affine])

    @staticmethod
    def _compose_affine(
        ops: Sequence[tuple[str, float]], affine: Affine, mean_rgb: Sequence[float]
    ) -> Affine:
        """:meth:`compose` on an :data:`Affine` (rows ``[M_i0, M_i1, M_i2, o_i]``)."""
        for name, f in ops:
            if name == "brightness":
                affine = [[f * a for a in row] for row in affine]
            elif name == "contrast":
                m0, m1, m2 = mean_rgb
                grey_mean = sum(w * (r[0] * m0 + r[1] * m1 + r[2] * m2 + r[3])
                                for w, r in zip(_GREY_WEIGHTS, affine, strict=True))  # fmt: skip
                affine = [[f * r[0], f * r[1], f * r[2], f * r[3] + (1 - f) * grey_mean] for r in affine]
            elif name == "saturation":
                grey = _grey_row(affine)
                affine = [[f * a + (1 - f) * g for a, g in zip(row, grey, strict=True)] for row in affine]
            elif name == "hue":
                affine = _linear_then(_hue_rotation(f), affine)
            else:
                raise ValueError(f"Unknown colour op {name!r}; expected brightness/contrast/saturation/hue.")
        return affine

    def forward(self, image: Tensor) -> Tensor:
        """Jitter a float RGB image ``[3, H, W]`` in [0, 1]."""
        mean = image.mean((1, 2)).double().numpy()
        matrix, offset = self.compose(self.draw(), np.eye(3), np.zeros(3), mean)
        return apply_color_matrix(image, matrix, offset).clamp_(0.0, 1.0)


class _BlurPlan:
    """Buffers and shifted views for a separable blur of radius ``r`` of ``[C, H, W]`` images (reflect padding).

    The image goes into :attr:`image` (the middle rows of a row-padded buffer); :meth:`run` reflects the
    edges, runs the vertical pass into the middle columns of a column-padded buffer, then the horizontal pass
    into a new tensor. Against ``F.pad`` + shifted multiply-adds this saves the two reflect pads (~0.035 ms each
    at 224 px on one CPU thread), the copy of the image into the first one (a view's colour map writes straight
    into :attr:`image`) and a ``narrow`` per tap (~2 us); the ~16 multiply-adds themselves are unchanged.
    """

    def __init__(self, channels: int, height: int, width: int, r: int):
        rows = torch.empty(channels, height + 2 * r, width)
        columns = torch.empty(channels, height, width + 2 * r)
        self.image = rows[:, r : r + height]
        # Free until run() writes the vertical pass there: callers may stage the blur's input in it.
        self.scratch = columns.view(-1)[: channels * height * width].view(channels, height, width)
        self._rows_out = columns[..., r : r + width]
        self._row_taps = [rows.narrow(1, i, height) for i in range(2 * r + 1)]
        self._column_taps = [columns.narrow(2, i, width) for i in range(2 * r + 1)]
        self._row_edges = self._edges(rows, r, height, 1)
        self._column_edges = self._edges(columns, r, width, 2)

    @staticmethod
    def _edges(padded: Tensor, r: int, n: int, dim: int) -> list[tuple[Tensor, Tensor, int]]:
        # torch's "reflect": padded[r - k] = padded[r + k], padded[r + n - 1 + k] = padded[r + n - 1 - k].
        return [(padded.narrow(dim, 0, r), padded.narrow(dim, r + 1, r), dim),
                (padded.narrow(dim, n + r, r), padded.narrow(dim, n - 1, r), dim)]  # fmt: skip

    def run(self, weights: Sequence[float]) -> Tensor:
        """Blur :attr:`image` with the 1-D kernel ``weights`` (``2r + 1`` taps) along both axes."""
        for target, source, dim in self._row_edges:
            target.copy_(source.flip(dim))
        out = torch.mul(self._row_taps[0], weights[0], out=self._rows_out)
        for tap, w in zip(self._row_taps[1:], weights[1:], strict=True):
            out.add_(tap, alpha=w)
        for target, source, dim in self._column_edges:
            target.copy_(source.flip(dim))
        # torch.mul allocates the result itself: mul(out=torch.empty(...)) measured several times slower.
        out = torch.mul(self._column_taps[0], weights[0])
        for tap, w in zip(self._column_taps[1:], weights[1:], strict=True):
            out.add_(tap, alpha=w)
        return out


class _Workspace(threading.local):
    """Scratch tensors and blur plans reused across calls, one set per thread (and per DataLoader worker).

    Buffers are keyed by name and grow to the largest request; at most :attr:`MAX_PLANS` blur plans are kept
    (a 224 px multi-crop recipe uses ~12), the oldest dropped first, so memory stays bounded.
    """

    MAX_PLANS = 16

    def __init__(self) -> None:
        self.buffers: dict[str, Tensor] = {}
        self.plans: dict[tuple[int, int, int, int], _BlurPlan] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> Tensor:
        numel = math.prod(shape)
        buffer = self.buffers.get(name)
        if buffer is None or buffer.numel() < numel:
            buffer = self.buffers[name] = torch.empty(numel)
        return buffer[:numel].view(shape)

    def blur_plan(self, channels: int, height: int, width: int, r: int) -> _BlurPlan:
        key = (channels, height, width, r)
        plan = self.plans.get(key)
        if plan is None:
            if len(self.plans) >= self.MAX_PLANS:
                del self.plans[next(iter(self.plans))]
            plan = self.plans[key] = _BlurPlan(channels, height, width, r)
        return plan


_WORKSPACE = _Workspace()


def _blur_radius(sigma: float, height: int, width: int) -> int:
    return min(max(1, math.ceil(3 * sigma)), min(height, width) - 1)


def _gaussian_taps(sigma: float, r: int) -> list[float]:
    taps = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-r, r + 1)]
    total = sum(taps)
    return [t / total for t in taps]


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of a float ``[C, H, W]`` image, kernel truncated at 3 sigma, reflect padding.

    Differs from ``F.gaussian_blur(image, [23, 23], [sigma, sigma])`` (fixed 23 taps) by < 1e-3 on [0, 1]
    images. The kernel sums to 1 and the padding reflects, so the blur commutes with per-channel affine maps
    (e.g. normalisation). Returns a new tensor (``image`` itself when the image is too small to blur).
    """
    channels, height, width = image.shape
    r = _blur_radius(sigma, height, width)
    if r < 1:
        return image
    plan = _WORKSPACE.blur_plan(channels, height, width, r)
    plan.image.copy_(image)
    return plan.run(_gaussian_taps(sigma, r))


class GaussianBlur(nn.Module):
    """Gaussian blur with sigma drawn uniformly from ``sigma`` (see :func:`gaussian_blur`)."""

    def __init__(self, sigma: tuple[float, float] = (0.1, 2.0)):
        super().__init__()
        self.sigma = tuple(sigma)

    def forward(self, image: Tensor) -> Tensor:
        return gaussian_blur(image, float(torch.empty(1).uniform_(self.sigma[0], self.sigma[1])))


class RandomChannelPermutation(nn.Module):
    """Shuffle the colour channels with probability ``p`` (SimClust, Ge et al. 2023)."""

    def __init__(self, p: float = 0.8):
        super().__init__()
        self.p = p

    def forward(self, image: Tensor) -> Tensor:
        if self.p > 0 and float(torch.rand(1)) < self.p:
            return image[torch.randperm(image.shape[0])]
        return image


class Normalize(nn.Module):
    """``(x - mean) / std`` per channel, fused into one multiply-add on a float image."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        super().__init__()
        self.register_buffer("scale", 1.0 / torch.tensor(std, dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("shift", -torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1) * self.scale)

    def forward(self, image: Tensor) -> Tensor:
        return torch.addcmul(self.shift, image, self.scale)


class _ToFloat(nn.Module):
    def forward(self, image: Tensor) -> Tensor:
        return image.to(torch.float32).div_(255.0)


_CROP_ATTEMPTS = 10


def sample_crop_box(
    height: int,
    width: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    uniforms: Sequence[float],
) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` of a random-resized crop: the Inception crop (Szegedy et al., "Going Deeper with
    Convolutions", CVPR 2015) with the sampling rule of torchvision's ``RandomResizedCrop``.

    Up to 10 attempts draw an area share in ``scale`` and a log-uniform aspect ratio in ``ratio`` and keep the
    first box that fits; otherwise the centre crop of the image clipped to ``ratio``. ``uniforms``: 22
    numbers in [0, 1) (two per attempt, then the box's position), so the caller draws them in one call.
    """
    area = height * width
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    for attempt in range(_CROP_ATTEMPTS):
        target_area = area * _uniform(uniforms[2 * attempt], scale[0], scale[1])
        aspect = math.exp(_uniform(uniforms[2 * attempt + 1], log_low, log_high))
        w = round(math.sqrt(target_area * aspect))
        h = round(math.sqrt(target_area / aspect))
        if 0 < w <= width and 0 < h <= height:
            top = min(int(uniforms[2 * _CROP_ATTEMPTS] * (height - h + 1)), height - h)
            left = min(int(uniforms[2 * _CROP_ATTEMPTS + 1] * (width - w + 1)), width - w)
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, round(width / min(ratio))
    elif in_ratio > max(ratio):
        w, h = round(height * max(ratio)), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


class View(nn.Module):
    """One augmented view of an RGB ``uint8`` image ``[3, H, W]``, as a normalised ``float32`` tensor.

    The ops, in the order of the papers: random-resized crop, horizontal flip (p), colour jitter (p), grey
    (p), Gaussian blur (p), solarisation (p), channel permutation (p), normalisation. Every colour op up
    to the blur is affine (:class:`ColorJitter`; grey is ``1 w^T``, a channel permutation a permutation
    matrix, ``/ 255`` and normalisation diagonal), so they are composed on 3x3 matrices and applied to the
    crop in one matrix product, followed by one clamp (to the normalised image of [0, 1]). The blur and the
    solarisation then run on the normalised image: the blur commutes with per-channel affine maps, and
    solarisation (``x >= 0.5 -> 1 - x``) is ``min(x, 1 - x)``, which becomes ``min(y, (1 - 2 mean) / std - y)``
    after normalisation. A channel permutation commutes with the clamp, the blur and the solarisation, so
    it joins the colour matrix.

    Each call draws all its random numbers in one ``torch.rand`` call and writes its intermediates into
    per-thread scratch buffers (:class:`_Workspace`): Python overhead, ``pad`` and fresh allocations were about
    a quarter of the cost of a 224 px view.
    """

    # Uniforms per call: 6 coin flips, the crop box, the jitter, the blur's sigma, the channel order.
    _COINS, _CROP, _JITTER, _SIGMA, _ORDER = 0, 6, 6 + 2 * _CROP_ATTEMPTS + 2, 36, 37
    _NUM_UNIFORMS = 40

    def __init__(
        self,
        size: int,
        scale: tuple[float, float],
        *,
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        flip_p: float = 0.5,
        jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0),
        jitter_p: float = 0.0,
        grayscale_p: float = 0.0,
        blur_p: float = 0.0,
        sigma: tuple[float, float] = (0.1, 2.0),
        solarize_p: float = 0.0,
        channel_permutation_p: float = 0.0,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ):
        super().__init__()
        if not (0 < scale[0] <= scale[1]) or not (0 < ratio[0] <= ratio[1]):
            raise ValueError(
                f"Crop scale and ratio must be increasing positive pairs, got {scale} and {ratio}."
            )
        self.size = size
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.jitter = ColorJitter(*jitter) if any(jitter) else None
        self.sigma = tuple(sigma)
        jitter_p = jitter_p if self.jitter else 0.0
        self.p = (flip_p, jitter_p, grayscale_p, blur_p, solarize_p, channel_permutation_p)
        mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        self._scale, self._shift = (1 / std).tolist(), (-mean / std).tolist()
        self._from_uint8: Affine = [[1 / 255 if j == i else 0.0 for j in range(4)] for i in range(3)]
        self._low, self._high = self._shift, ((1 - mean) / std).tolist()  # the normalised 0 and 1
        self._fold = ((1 - 2 * mean) / std).tolist()  # solarisation's 1 - x, normalised

    def forward(self, image: Tensor) -> Tensor:
        u = torch.rand(self._NUM_UNIFORMS).tolist()
        flip, jitter, grey, blur, solarize, permute = (u[self._COINS + i] < p for i, p in enumerate(self.p))
        height, width = image.shape[-2:]
        top, left, h, w = sample_crop_box(height, width, self.scale, self.ratio, u[self._CROP : self._JITTER])
        # The crop is the only op on the full image: on uint8 (torch's antialiased uint8 resize, AVX2).
        x = image[:, top : top + h, left : left + w]
        if (h, w) != (self.size, self.size):
            x = torch.nn.functional.interpolate(
                x.unsqueeze(0),
                size=(self.size, self.size),
                mode="bilinear",
                antialias=True,
                align_corners=False,
            )[0]
        sigma = _uniform(u[self._SIGMA], *self.sigma)
        r = _blur_radius(sigma, self.size, self.size) if blur else 0
        plan = _WORKSPACE.blur_plan(3, self.size, self.size, r) if r >= 1 else None
        staging = plan.scratch if plan else _WORKSPACE.get("view_rgb", (3, self.size, self.size))
        x = staging.copy_(x.flip(-1) if flip else x)
        affine = self._from_uint8
        if jitter:
            ops = self.jitter.draw(u[self._JITTER : self._JITTER + ColorJitter.NUM_UNIFORMS])
            affine = ColorJitter._compose_affine(ops, affine, x.mean((1, 2)).tolist())
        if grey:
            affine = [_grey_row(affine)] * 3
        if permute:
            affine = [affine[i] for i in sorted(range(3), key=u[self._ORDER : self._ORDER + 3].__getitem__)]
        # Normalisation last: (M x + o - mean) / std.
        scale, shift = self._scale, self._shift
        affine = torch.tensor(
            [[r[0] * scale[i], r[1] * scale[i], r[2] * scale[i], r[3] * scale[i] + shift[i]]
             for i, r in enumerate(affine)], dtype=torch.float32,
        )  # fmt: skip
        matrix, offset = affine[:, :3], affine[:, 3]
        # Only the jitter can leave [0, 1]: grey and channel permutations are convex combinations of channels.
        if plan:
            # The colour map writes straight into the blur's padded buffer.
            apply_color_matrix(x, matrix, offset, out=plan.image)
            if jitter:
                self._clamp(plan.image)
            out = plan.run(_gaussian_taps(sigma, r))
        else:
            out = apply_color_matrix(x, matrix, offset)
            if jitter:
                self._clamp(out)
        if solarize:
            for c in range(3):
                torch.minimum(out[c], out[c].neg().add_(self._fold[c]), out=out[c])
        return out

    def _clamp(self, image: Tensor) -> Tensor:
        for c in range(3):  # per channel: a scalar clamp is several times faster than a broadcast one
            image[c].clamp_(self._low[c], self._high[c])
        return image


def make_view(size: int, scale: tuple[float, float], **kwargs: Any) -> View:
    """One view's pipeline (see :class:`View`)."""
    return View(size, scale, **kwargs)


@dataclass
class ViewRecipe:
    """Base class: ``__call__(image) -> list[Tensor]``; subclasses define ``views()``."""

    SMALL_IMAGE_DEFAULTS = {}

    size: int = 224
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD

    def __post_init__(self) -> None:
        self._views = self.views()

    def views(self) -> list[View]:
        raise NotImplementedError

    @property
    def num_views(self) -> int:
        return len(self._views)

    @property
    def decode_size(self) -> int:
        """Shorter image side that suffices for every view: a crop of the smallest scale still has ``size``
        pixels a side. The loader may decode JPEGs at a reduced size (PIL draft) down to this."""
        return max(math.ceil(size / math.sqrt(min_scale)) for size, min_scale in self._crop_specs())

    def _crop_specs(self) -> list[tuple[int, float]]:
        return [(self.size, getattr(self, "min_scale", 1.0))]

    def __call__(self, image: Any) -> list[Tensor]:
        image = to_uint8_tensor(image)
        return [view(image) for view in self._views]


@dataclass
class SimCLRViews(ViewRecipe):
    """SimCLR's two views (Chen et al., ICML 2020, appendix A). ``s`` is the colour-jitter strength."""

    SMALL_IMAGE_DEFAULTS = {"s": 0.5, "blur_p": 0.0}

    min_scale: float = 0.08
    s: float = 1.0
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    sigma: tuple[float, float] = (0.1, 2.0)
    n_views: int = 2

    def views(self) -> list[View]:
        s = self.s
        return [
            make_view(
                self.size, (self.min_scale, 1.0), jitter=(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s),
                jitter_p=self.jitter_p, grayscale_p=self.grayscale_p, blur_p=self.blur_p, sigma=self.sigma,
                mean=self.mean, std=self.std,
            )
            for _ in range(self.n_views)
        ]  # fmt: skip


@dataclass
class BYOLViews(ViewRecipe):
    """BYOL's two asymmetric views (Grill et al., NeurIPS 2020, table 6)."""

    SMALL_IMAGE_DEFAULTS = {"min_scale": 0.2, "blur_p": (0.0, 0.0)}

    min_scale: float = 0.08
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: tuple[float, float] = (1.0, 0.1)
    sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: tuple[float, float] = (0.0, 0.2)
    channel_permutation_p: float = 0.0

    def views(self) -> list[View]:
        return [
            make_view(
                self.size, (self.min_scale, 1.0), jitter=tuple(self.jitter), jitter_p=self.jitter_p,
                grayscale_p=self.grayscale_p, blur_p=self.blur_p[i], sigma=self.sigma,
                solarize_p=self.solarize_p[i], channel_permutation_p=self.channel_permutation_p,
                mean=self.mean, std=self.std,
            )
            for i in range(2)
        ]  # fmt: skip


@dataclass
class SimClustViews(BYOLViews):
    """SimClust's views (Ge et al., IEEE TIP 2023): BYOL's plus a random channel permutation (p=0.8)."""

    channel_permutation_p: float = 0.8


@dataclass
class MultiCropViews(ViewRecipe):
    """Multi-crop (SwAV, Caron et al. 2020): 2 global + ``n_local`` local crops; DINO's colour/blur recipe.

    Views come global first: ``[global_1, global_2, local_1, ..., local_N]``.
    """

    SMALL_IMAGE_DEFAULTS = {"global_scale": (0.3, 1.0), "local_scale": (0.1, 0.3), "blur_p": (0.0, 0.0, 0.0)}

    local_size: int | None = None
    """Local crop size; default ``round(size * 96 / 224)`` (96 for 224)."""
    n_local: int = 6
    global_scale: tuple[float, float] = (0.14, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.14)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.2, 0.1)
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: tuple[float, float, float] = (1.0, 0.1, 0.5)
    """Blur probability of global view 1, global view 2, local views."""
    sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: tuple[float, float, float] = (0.0, 0.2, 0.0)
    channel_permutation_p: float = 0.0

    @property
    def _local_size(self) -> int:
        return self.local_size or max(1, round(self.size * 96 / 224))

    def views(self) -> list[View]:
        def view(size: int, scale: tuple[float, float], i: int) -> View:
            return make_view(
                size, scale, jitter=tuple(self.jitter), jitter_p=self.jitter_p, grayscale_p=self.grayscale_p,
                blur_p=self.blur_p[i], sigma=self.sigma, solarize_p=self.solarize_p[i],
                channel_permutation_p=self.channel_permutation_p, mean=self.mean, std=self.std,
            )  # fmt: skip

        local = [view(self._local_size, self.local_scale, 2) for _ in range(self.n_local)]
        return [view(self.size, self.global_scale, 0), view(self.size, self.global_scale, 1), *local]

    def _crop_specs(self) -> list[tuple[int, float]]:
        return [(self.size, self.global_scale[0]), (self._local_size, self.local_scale[0])]


@dataclass
class LinearProbeViews(ViewRecipe):
    """One random-resized-crop + flip view: the standard linear-evaluation training augmentation."""

    min_scale: float = 0.08

    def views(self) -> list[View]:
        return [make_view(self.size, (self.min_scale, 1.0), mean=self.mean, std=self.std)]


VIEW_RECIPES: dict[str, type[ViewRecipe]] = {
    "simclr": SimCLRViews,
    "byol": BYOLViews,
    "simclust": SimClustViews,
    "multicrop": MultiCropViews,
    "linear_probe": LinearProbeViews,
}


def build_views(
    recipe: str, *, size: int = 224, small_image: bool | None = None, **params: Any
) -> ViewRecipe:
    """The view recipe ``recipe`` (a key of :data:`VIEW_RECIPES`) as a callable ``image -> list[Tensor]``.

    Args:
        recipe: ``simclr``, ``byol``, ``simclust``, ``multicrop`` or ``linear_probe``.
        size: Output side in pixels (global crops for ``multicrop``).
        small_image: Use the small-image defaults (no blur, larger crops); default: ``size <= 64``.
        **params: Fields of the recipe's dataclass, overriding the defaults (e.g. ``min_scale=0.2``).

    Example:
        >>> views = build_views("simclust", size=32)
        >>> [v.shape for v in views(PIL.Image.new("RGB", (40, 40)))]
        [torch.Size([3, 32, 32]), torch.Size([3, 32, 32])]
    """
    if recipe not in VIEW_RECIPES:
        raise ValueError(f"Unknown view recipe {recipe!r}; available: {sorted(VIEW_RECIPES)}.")
    cls = VIEW_RECIPES[recipe]
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise TypeError(f"View recipe {recipe!r} has no parameter(s) {unknown}; it has {sorted(names)}.")
    small = size <= SMALL_IMAGE_MAX_SIZE if small_image is None else small_image
    kwargs = {**(cls.SMALL_IMAGE_DEFAULTS if small else {}), **params}
    return cls(size=size, **kwargs)


@dataclass
class EvalTransform:
    """Resize the shorter side to ``resize`` and crop the centre ``size`` square; returns one float tensor."""

    size: int = 224
    resize: int | None = None
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    _pipeline: v2.Compose = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._pipeline = v2.Compose(
            [
                v2.Resize(self.resize_to, antialias=True),
                v2.CenterCrop(self.size),
                _ToFloat(),
                Normalize(self.mean, self.std),
            ]
        )

    @property
    def resize_to(self) -> int:
        return self.resize or self.size

    @property
    def decode_size(self) -> int:
        return self.resize_to

    def __call__(self, image: Any) -> Tensor:
        return self._pipeline(to_uint8_tensor(image))


def build_eval_transform(
    size: int = 224,
    *,
    crop_pct: float | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> EvalTransform:
    """Resize + centre crop for feature extraction and evaluation.

    ``crop_pct`` is the crop's share of the resized side: 0.875 (resize 256, crop 224, as in the ResNet
    evaluation protocol) by default, 1.0 (resize only) for small images (``size <= 64``).
    """
    if crop_pct is None:
        crop_pct = 1.0 if size <= SMALL_IMAGE_MAX_SIZE else 0.875
    return EvalTransform(size=size, resize=math.floor(size / crop_pct), mean=tuple(mean), std=tuple(std))
