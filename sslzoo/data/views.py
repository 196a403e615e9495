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
3x3 matrices and applied in one matrix product with one clamp; the blur (separable, kernel truncated at
3 sigma) and the solarisation (``min(x, 1 - x)``) run on the normalised result.

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
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2 as v2
import torchvision.transforms.v2.functional as F
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
_GREY = np.array([0.2989, 0.587, 0.114])
_TO_GREY = np.outer(np.ones(3), _GREY)


def _hue_rotation(hue_factor: float) -> np.ndarray:
    """Rotation by ``hue_factor`` turns about the grey axis ``(1, 1, 1) / sqrt(3)`` (Rodrigues' formula).

    HSV's hue is the angle around that axis, measured on a hexagon; this rotates on a circle, so it shifts
    the hue by the same angle at the primaries and secondaries and by up to a few degrees less or more in
    between, and it keeps the RGB mean where HSV keeps max and min.
    """
    theta = 2 * math.pi * hue_factor
    cos, sin = math.cos(theta), math.sin(theta)
    cross = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]]) / math.sqrt(3)
    return cos * np.eye(3) + sin * cross + (1 - cos) / 3 * np.ones((3, 3))


def apply_color_matrix(image: Tensor, matrix: np.ndarray, offset: np.ndarray) -> Tensor:
    """``matrix @ pixel + offset`` for every pixel of a float ``[3, H, W]`` image, in one pass."""
    m = torch.from_numpy(np.asarray(matrix, dtype=np.float32))
    t = torch.from_numpy(np.asarray(offset, dtype=np.float32)).view(3, 1)
    return torch.addmm(t, m, image.reshape(3, -1)).view(image.shape)


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

    @staticmethod
    def _factor(strength: float) -> float:
        return float(torch.empty(1).uniform_(max(0.0, 1 - strength), 1 + strength))

    def draw(self) -> list[tuple[str, float]]:
        """The ops of one jitter, in random order, with their random factors (hue: in turns)."""
        ops = []
        for op in torch.randperm(4).tolist():
            if op == 0 and self.brightness > 0:
                ops.append(("brightness", self._factor(self.brightness)))
            elif op == 1 and self.contrast > 0:
                ops.append(("contrast", self._factor(self.contrast)))
            elif op == 2 and self.saturation > 0:
                ops.append(("saturation", self._factor(self.saturation)))
            elif op == 3 and self.hue > 0:
                ops.append(("hue", float(torch.empty(1).uniform_(-self.hue, self.hue))))
        return ops

    @staticmethod
    def compose(
        ops: Sequence[tuple[str, float]], matrix: np.ndarray, offset: np.ndarray, mean_rgb: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Compose ``ops`` (as from :meth:`draw`) after the affine map ``x -> matrix @ x + offset``.

        ``mean_rgb`` is the per-channel mean of the map's input (contrast blends with the grey mean of
        its own input, which an affine map carries along). Returns the new ``(matrix, offset)``.
        """
        for name, f in ops:
            if name == "brightness":
                matrix, offset = f * matrix, f * offset
            elif name == "contrast":
                grey_mean = _GREY @ (matrix @ mean_rgb + offset)
                matrix, offset = f * matrix, f * offset + (1 - f) * grey_mean
            elif name in ("saturation", "hue"):
                m = f * np.eye(3) + (1 - f) * _TO_GREY if name == "saturation" else _hue_rotation(f)
                matrix, offset = m @ matrix, m @ offset
            else:
                raise ValueError(f"Unknown colour op {name!r}; expected brightness/contrast/saturation/hue.")
        return matrix, offset

    def sample(
        self, matrix: np.ndarray, offset: np.ndarray, mean_rgb: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw a jitter and compose it after ``x -> matrix @ x + offset`` (see :meth:`compose`)."""
        return self.compose(self.draw(), matrix, offset, mean_rgb)

    def forward(self, image: Tensor) -> Tensor:
        """Jitter a float RGB image ``[3, H, W]`` in [0, 1]."""
        mean = image.mean((1, 2)).double().numpy()
        matrix, offset = self.sample(np.eye(3), np.zeros(3), mean)
        return apply_color_matrix(image, matrix, offset).clamp_(0.0, 1.0)


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of a float ``[C, H, W]`` image, kernel truncated at 3 sigma, reflect padding.

    Differs from ``F.gaussian_blur(image, [23, 23], [sigma, sigma])`` (fixed 23 taps) by < 1e-3 on [0, 1]
    images. The kernel sums to 1 and the padding reflects, so the blur commutes with per-channel affine maps
    (e.g. normalisation).
    """
    r = min(max(1, math.ceil(3 * sigma)), min(image.shape[-2:]) - 1)
    if r < 1:
        return image
    xs = np.arange(-r, r + 1, dtype=np.float64)
    w = np.exp(-0.5 * (xs / sigma) ** 2)
    weights = (w / w.sum()).tolist()
    return _blur_1d(_blur_1d(image, weights, -1), weights, -2)


def _blur_1d(x: Tensor, weights: list[float], dim: int) -> Tensor:
    # Shifted multiply-adds beat conv2d/conv1d (depthwise, 2-4x slower on one CPU thread) at these sizes.
    r = len(weights) // 2
    n = x.shape[dim]
    pad = (r, r, 0, 0) if dim == -1 else (0, 0, r, r)
    p = torch.nn.functional.pad(x.unsqueeze(0), pad, mode="reflect")[0]
    out = p.narrow(dim, 0, n) * weights[0]
    for i in range(1, len(weights)):
        out.add_(p.narrow(dim, i, n), alpha=weights[i])
    return out


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
    """

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
        self.size = size
        self.crop = v2.RandomResizedCrop(size, scale=tuple(scale), ratio=tuple(ratio), antialias=True)
        self.jitter = ColorJitter(*jitter) if any(jitter) else None
        self.blur = GaussianBlur(sigma)
        jitter_p = jitter_p if self.jitter else 0.0
        self.p = (flip_p, jitter_p, grayscale_p, blur_p, solarize_p, channel_permutation_p)
        mean, std = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
        self._scale, self._shift = 1 / std, -mean / std
        self._low, self._high = (-mean / std).tolist(), ((1 - mean) / std).tolist()
        self._fold = ((1 - 2 * mean) / std).tolist()  # solarisation's 1 - x, normalised

    def forward(self, image: Tensor) -> Tensor:
        flip, jitter, grey, blur, solarize, permute = (
            u < p for u, p in zip(torch.rand(6).tolist(), self.p, strict=True)
        )
        # The crop is the only op on the full image: on uint8 (torch's antialiased uint8 resize).
        x = F.resized_crop(image, **self.crop.make_params([image]), size=[self.size] * 2, antialias=True)
        x = (x.flip(-1) if flip else x).to(torch.float32)
        matrix, offset = np.eye(3) / 255.0, np.zeros(3)
        if jitter:
            matrix, offset = self.jitter.sample(matrix, offset, x.mean((1, 2)).double().numpy())
        if grey:
            matrix, offset = _TO_GREY @ matrix, _TO_GREY @ offset
        if permute:
            order = torch.randperm(3).tolist()
            matrix, offset = matrix[order], offset[order]
        out = apply_color_matrix(x, self._scale[:, None] * matrix, self._scale * offset + self._shift)
        for c in range(3):  # per channel: a scalar clamp is several times faster than a broadcast one
            out[c].clamp_(self._low[c], self._high[c])
        if blur:
            out = self.blur(out)
        if solarize:
            for c in range(3):
                torch.minimum(out[c], out[c].neg().add_(self._fold[c]), out=out[c])
        return out


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
