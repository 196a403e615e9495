"""sslzoo.data view recipes: counts, shapes, dtypes, randomness, and the re-implemented ops."""

import itertools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as v2
import torchvision.transforms.v2.functional as F
from PIL import Image

from sslzoo.data import IMAGENET_MEAN, IMAGENET_STD, VIEW_RECIPES, build_eval_transform, build_views
from sslzoo.data.views import (
    _WORKSPACE,
    ColorJitter,
    GaussianBlur,
    View,
    _hue_rotation,
    _Workspace,
    adjust_hue,
    apply_color_matrix,
    gaussian_blur,
    sample_crop_box,
)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _image(w=80, h=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)


@pytest.mark.parametrize(
    ("recipe", "size", "params", "shapes"),
    [
        ("simclr", 32, {}, [32, 32]),
        ("byol", 48, {}, [48, 48]),
        ("simclust", 32, {}, [32, 32]),
        ("simclust", 96, {}, [96, 96]),
        ("multicrop", 64, {"n_local": 3}, [64, 64, 27, 27, 27]),
        ("multicrop", 64, {"n_local": 2, "local_size": 24}, [64, 64, 24, 24]),
        ("linear_probe", 32, {}, [32]),
    ],
)
def test_recipe_views(recipe, size, params, shapes):
    views = build_views(recipe, size=size, **params)
    torch.manual_seed(0)
    out = views(_image())
    assert [v.shape[-1] for v in out] == shapes and views.num_views == len(shapes)
    for v in out:
        assert v.dtype == torch.float32 and v.shape[:2] == (3, v.shape[-1]) and torch.isfinite(v).all()
    # Normalised with ImageNet statistics: the values span the normalised range of [0, 1].
    lo = min((0 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True))
    hi = max((1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True))
    assert all(v.min() >= lo - 1e-4 and v.max() <= hi + 1e-4 for v in out)
    assert not torch.equal(out[0], out[1]) if len(out) > 1 else True


def test_pil_inputs_of_any_mode_work():
    views = build_views("byol", size=32)
    base = Image.fromarray(_image().permute(1, 2, 0).numpy())
    for mode in ("RGB", "L", "P", "CMYK", "RGBA"):
        out = views(base.convert(mode))
        assert [tuple(v.shape) for v in out] == [(3, 32, 32)] * 2


def test_same_seed_same_views_and_defaults():
    views = build_views("simclust", size=32)
    torch.manual_seed(3)
    a = views(_image())
    torch.manual_seed(3)
    b = views(_image())
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    # Paper defaults at ImageNet size, small-image defaults at 32 px, explicit params win.
    big, small = build_views("byol"), build_views("byol", size=32)
    assert big.blur_p == (1.0, 0.1) and big.solarize_p == (0.0, 0.2) and big.min_scale == 0.08
    assert small.blur_p == (0.0, 0.0) and small.min_scale == 0.2
    assert build_views("byol", size=32, min_scale=0.5).min_scale == 0.5
    assert build_views("simclust").channel_permutation_p == 0.8 and big.channel_permutation_p == 0.0
    assert build_views("simclr").s == 1.0 and build_views("simclr", size=32).s == 0.5
    assert set(VIEW_RECIPES) >= {"simclr", "byol", "simclust", "multicrop"}
    with pytest.raises(ValueError, match="Unknown view recipe 'nope'"):
        build_views("nope")
    with pytest.raises(TypeError, match="no parameter"):
        build_views("byol", blurr_p=0.1)


def test_channel_permutation_permutes_channels():
    # With no other colour op and a full-image crop, a SimClust view is a channel permutation of the image.
    views = build_views(
        "simclust", size=16, min_scale=1.0, jitter_p=0.0, grayscale_p=0.0, solarize_p=(0, 0), blur_p=(0, 0),
        channel_permutation_p=1.0, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
    )  # fmt: skip
    img = torch.zeros(3, 16, 16, dtype=torch.uint8)
    img[0], img[1], img[2] = 10, 120, 250
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        for v in views(img):
            values = tuple(round(((v[c].mean().item() * 0.5) + 0.5) * 255) for c in range(3))
            assert sorted(values) == [10, 120, 250]
            seen.add(values)
    assert len(seen) > 2


def test_adjust_hue_matches_torchvision():
    x = _image(37, 23).float() / 255
    for h in (-0.5, -0.1, 0.03, 0.25, 0.5):
        assert torch.allclose(adjust_hue(x, h), F.adjust_hue(x, h), atol=1e-5)
    grey = torch.full((3, 4, 4), 0.4)
    assert torch.allclose(adjust_hue(grey, 0.3), grey)


def test_gaussian_blur_close_to_torchvision():
    x = _image(64, 48).float() / 255
    for sigma in (0.3, 1.0, 2.0):
        ours = GaussianBlur((sigma, sigma))(x)
        ref = F.gaussian_blur(x, [23, 23], [sigma, sigma])
        assert (ours - ref).abs().max() < 2e-3
        assert ours.shape == x.shape and abs(ours.mean() - x.mean()) < 1e-2


def test_eval_transform():
    t = build_eval_transform(224)
    assert t.resize_to == 256
    img = torch.zeros(3, 300, 400, dtype=torch.uint8)
    img[:, 150 - 5 : 150 + 5, 200 - 5 : 200 + 5] = 255  # a white square at the centre survives the crop
    out = t(img)
    assert out.shape == (3, 224, 224) and out.dtype == torch.float32
    assert out[:, 112, 112].tolist() == pytest.approx(
        [(1 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)], abs=1e-3
    )
    small = build_eval_transform(32)
    assert small.resize_to == 32 and small(Image.new("L", (8, 8))).shape == (3, 32, 32)


def test_decode_size_bounds_smallest_crop():
    views = build_views("byol", size=224)
    assert views.decode_size == math.ceil(224 / math.sqrt(0.08))


def _near_grey(seed=0, h=24, w=20):
    # Colours within 0.1 of mid-grey: no jitter below leaves [0, 1], so torchvision's clamps are no-ops.
    g = torch.Generator().manual_seed(seed)
    return 0.5 + 0.1 * (2 * torch.rand(3, h, w, generator=g) - 1)


def _fused(x, ops):
    mean = x.mean((1, 2)).double().numpy()
    matrix, offset = ColorJitter.compose(
        ops, torch.eye(3).double().numpy(), torch.zeros(3).double().numpy(), mean
    )
    return apply_color_matrix(x, matrix, offset)


def test_fused_jitter_equals_torchvision_sequence_without_clamping():
    tv = {"brightness": F.adjust_brightness, "contrast": F.adjust_contrast, "saturation": F.adjust_saturation}
    x = _near_grey()
    g = torch.Generator().manual_seed(1)
    for order in itertools.permutations(tv):
        factors = (0.6 + 0.8 * torch.rand(3, generator=g)).tolist()
        ops = list(zip(order, factors, strict=True))
        ref = x
        for name, f in ops:
            ref = tv[name](ref, f)
        assert 0 < ref.min() and ref.max() < 1  # the premise: torchvision clamped nothing
        assert torch.allclose(_fused(x, ops), ref, atol=1e-5)


def _hsv_hue(x):
    """HSV hue in turns (the textbook formula, independent of both implementations)."""
    maxc, argmax = x.max(0)
    delta = maxc - x.min(0).values
    r, g, b = x
    sixths = torch.stack([((g - b) / delta) % 6, (b - r) / delta + 2, (r - g) / delta + 4])
    return sixths.gather(0, argmax[None])[0] / 6


def test_fused_hue_approximates_hsv_hue():
    x = _near_grey(seed=2)
    # A third of a turn is the cyclic channel shift in both colour models: exact on any image.
    full = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(3))
    for h in (1 / 3, -1 / 3):
        assert torch.allclose(_fused(full, [("hue", h)]), F.adjust_hue(full, h), atol=1e-5)
    # In between, the HSV hue of the result is shifted by h up to the hexagon-vs-circle warp (< 0.01 turn);
    # saturation and value differ (HSV keeps max and min, the rotation keeps the mean), by < 0.06 here.
    for h in (-0.1, -0.05, 0.05, 0.1):
        ours = _fused(x, [("hue", h)])
        shift = (_hsv_hue(ours) - _hsv_hue(x) - h + 0.5) % 1 - 0.5
        assert shift.abs().max() < 0.01 and (ours - F.adjust_hue(x, h)).abs().max() < 0.06
    # Hue rotation keeps greys grey.
    grey = torch.full((3, 4, 4), 0.3)
    assert torch.allclose(_fused(grey, [("hue", 0.2)]), grey, atol=1e-6)


def test_color_jitter_module_clamps_once_and_stays_in_range():
    x = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(4))
    torch.manual_seed(0)
    out = ColorJitter(0.4, 0.4, 0.2, 0.1)(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1 and not torch.equal(out, x)
    with pytest.raises(ValueError, match="hue must be"):
        ColorJitter(hue=0.7)


def _unnormalise(v, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    return v * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)


@pytest.mark.parametrize("sigma", [0.4, 1.5])
def test_fused_view_matches_sequential_torchvision_ops(sigma):
    # Full-image crop at the image size (an identity resize), no flip, no jitter: the fused matrix/clamp/blur/
    # solarise/permute/normalise path against torchvision's ops in the papers' order.
    img = _image(32, 32, seed=5)
    x = img.float() / 255
    ref = F.solarize(F.gaussian_blur(x, [23, 23], [sigma, sigma]), 0.5)
    common = dict(ratio=(1.0, 1.0), flip_p=0.0, blur_p=1.0, sigma=(sigma, sigma), solarize_p=1.0)
    torch.manual_seed(0)
    permuted = View(32, (1.0, 1.0), channel_permutation_p=1.0, **common)(img)
    errors = [(permuted - F.normalize(ref[list(p)], IMAGENET_MEAN, IMAGENET_STD)).abs().max() for p in
              itertools.permutations(range(3))]  # fmt: skip
    assert min(errors) < 5e-3
    grey = View(32, (1.0, 1.0), grayscale_p=1.0, **common)(img)
    ref_grey = F.solarize(F.gaussian_blur(F.rgb_to_grayscale(x, 3), [23, 23], [sigma, sigma]), 0.5)
    assert (grey - F.normalize(ref_grey, IMAGENET_MEAN, IMAGENET_STD)).abs().max() < 5e-3
    plain = View(32, (1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0)(img)
    assert torch.allclose(plain, F.normalize(x, IMAGENET_MEAN, IMAGENET_STD), atol=1e-5)


def test_view_jitter_uses_the_crop_statistics():
    # Contrast keeps the grey mean of its input; brightness scales every pixel by one factor in [0.6, 1.4].
    img = (_near_grey(seed=6, h=32, w=32) * 255).round().to(torch.uint8)
    x = img.float() / 255
    grey = torch.tensor([0.2989, 0.587, 0.114]).view(3, 1, 1)
    for seed in range(4):
        torch.manual_seed(seed)
        out = _unnormalise(
            View(32, (1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0, jitter=(0, 0.4, 0, 0), jitter_p=1.0)(img)
        )
        assert not torch.allclose(out, x, atol=1e-3)
        assert (out * grey).sum(0).mean() == pytest.approx((x * grey).sum(0).mean().item(), abs=1e-4)
        torch.manual_seed(seed)
        out = _unnormalise(
            View(32, (1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0, jitter=(0.4, 0, 0, 0), jitter_p=1.0)(img)
        )
        ratio = out / x
        assert 0.6 - 1e-4 <= ratio.mean() <= 1.4 + 1e-4 and (ratio - ratio.mean()).abs().max() < 1e-4


def test_crop_box_respects_scale_ratio_and_bounds():
    g = torch.Generator().manual_seed(0)
    scale, ratio = (0.08, 1.0), (3 / 4, 4 / 3)
    for height, width in ((375, 500), (32, 32), (8, 300)):
        for _ in range(200):
            top, left, h, w = sample_crop_box(
                height, width, scale, ratio, torch.rand(22, generator=g).tolist()
            )
            assert 0 <= top <= height - h and 0 <= left <= width - w and h > 0 and w > 0
            if (h, w) != (height, width) and min(height, width) >= 32:  # not the fallback; rounding: 1 px
                assert scale[0] - 0.02 <= h * w / (height * width) <= scale[1] + 0.02
                assert ratio[0] * (1 - 0.05) <= w / h <= ratio[1] * (1 + 0.05)
    # Extreme uniforms stay inside the image.
    assert sample_crop_box(10, 10, (1.0, 1.0), (1.0, 1.0), [0.999999] * 22) == (0, 0, 10, 10)
    # No attempt can fit (an area larger than the image): torchvision's fallback, the centre crop clipped
    # to the ratio range.
    for height, width, ratio in ((100, 400, (3 / 4, 4 / 3)), (400, 100, (3 / 4, 4 / 3)), (90, 100, (0.5, 2))):
        box = sample_crop_box(height, width, (2.0, 3.0), ratio, torch.rand(22, generator=g).tolist())
        ref = v2.RandomResizedCrop(8, scale=(2.0, 3.0), ratio=ratio).make_params(
            [torch.zeros(3, height, width)]
        )
        assert box == (ref["top"], ref["left"], ref["height"], ref["width"])


def test_views_do_not_alias_scratch_buffers():
    # Views are built in per-thread scratch buffers; what a call returns must survive the next calls.
    views = build_views("byol", size=48, small_image=False)  # blur on view 1: the buffered path
    img = _image(64, 64)
    torch.manual_seed(0)
    first = views(img)
    kept = [v.clone() for v in first]
    for seed in range(5):
        torch.manual_seed(seed + 1)
        views(img)
        gaussian_blur(torch.rand(3, 48, 48), 1.5)
    assert all(torch.equal(a, b) for a, b in zip(first, kept, strict=True))
    x = torch.rand(3, 30, 40)
    a = gaussian_blur(x, 1.0)
    b = gaussian_blur(x.flip(-1), 1.0)
    assert torch.equal(a, gaussian_blur(x, 1.0)) and not torch.equal(a, b)


def test_views_are_thread_safe():
    # Deterministic views (full crop, fixed sigma, no coin flips) through the buffered blur, in 4 threads at
    # once with sigmas of one blur radius (one shape of scratch buffers): each thread has its own buffers, so
    # results equal sequential ones.
    images = [_image(60, 50, seed=s) for s in range(16)]

    def run(i):
        view = View(40, (1.0, 1.0), ratio=(1.0, 1.0), flip_p=0.0, blur_p=1.0, sigma=(1.05 + 0.09 * i,) * 2)
        return [view(img) for img in images]

    expected = [run(i) for i in range(4)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(run, range(4)))
    assert all(
        torch.equal(a, b) for e, g in zip(expected, got, strict=True) for a, b in zip(e, g, strict=True)
    )
    assert not torch.equal(expected[0][0], expected[3][0])


def test_hue_rotation_is_rodrigues_rotation_and_plan_cache_bound():
    axis = np.ones(3) / math.sqrt(3)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    for h in (-0.5, -0.1, 0.0, 0.07, 0.33):
        theta = 2 * math.pi * h
        expected = (
            math.cos(theta) * np.eye(3)
            + math.sin(theta) * cross
            + (1 - math.cos(theta)) * np.outer(axis, axis)
        )
        rotation = np.array(_hue_rotation(h))
        assert np.allclose(rotation, expected, atol=1e-12) and np.allclose(rotation @ rotation.T, np.eye(3))
    for size in range(10, 10 + 2 * _Workspace.MAX_PLANS):
        gaussian_blur(torch.rand(3, size, size), 1.0)
    assert len(_WORKSPACE.plans) <= _Workspace.MAX_PLANS
