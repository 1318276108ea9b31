"""Image perturbations: range, monotone severities, layouts, known answers, bad input, a CNN."""

from __future__ import annotations

import importlib.util
import io
import itertools
from typing import Any

import numpy as np
import pytest

import perturbkit as pk
from perturbkit import perturbations as P
from perturbkit.exceptions import DataError, ParameterError
from perturbkit.perturbations import image as im

torch = pytest.importorskip("torch")

NAMES = P.list("image")


def _downscale(a: np.ndarray, f: int) -> np.ndarray:
    n, h, w, c = a.shape
    h2, w2 = h // f, w // f
    return a[:, : h2 * f, : w2 * f].reshape(n, h2, f, w2, f, c).mean(axis=(2, 4))


@pytest.fixture(scope="module")
def photos() -> np.ndarray:
    """scikit-learn's two sample photos (china, flower), 61×91, float32 NCHW in [0, 1]."""
    from sklearn.datasets import load_sample_images

    imgs = np.stack(load_sample_images().images).astype(np.float64) / 255.0
    return np.ascontiguousarray(_downscale(imgs, 7).transpose(0, 3, 1, 2)).astype(np.float32)


def _change(p: P.Perturbation, X: np.ndarray, s: float, seed: int = 0) -> float:
    return float(np.abs(np.asarray(p(X, s, seed), np.float64) - X).mean())


# -- range, dtype, layout ---------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_valid_range_dtype_and_shape_kept(name: str, photos: np.ndarray) -> None:
    p = P.get(name)
    extremes = np.concatenate([np.zeros_like(photos[:1]), np.ones_like(photos[:1]), photos])
    for dtype in (np.float32, np.float64):
        X = extremes.astype(dtype)
        for s in (0.5, 1.0, 2.5, 5.0):
            out = p(X, s, 0)
            assert out.dtype == dtype and out.shape == X.shape, (name, s)
            assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0, (name, s)


@pytest.mark.parametrize("name", [n for n in NAMES if P.get(n).in_range])
def test_no_clip_pass_needed_where_in_range_is_claimed(name: str) -> None:
    # in_range skips the clip: values just under 1 and just over 0, small and large images
    rng = np.random.default_rng(3)
    choices = np.array([0.0, 1.0, np.nextafter(1, 0), 1e-38, 0.5], dtype=np.float32)
    for shape in [(64, 3, 32, 32), (2, 3, 300, 200)]:
        X = choices[rng.integers(0, choices.size, shape)]
        X[:, :, shape[2] // 3 :] = np.nextafter(np.float32(1), np.float32(0))
        for s in (0.7, 3.0, 5.0):
            out = P.get(name)(X, s, 1)
            assert out.min() >= 0.0 and out.max() <= 1.0, (name, shape, s)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_unit_range_check_by_bit_pattern_is_exact(dtype: type) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp

    width = np.dtype(dtype).itemsize * 8
    near = [0.0, -0.0, 1.0, np.nextafter(dtype(1), dtype(2)), np.nextafter(dtype(0), dtype(-1))]
    elements = st.one_of(
        st.floats(0.0, 1.0, width=width),
        st.floats(width=width),  # any value: NaN, infinities, subnormals, negatives
        st.sampled_from([dtype(v) for v in near]),
    )

    @settings(max_examples=300, deadline=None)
    @given(hnp.arrays(dtype, hnp.array_shapes(min_dims=1, max_dims=3), elements=elements))
    def check(a: np.ndarray) -> None:
        want = bool(np.all((a >= 0) & (a <= 1)))
        assert im._in_unit_range(a) is want
        if a.ndim > 1:  # strided views too
            assert im._in_unit_range(a.T) is want

    check()


@pytest.mark.parametrize("name", NAMES)
def test_severity_is_monotone_on_real_photos(name: str, photos: np.ndarray) -> None:
    p = P.get(name)
    changes = [_change(p, photos, s) for s in (1, 2, 3, 4, 5)]
    assert all(b > a for a, b in itertools.pairwise(changes)), (name, changes)
    assert changes[0] > 0.005, (name, changes)  # severity 1 is visible
    # fractional severities interpolate: 1.5 lies between 1 and 2 (up to draw noise)
    mid = _change(p, photos, 1.5)
    assert changes[0] - 1e-3 <= mid <= changes[1] + 1e-3, (name, changes[:2], mid)


@pytest.mark.parametrize("name", NAMES)
def test_nhwc_layout_gives_the_nchw_result(name: str, photos: np.ndarray) -> None:
    X = photos[:, :, :20, :24]
    a = P.get(name)(X, 3.0, 7)
    b = P.get(name, layout="NHWC")(np.ascontiguousarray(X.transpose(0, 2, 3, 1)), 3.0, 7)
    assert b.shape == (2, 20, 24, 3)
    np.testing.assert_allclose(b.transpose(0, 3, 1, 2), a, atol=2e-6)


@pytest.mark.parametrize("name", NAMES)
def test_torch_tensors_come_back_as_tensors(name: str, photos: np.ndarray) -> None:
    X = photos[:, :, :16, :16]
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        t = torch.from_numpy(X).to(dtype)
        out = P.get(name)(t, 2.0, 3)
        assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.shape == t.shape
    out = P.get(name)(torch.from_numpy(X), 2.0, 3)
    np.testing.assert_array_equal(out.numpy(), P.get(name)(X, 2.0, 3))


@pytest.mark.parametrize("name", NAMES)
def test_rows_do_not_depend_on_the_batch(name: str, photos: np.ndarray) -> None:
    """apply on a batch equals apply on its parts: the engine may join or split blocks."""
    X = np.concatenate([photos, photos[:, :, ::-1], photos[:, :, :, ::-1]])[:, :, :32, :40]
    p = P.get(name)
    params = p.sample(X, np.random.default_rng(0))

    def rows(a: object, sl: slice) -> object:
        return None if a is None else a[sl]

    whole = p.apply(X, params, 2.5)
    parts = [p.apply(X[sl], rows(params, sl), 2.5) for sl in (slice(0, 1), slice(1, 6))]
    np.testing.assert_array_equal(whole, np.concatenate(parts))


@pytest.mark.parametrize("name", ["rotation", "translation", "zoom", "elastic_transform"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("channels", [1, 3])
def test_small_image_chunks_are_image_by_image(name: str, layout: str, channels: int) -> None:
    """The chunk loops for small images (maps for a chunk at once, one call per image)
    give each image's bits as the one-image path does."""
    X = np.random.default_rng(4).random((70, channels, 100, 90)).astype(np.float32)  # chunks
    X = np.ascontiguousarray(X.transpose(0, 2, 3, 1)) if layout == "NHWC" else X
    p = P.get(name, layout=layout)
    params = p.sample(X, np.random.default_rng(1))
    whole = p.apply(X, params, 3.5)
    ones = [p.apply(X[i : i + 1], params[i : i + 1], 3.5) for i in range(X.shape[0])]
    np.testing.assert_array_equal(whole, np.concatenate(ones))


@pytest.mark.parametrize(
    ("n", "step", "workers"), [(256, 85, 2), (7, 3, 2), (1000, 9, 3), (5, 1, 2)]
)
def test_balanced_chunks_cover_the_batch_once_in_equal_shares(
    n: int, step: int, workers: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from concurrent.futures import Future

    shares: list[list[tuple[int, int]]] = []

    class Recorder:  # runs each share at once, recording its chunks
        def submit(self, fn: Any, part: list[int]) -> Future:
            shares.append([])
            fn(part)
            done: Future = Future()
            done.set_result(None)
            return done

    monkeypatch.setattr(im, "_workers", lambda: workers)
    monkeypatch.setattr(im, "_pool", lambda k: Recorder())
    sizes = {}
    for balance in (False, True):
        shares.clear()
        im._each_chunk(lambda a, b: shares[-1].append((a, b)), n, step, balance=balance)
        chunks = sorted(c for share in shares for c in share)
        assert [lo for lo, _ in chunks] == [0] + [hi for _, hi in chunks[:-1]]
        assert chunks[-1][1] == n and all(0 < hi - lo <= step for lo, hi in chunks)
        assert len(shares) == min(workers, -(-n // step))
        sizes[balance] = [sum(hi - lo for lo, hi in share) for share in shares]
        longest = max(hi - lo for lo, hi in chunks)
    assert max(sizes[True]) <= max(sizes[False]) and sum(sizes[True]) == n
    assert max(sizes[True]) - min(sizes[True]) <= longest  # at most one chunk apart
    if (n, step) == (256, 85):
        assert sizes == {False: [170, 86], True: [128, 128]}


@pytest.mark.parametrize(("n", "size"), [(400, 20), (40, 70), (3, 300)])
def test_threads_give_the_same_bits(n: int, size: int) -> None:
    """Batch-level work on OpenCV's thread count: one thread or two, the same output.

    Every shape spans several cache-sized chunks (many small images per chunk;
    one large image per chunk), so two threads do share the work.
    """
    cv2 = pytest.importorskip("cv2")
    X = np.random.default_rng(8).random((n, 3, size, size + 3)).astype(np.float32)
    before = cv2.getNumThreads()
    try:
        results = {}
        for threads in (1, 2):
            cv2.setNumThreads(threads)
            assert im._workers() == threads
            results[threads] = {name: P.get(name)(X, 2.5, 4) for name in NAMES}
    finally:
        cv2.setNumThreads(before)
    for name in NAMES:
        np.testing.assert_array_equal(results[1][name], results[2][name], err_msg=name)


@pytest.mark.skipif(
    not (importlib.util.find_spec("torch") and __import__("torch").cuda.is_available()),
    reason="needs a CUDA device",
)
def test_cuda_tensors_come_back_on_their_device() -> None:  # pragma: no cover - GPU only
    import torch

    X = torch.rand(3, 3, 20, 23, generator=torch.Generator().manual_seed(0)).cuda()
    for name in NAMES:
        out = P.get(name)(X, 2.5, 4)
        assert out.device == X.device and out.dtype == X.dtype and out.shape == X.shape
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        torch.testing.assert_close(out.cpu(), P.get(name)(X.cpu(), 2.5, 4), rtol=0, atol=0)


# -- known answers ----------------------------------------------------------------------
def test_gaussian_noise_has_the_tabled_sigma_and_shares_draws() -> None:
    X = np.full((4, 3, 32, 32), 0.5)
    p = P.get("image_gaussian_noise")
    d1 = p(X, 1, 0) - X
    d3 = p(X, 3, 0) - X
    assert np.std(d1) == pytest.approx(0.08, rel=0.03)
    # common random numbers: the same standard draws, scaled (where nothing was clipped)
    ok = (np.abs(d3) < 0.49) & (np.abs(d1) < 0.49)
    np.testing.assert_allclose(d3[ok] / 0.18, d1[ok] / 0.08, atol=1e-5)


@pytest.mark.parametrize("width", [20_001, 100_001])  # 2¹⁶ draws or fewer: from rng; more: streams
def test_standard_normal_draws_are_standard_normal_and_seeded(width: int) -> None:
    from scipy import stats

    z = im._standard_normal(np.random.default_rng(11), (3, width))  # odd count
    assert z.dtype == np.float32 and z.shape == (3, width)
    flat = z.ravel().astype(np.float64)
    assert abs(flat.mean()) < 0.01 and abs(flat.std() - 1.0) < 0.01
    assert stats.kstest(flat, "norm").pvalue > 0.01
    half = flat.size // 2  # the cosine and the sine halves of the Box–Muller pairs
    assert stats.kstest(flat[:half], flat[half:]).pvalue > 0.01
    assert abs(np.corrcoef(flat[:half], flat[half : 2 * half])[0, 1]) < 0.01
    np.testing.assert_array_equal(z, im._standard_normal(np.random.default_rng(11), (3, width)))
    assert not np.array_equal(z, im._standard_normal(np.random.default_rng(12), (3, width)))


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_tone_changes_are_the_torch_formulas_bit_for_bit(layout: str, dtype: type) -> None:
    """numpy over chunks on the pool, one float32 op at a time: the same bits as the torch
    formulas on the whole batch (brightness version 1, contrast version 2; black pixels
    kept)."""
    torch = pytest.importorskip("torch")
    X = np.random.default_rng(0).random((7, 3, 40, 41)).astype(dtype)
    X[0, :, :3, :3] = 0.0
    x = torch.from_numpy(X.astype(np.float32))
    v = x.amax(dim=1, keepdim=True)
    v_new = (v + im._interp(2.5, 0.0, im.Brightness.TABLE)).clamp(max=1.0)
    bright = torch.where(v > 0, x * (v_new / v.clamp(min=1e-12)), v_new).clamp(0.0, 1.0)
    mu = torch.from_numpy(X.reshape(7, 3, -1).mean(axis=2, dtype=np.float64).astype(np.float32))
    want = {"brightness": bright}
    c = im._interp(1.5, 1.0, im.Contrast.TABLE)
    c32 = torch.tensor(c, dtype=torch.float32)
    want["contrast"] = x * c32 + mu[:, :, None, None] * (1 - c32)  # no clamp: in [0, 1]
    severity = {"brightness": 2.5, "contrast": 1.5}
    for name, expected in want.items():
        Xl = np.ascontiguousarray(X.transpose(0, 2, 3, 1)) if layout == "NHWC" else X
        out = P.get(name, layout=layout)(Xl, severity[name], 0)
        out = out.transpose(0, 3, 1, 2) if layout == "NHWC" else out
        np.testing.assert_array_equal(out, expected.numpy().astype(dtype), err_msg=name)


@pytest.mark.parametrize("name", ["image_gaussian_noise", "shot_noise", "impulse_noise"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize(
    "shape", [(2, 3, 300, 303), (3, 1, 301, 303), (400, 3, 20, 23), (7, 1, 64, 65), (1, 3, 9, 9)]
)
def test_one_shot_noise_is_sample_then_apply(name: str, layout: str, shape: tuple) -> None:
    """A call draws and applies block by block (float32 NCHW, large batches): the bits of
    sample then apply, and the generator is left in the same state."""
    p = P.get(name, layout=layout)
    X = np.random.default_rng(1).random(shape).astype(np.float32)
    if layout == "NHWC":
        X = np.ascontiguousarray(X.transpose(0, 2, 3, 1))
    r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(p(X, 2.5, r1), p.apply(X, p.sample(X, r2), 2.5))
    assert r1.integers(2**62) == r2.integers(2**62)
    assert p._fusable(X) == (layout == "NCHW" and X.size > p.per_word * im._STREAM_WORDS)


def test_unit_interval_is_k_plus_half_over_2_23_for_every_k() -> None:
    k = np.arange(2**23, dtype=np.uint32)
    words = (k << np.uint32(9)) | np.uint32(0x1FF)  # the low 9 bits are ignored
    want = ((k.astype(np.float64) + 0.5) * 2.0**-23).astype(np.float32)
    np.testing.assert_array_equal(im._unit_interval(words), want)
    np.testing.assert_array_equal(im._unit_interval(k << np.uint32(9)), want)


def test_shot_noise_scales_with_brightness_and_keeps_black() -> None:
    X = np.concatenate([np.zeros((1, 1, 64, 64)), np.full((1, 1, 64, 64), 0.5)])
    out = P.get("shot_noise")(X, 1, 0)  # 60 photons per unit: Poisson(30) / 60
    assert np.all(out[0] == 0.0)
    assert np.std(out[1] - 0.5) == pytest.approx(np.sqrt(0.5 / 60), rel=0.05)


def test_impulse_noise_replaces_the_tabled_fraction_and_masks_nest() -> None:
    X = np.full((2, 3, 64, 64), 0.5, dtype=np.float32)
    p = P.get("impulse_noise")
    hit = {s: p(X, s, 1) != 0.5 for s in (1, 5)}
    assert hit[1].mean() == pytest.approx(0.03, abs=0.005)
    assert hit[5].mean() == pytest.approx(0.27, abs=0.01)
    assert np.all(hit[5][hit[1]])  # what is hit at severity 1 is hit at 5
    out = p(X, 5, 1)
    assert set(np.unique(out)) == {0.0, 0.5, 1.0}


def test_brightness_and_contrast_follow_imagenet_c() -> None:
    black = np.zeros((1, 3, 4, 4))
    np.testing.assert_allclose(P.get("brightness")(black, 2, 0), 0.2, atol=1e-7)
    X = np.random.default_rng(0).random((2, 3, 8, 8))
    out = P.get("contrast")(X, 3, 0)
    mu = X.mean(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(out, (X - mu) * 0.2 + mu, atol=1e-6)


def test_saturation_moves_one_way_and_hue_keeps_grey() -> None:
    X = np.random.default_rng(0).random((2, 3, 8, 8))
    spread = X.max(axis=1) - X.min(axis=1)
    up = P.get("saturation")(X, 3, 0)
    down = P.get("saturation", direction="down")(X, 5, 0)
    assert (up.max(axis=1) - up.min(axis=1)).mean() > spread.mean()
    np.testing.assert_allclose(down, np.repeat(X.max(axis=1, keepdims=True), 3, axis=1), atol=1e-6)
    grey = np.full((1, 3, 4, 4), 0.4)
    np.testing.assert_allclose(P.get("hue_shift")(grey, 5, 0), grey, atol=1e-6)
    red = np.zeros((1, 3, 16, 16))  # enough pixels for OpenCV's vectorised path
    red[:, 0] = 1.0
    shifted = P.get("hue_shift", direction="positive")(red, 5, 0)  # 60°: red -> yellow
    np.testing.assert_allclose(shifted[0, :, 0, 0], [1.0, 1.0, 0.0], atol=1e-6)
    back = P.get("hue_shift", direction="negative")(red, 5, 0)  # -60°: red -> magenta
    np.testing.assert_allclose(back[0, :, 0, 0], [1.0, 0.0, 1.0], atol=1e-6)


def test_color_temperature_warms_and_cools() -> None:
    X = np.full((1, 3, 4, 4), 0.5)
    warm = P.get("color_temperature", direction="warm")(X, 3, 0)
    cool = P.get("color_temperature", direction="cool")(X, 3, 0)
    assert warm[0, 0, 0, 0] > 0.5 > warm[0, 2, 0, 0]
    assert cool[0, 2, 0, 0] > 0.5 > cool[0, 0, 0, 0]


def test_jpeg_is_pillows_codec_image_by_image() -> None:
    from PIL import Image

    X = np.random.default_rng(3).random((3, 24, 20, 3)).astype(np.float32)
    out = P.get("jpeg_compression", layout="NHWC")(X, 2, 0)
    for img, got in zip(X, out):
        buf = io.BytesIO()
        Image.fromarray(np.rint(img * 255).astype(np.uint8)).save(buf, "JPEG", quality=18)
        want = np.asarray(Image.open(io.BytesIO(buf.getvalue()))).astype(np.float32) / 255
        np.testing.assert_array_equal(got, want)
    grey = X[:, :, :, :1]
    assert P.get("jpeg_compression", layout="NHWC")(grey, 5, 0).shape == grey.shape


def test_jpeg_of_large_images_is_pillows_codec_too() -> None:
    """Large float32 NCHW images take OpenCV's per-image path: still Pillow's bits."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photo = load_sample_images().images[1][:300, :260]
    X = np.ascontiguousarray(photo.transpose(2, 0, 1)[None]).astype(np.float32) / 255
    out = P.get("jpeg_compression")(X, 3, 0)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "JPEG", quality=15)
    want = np.asarray(Image.open(io.BytesIO(buf.getvalue()))).astype(np.float32) / 255
    np.testing.assert_array_equal(out[0], want.transpose(2, 0, 1))
    np.testing.assert_array_equal(out, P.get("jpeg_compression", codec="pillow")(X, 3, 0))


def test_jpeg_decoders_give_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    """simplejpeg's decoder (used when installed) and OpenCV's decode to the same pixels."""
    pytest.importorskip("simplejpeg")
    rng = np.random.default_rng(9)
    batches = [rng.random((3, 3, 24, 20)), rng.random((2, 3, 130, 140)), rng.random((2, 1, 30, 20))]
    batches = [b.astype(np.float32) for b in batches]
    p = P.get("jpeg_compression")
    fast = [p(b, 4, 0) for b in batches]
    monkeypatch.setattr(
        im,
        "_jpeg_decoder",
        lambda cv2: lambda buf, shape: cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).reshape(shape),
    )
    for b, f in zip(batches, fast, strict=True):
        np.testing.assert_array_equal(p(b, 4, 0), f)


def test_motion_blur_is_the_correlation_with_its_kernel() -> None:
    """Bands of taps summed: the correlation with the whole kernel, edges repeated."""
    X = np.random.default_rng(2).random((6, 3, 70, 66)).astype(np.float32)
    p = P.get("motion_blur")
    angles = p.sample(X, np.random.default_rng(1))
    out = p.apply(X, angles, 4.0)
    kernels, d = im._motion_kernels(angles, 15, 12)
    for i in range(6):
        for c in range(3):
            pad = np.pad(X[i, c], ((d, d), (0, kernels.shape[2] - 1)), mode="edge")
            want = np.zeros((70, 66))
            for y, x in zip(*np.nonzero(kernels[i]), strict=True):
                want += kernels[i][y, x] * pad[y : y + 70, x : x + 66]
            np.testing.assert_allclose(out[i, c], np.clip(want, 0, 1), atol=2e-6)


@pytest.mark.parametrize("radius", [10, 15, 17.5, 20])
def test_motion_kernel_bands_tile_the_streak(radius: float) -> None:
    """Every tap in exactly one band, each band's box under OpenCV's DFT threshold."""
    angles = np.linspace(-45.0, 45.0, 721)
    kernels, _ = im._motion_kernels(angles, radius, 8)
    rebuilt = np.zeros_like(kernels)
    for c0, c1, first, last in im._motion_bands(kernels):
        for i in range(len(angles)):
            if last[i] >= first[i]:
                assert (last[i] - first[i] + 1) * (c1 - c0) < im._DFT_AREA
                rows = slice(first[i], last[i] + 1)
                rebuilt[i, rows, c0:c1] += kernels[i, rows, c0:c1]
    np.testing.assert_array_equal(rebuilt, kernels)


def test_rotation_is_bilinear_resampling_about_the_centre() -> None:
    """Against scipy's map_coordinates (order 1, half-sample mirror), up to OpenCV's
    1/32-pixel interpolation steps."""
    from scipy.ndimage import map_coordinates

    X = np.random.default_rng(6).random((1, 1, 40, 50)).astype(np.float32)
    X[0, 0] = np.clip(X[0, 0].cumsum(0).cumsum(1) / 400, 0, 1)  # smooth, like a photo
    out = P.get("rotation", direction="counterclockwise")(X, 3, 0)[0, 0]
    th = np.deg2rad(9.0)
    yy, xx = np.mgrid[0:40, 0:50].astype(np.float64)
    cy, cx = 19.5, 24.5
    sy = np.cos(th) * (yy - cy) + np.sin(th) * (xx - cx) + cy
    sx = -np.sin(th) * (yy - cy) + np.cos(th) * (xx - cx) + cx
    want = map_coordinates(X[0, 0].astype(np.float64), [sy, sx], order=1, mode="reflect")
    assert np.abs(out - want).max() < 0.01
    assert np.abs(out - want).mean() < 1e-3


def test_gaussian_blur_is_scipys_filter_also_on_large_images() -> None:
    from scipy.ndimage import gaussian_filter

    X = np.random.default_rng(5).random((3, 3, 150, 300))
    out = P.get("gaussian_blur")(X, 3, 0)
    want = gaussian_filter(X, sigma=(0, 0, 3, 3), mode="nearest", truncate=4.0)
    np.testing.assert_allclose(out, want, atol=2e-6)
    parts = np.concatenate([P.get("gaussian_blur")(X[i : i + 1], 3, 0) for i in range(3)])
    np.testing.assert_array_equal(out, parts)


def test_simplejpeg_codec_matches_pillow_on_average(photos: np.ndarray) -> None:
    pytest.importorskip("simplejpeg")
    fast = P.get("jpeg_compression", codec="simplejpeg")
    slow = P.get("jpeg_compression")
    for s in (1, 5):
        assert _change(fast, photos, s) == pytest.approx(_change(slow, photos, s), rel=0.01)
    grey = photos[:, :1]
    assert _change(fast, grey, 3) == pytest.approx(_change(slow, grey, 3), rel=0.02)


def test_pixelate_makes_blocks_and_kernels_are_normalised() -> None:
    X = np.random.default_rng(4).random((1, 1, 40, 40))
    out = P.get("pixelate")(X, 5, 0)  # factor 0.25: 10×10 blocks of 4×4
    assert len(np.unique(out.round(6))) <= 100
    assert im._disk_kernel(6, 0.5).sum() == pytest.approx(1.0, abs=1e-5)
    k, _ = im._motion_kernels(np.array([-45.0, 0.0, 30.0, 45.0]), 15, 8)
    np.testing.assert_allclose(k.sum(axis=(1, 2)), 1.0, atol=1e-5)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("channels", [1, 3])
def test_pixelate_stacked_batch_is_image_by_image(layout: str, channels: int) -> None:
    """Several small images go through one tall downscale and two gathers; one image alone
    through OpenCV's resizes: the same bits, at integer and fractional factors."""
    p = P.get("pixelate", layout=layout)
    for h, w in [(5, 7), (20, 23), (32, 32), (33, 47), (64, 64), (97, 131)]:
        shape = (6, channels, h, w) if layout == "NCHW" else (6, h, w, channels)
        X = np.random.default_rng(h * w).random(shape).astype(np.float32)
        for s in (1, 2.5, 3, 5):
            whole = p(X, s, 0)
            alone = np.concatenate([p(X[i : i + 1], s, 0) for i in range(6)])
            np.testing.assert_array_equal(whole, alone, err_msg=f"{h}x{w} severity {s}")


def test_geometry_keeps_constant_images_and_the_centre() -> None:
    flat = np.full((2, 3, 9, 9), 0.3)
    for name in ("rotation", "translation", "zoom", "lens_distortion", "elastic_transform"):
        np.testing.assert_allclose(P.get(name)(flat, 5, 0), 0.3, atol=1e-6)
    X = np.random.default_rng(0).random((1, 1, 9, 9))
    for name in ("rotation", "zoom", "lens_distortion"):
        assert P.get(name)(X, 5, 0)[0, 0, 4, 4] == pytest.approx(X[0, 0, 4, 4], abs=1e-6)


def test_draws_come_only_from_the_given_rng() -> None:
    X = np.random.default_rng(0).random((2, 3, 8, 8))
    for name in NAMES:
        p = P.get(name)
        a = p(X, 3, np.random.default_rng(11))
        b = p(X, 3, np.random.default_rng(11))
        np.testing.assert_array_equal(a, b)


# -- bad input: one clear line ----------------------------------------------------------
@pytest.mark.parametrize(
    ("X", "kwargs", "match"),
    [
        (np.zeros((2, 8, 8, 3)), {}, r"axis 1.*looks like NHWC: pass layout='NHWC'"),
        (np.zeros((2, 3, 8, 8)), {"layout": "NHWC"}, r"looks like NCHW: pass layout='NCHW'"),
        (np.full((2, 3, 8, 8), 1.5), {}, r"values in \[0, 1\]. Got values in \[1.5, 1.5\]"),
        (np.full((2, 3, 8, 8), -0.1), {}, r"values in \[0, 1\]"),
        (np.zeros((3, 8, 8)), {}, r"4-D batch of images .*Got shape \(3, 8, 8\)"),
        (np.zeros((2, 3, 8, 8), dtype=np.uint8), {}, r"float images.*X / 255"),
        (np.full((1, 3, 4, 4), np.nan), {}, r"finite"),
    ],
)
def test_bad_input_is_refused_in_one_line(X: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        P.get("gaussian_blur", **kwargs)(X, 1, 0)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("bad", "match"), [(1.5, r"Got values in \[0, 1.5\]"), (np.nan, "finite")])
def test_a_bad_pixel_in_any_chunk_is_refused(name: str, bad: float, match: str) -> None:
    """apply checks each chunk as it reads it: one bad pixel in the last image of a batch
    of many chunks is refused with the batch's range, at any magnitude, 0 included."""
    X = np.random.default_rng(3).random((40, 3, 70, 73)).astype(np.float32)
    X[:, :, 0, 0] = 0.0
    X[-1, 2, 60, 70] = bad
    p = P.get(name)
    for magnitude in (0, 2.5):
        with pytest.raises(DataError, match=match) as info:
            p(X, magnitude, 0)
        assert "\n" not in str(info.value)
    with pytest.raises(DataError, match=match):
        p.fit(X)
    stack = pk.Combine([name, "contrast"])
    for magnitude in (0, 2.5):
        with pytest.raises(DataError, match=match):
            stack(X, magnitude, 0)


def test_colour_ops_refuse_one_channel_and_bad_params_are_parameter_errors() -> None:
    grey = np.zeros((2, 1, 8, 8))
    for name in ("saturation", "hue_shift", "color_temperature"):
        with pytest.raises(DataError, match="3-channel RGB"):
            P.get(name)(grey, 1, 0)
    P.get("brightness")(grey, 1, 0)  # tone works on grey
    with pytest.raises(ParameterError, match="'layout' parameter of GaussianBlur"):
        P.get("gaussian_blur", layout="HWC")(np.zeros((1, 3, 4, 4)), 1, 0)
    with pytest.raises(ParameterError, match="'direction' parameter of Saturation"):
        P.get("saturation", direction="sideways")
    with pytest.raises(ParameterError, match=r"\[0, 5\]"):
        P.get("pixelate")(np.zeros((1, 3, 4, 4)), 6, 0)


# -- real models: small CNNs trained here on digits and on the sample photos ----------------
def _train_cnn(
    X: np.ndarray,
    y: np.ndarray,
    *,
    classes: int,
    epochs: int,
    batch: int,
    order: np.random.Generator,
) -> torch.nn.Module:
    """Two conv layers and a linear head on ``(n, c, s, s)`` float32 images, seeded by
    ``torch.manual_seed(0)`` inside a forked RNG; shuffled each epoch by ``order``."""
    nn = torch.nn
    channels, side = X.shape[1], X.shape[2]
    threads = torch.get_num_threads()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        torch.set_num_threads(1)  # tiny layers: threads only add overhead on a busy machine
        net = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(16 * (side // 4) ** 2, classes),
        )
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        try:
            for _ in range(epochs):
                for idx in np.array_split(order.permutation(len(y)), len(y) // batch):
                    opt.zero_grad()
                    nn.functional.cross_entropy(net(Xt[idx]), yt[idx]).backward()
                    opt.step()
        finally:
            torch.set_num_threads(threads)
    return net.eval()


@pytest.fixture(scope="module")
def digits_cnn():
    """A small CNN trained here on digits upsampled to 16×16: returns (module, X_test, y_test)."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = np.kron(X.reshape(-1, 8, 8) / 16.0, np.ones((2, 2)))[:, None].astype(np.float32)
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:1300], order[1300:]
    net = _train_cnn(
        X[train], y[train], classes=10, epochs=8, batch=64, order=np.random.default_rng(1)
    )
    return net, X[test], y[test]


def test_cnn_accuracy_falls_with_severity(digits_cnn) -> None:
    net, X, y = digits_cnn
    names = ["image_gaussian_noise", "impulse_noise", "gaussian_blur", "pixelate", "contrast"]
    res = pk.sweep(
        pk.wrap(net, task="classification"),
        X,
        y,
        perturbations=names,
        magnitudes=[0, 1, 3, 5],
        seed=0,
        progress=False,
    )
    t = res.to_pandas(groups=False)
    acc = t[t.metric == "accuracy"].pivot_table(
        index="perturbation", columns="magnitude", values="value"
    )
    assert acc[0.0].min() > 0.9, acc  # a real model: clean accuracy above 90%
    for name in names:
        row = acc.loc[name].to_numpy()
        assert np.all(np.diff(row) <= 0.01), (name, row)  # never rises by more than a hair
        assert row[-1] < row[0], (name, row)  # severity 5 hurts
    assert (acc[0.0] - acc[5.0]).mean() > 0.2, acc  # and hurts a lot on average


def test_a_cnn_on_the_sample_photos_is_fragile_to_colour_and_noise_not_geometry() -> None:
    """A real model on real photos: a small CNN trained here to tell which of scikit-learn's
    two sample photos (china, flower; area-downscaled 4×) a 24×24 crop comes from, swept
    over every image corruption. It reads colour and texture, so colour and noise hurt it
    at severity 5 while small rotations, shifts, zooms and warps of a crop do not."""
    from sklearn.datasets import load_sample_images

    cv2 = pytest.importorskip("cv2")
    imgs = [
        cv2.resize(im, (160, 107), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        for im in load_sample_images().images
    ]
    g = np.random.default_rng(0)

    def crops(k: int) -> tuple[np.ndarray, np.ndarray]:
        X, y = [], []
        for label, photo in enumerate(imgs):
            for _ in range(k):
                r, c = g.integers(0, photo.shape[0] - 24), g.integers(0, photo.shape[1] - 24)
                X.append(photo[r : r + 24, c : c + 24].transpose(2, 0, 1))
                y.append(label)
        return np.stack(X), np.array(y)

    (X_tr, y_tr), (X_te, y_te) = crops(300), crops(150)
    net = _train_cnn(X_tr, y_tr, classes=2, epochs=6, batch=50, order=g)
    res = pk.sweep(
        pk.wrap(net, task="classification"),
        X_te,
        y_te,
        perturbations=P.list("image"),
        magnitudes=[0, 5],
        seed=0,
        progress=False,
    )
    t = res.to_pandas(groups=False)
    acc = t[t.metric == "accuracy"].pivot_table(
        index="perturbation", columns="magnitude", values="value"
    )
    assert acc[0.0].min() > 0.95, acc
    assert (acc[5.0] <= acc[0.0] + 0.01).all(), acc  # no corruption helps
    colour_noise = [
        "saturation",
        "hue_shift",
        "image_gaussian_noise",
        "shot_noise",
        "impulse_noise",
    ]
    assert (acc[0.0] - acc[5.0])[colour_noise].mean() > 0.1, acc
    geometry = ["rotation", "translation", "zoom", "lens_distortion", "elastic_transform"]
    assert acc.loc[geometry, 5.0].min() > 0.9, acc


def test_sweep_refuses_images_outside_the_unit_range(digits_cnn) -> None:
    net, X, y = digits_cnn
    with pytest.raises(DataError, match=r"values in \[0, 1\]"):
        pk.sweep(
            pk.wrap(net, task="classification"),
            X * 16,
            y,
            perturbations=["gaussian_blur"],
            magnitudes=[0, 1],
            seed=0,
            progress=False,
        )


def test_noise_draws_work_with_any_bit_generator() -> None:
    """MT19937 gives 32-bit raw outputs: the 64-bit draws must not assume PCG64's."""
    mt = np.random.Generator(np.random.MT19937(0))
    z = im._standard_normal(mt, (200_000,)).astype(np.float64)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1.0) < 0.01
    X = np.full((2, 3, 64, 64), 0.5, dtype=np.float32)
    hit = P.get("impulse_noise")(X, 1, np.random.Generator(np.random.MT19937(1))) != 0.5
    assert hit.mean() == pytest.approx(0.03, abs=0.005)


def test_image_perturbations_need_no_torch_for_numpy_batches() -> None:
    """The image extra has no torch: the arithmetic is OpenCV and numpy."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np\n"
        "from perturbkit import perturbations as P\n"
        "X = np.random.default_rng(0).random((3, 3, 40, 41)).astype(np.float32)\n"
        "for name in P.list('image'):\n"
        "    out = P.get(name)(X, 2.5, 0)\n"
        "    assert out.shape == X.shape and out.dtype == X.dtype, name\n"
        "print(len(P.list('image')))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) == len(P.list("image"))


def test_a_forked_child_can_use_the_thread_pool() -> None:
    """The cached pool's threads do not survive fork: the child must start its own."""
    import multiprocessing as mp

    cv2 = pytest.importorskip("cv2")
    if cv2.getNumThreads() < 2 or "fork" not in mp.get_all_start_methods():
        pytest.skip("needs two OpenCV threads and fork")
    X = np.random.default_rng(0).random((3, 3, 300, 300)).astype(np.float32)
    want = P.get("gaussian_blur")(X, 2, 0)  # the parent's pool now exists
    with mp.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(_blur_in_child, (X,)).get(timeout=60)
    np.testing.assert_array_equal(got, want)


def _blur_in_child(X: np.ndarray) -> np.ndarray:
    return P.get("gaussian_blur")(X, 2, 0)


@pytest.mark.parametrize("name", NAMES)
def test_negative_strides_and_float16_give_the_float32_result(
    name: str, photos: np.ndarray
) -> None:
    X = np.ascontiguousarray(photos[:, ::-1])  # BGR, contiguous
    p = P.get(name)
    want = p(X, 3, 5)
    np.testing.assert_allclose(p(photos[:, ::-1], 3, 5), want, atol=2e-6)  # negative stride
    half = X.astype(np.float16)
    got = p(half, 3, 5)
    assert got.dtype == np.float16
    ref = p(half.astype(np.float32), 3, 5).astype(np.float16)
    np.testing.assert_allclose(got.astype(np.float32), ref.astype(np.float32), atol=1e-3)
