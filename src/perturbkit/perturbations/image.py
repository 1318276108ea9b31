"""Image corruptions: noise, blur, colour, JPEG, pixelation and geometry, on batches.

Every image perturbation takes a batch of float images with values in
``[0, 1]``: a numpy array or a torch tensor, ``(n, channels, height, width)``
by default (torch's convention) or ``(n, height, width, channels)`` with
``layout="NHWC"``, of any size, with 1 or 3 channels. The output keeps the
container (numpy or torch, device included), the dtype and the layout, and
stays in ``[0, 1]``. The arithmetic runs in float32 on the CPU: blurs,
resampling, HSV colour and the JPEG codec with OpenCV (image by image, in
the caller's layout where the operation allows: NCHW channel planes are
filtered as they lie; large images shared by a thread pool), Gaussian and
shot noise and per-pixel tone changes with torch, impulse noise with numpy,
over cache-sized chunks of the batch.

Magnitude is a **severity** from 0 to 5. Severities 1–5 are the rows of the
parameter table in each class's docstring; a fractional severity interpolates
the table linearly (from the identity value at severity 0), and severity 0
is the identity. Where ImageNet-C (Hendrycks & Dietterich, 2019, in the
``imagecorruptions`` package's version) has the corruption, the table is its
table; every scale is monotone: the mean absolute pixel change grows with the
severity. :class:`Saturation` departs from ImageNet-C's ``saturate``, whose
severities 1–2 desaturate and 3–5 over-saturate (so its pixel change falls
and then rises): ours moves one way (``direction="up"`` by default) and
places ImageNet-C's over-saturation rows at our severities 2, 4 and 5.

Randomness (noise fields, blur angles, directions) is drawn by :meth:`sample`
from the numpy generator only, never from torch's global state, and never
depends on the severity: the same draws are scaled by every severity
(common random numbers), so a noise pattern grows with the severity instead
of changing.

Colour perturbations (:class:`Saturation`, :class:`HueShift`,
:class:`ColorTemperature`) need RGB images and refuse 1-channel batches with
a :class:`~perturbkit.exceptions.DataError`.

Registry keys are global across modalities: the tabular ``gaussian_noise``
came first, so the image one is ``image_gaussian_noise``.
"""

from __future__ import annotations

import abc
import functools
import math
import os
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from perturbkit._extras import require
from perturbkit._validation import OneOf
from perturbkit.exceptions import DataError
from perturbkit.perturbations.base import Perturbation
from perturbkit.perturbations.registry import register

__all__ = [
    "Brightness",
    "ColorTemperature",
    "Contrast",
    "DefocusBlur",
    "ElasticTransform",
    "GaussianBlur",
    "HueShift",
    "ImageGaussianNoise",
    "ImagePerturbation",
    "ImpulseNoise",
    "JpegCompression",
    "LensDistortion",
    "MotionBlur",
    "Pixelate",
    "Rotation",
    "Saturation",
    "ShotNoise",
    "Translation",
    "Zoom",
]

LAYOUTS = ("NCHW", "NHWC")
_SEVERITIES = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)
_CHUNK_ELEMENTS = 1 << 18  # pixel values per pass (1 MiB of float32)
_PARALLEL_ELEMENTS = 1 << 21
"""From this many values on, elementwise work (draws, noise, tone, the range check) shares
a batch's chunks with the thread pool; below, waking the pool costs more than it saves
(measured: 256 images of 32×32 RGB, 0.8 M values, ran up to 1.5× slower with threads)."""
_FEATURE = "perturbkit.perturbations.image"


def _torch() -> Any:
    return require("torch", feature=_FEATURE)


def _interp(severity: float, identity: float, table: Sequence[float]) -> float:
    """The parameter at ``severity``: linear between the table's rows, ``identity`` at 0."""
    return float(np.interp(severity, _SEVERITIES, (identity, *table)))


# -- the base class ---------------------------------------------------------------------
class ImagePerturbation(Perturbation):
    """Shared machinery: layout, validation, numpy/torch in and out.

    Blurs, resampling and HSV colour derive from ``_CvImagePerturbation``
    (OpenCV on float32, image by image); tone changes from
    ``_PerPixelPerturbation`` (float32 numpy over chunks); the noises and
    JPEG give ``apply`` themselves. All share the batch's chunks on a thread
    pool, and ``apply`` checks the pixel values of each chunk it reads.
    """

    modality = "image"
    max_magnitude: ClassVar[float | None] = 5.0
    rowwise = True
    stochastic = False
    unit = "ImageNet-C severity 1–5 (0 is the identity; fractions interpolate its table)"
    needs_rgb: ClassVar[bool] = False
    in_range: ClassVar[bool] = False  # True: results cannot leave [0, 1], no clip pass
    _constraints: ClassVar[dict[str, Any]] = {"layout": OneOf(LAYOUTS)}

    layout: str

    def __init__(self, *, layout: str = "NCHW") -> None:
        self.layout = layout

    # -- validation -----------------------------------------------------------------
    def _channel_axis(self) -> int:
        return 1 if self.layout == "NCHW" else 3

    def _check_images(self, arr: np.ndarray, *, values: bool = True) -> None:
        """Refuse a batch that is not images, in one line; with ``values``, also one whose
        pixels are not finite or not in [0, 1] (``apply`` checks those chunk by chunk)."""
        owner = type(self).__name__
        if not np.issubdtype(arr.dtype, np.floating):
            raise DataError(
                f"{owner} needs float images with values in [0, 1]. Got dtype {arr.dtype} "
                "instead; for 8-bit images pass X / 255."
            )
        if arr.ndim != 4:
            raise DataError(
                f"{owner} needs a 4-D batch of images ({self.layout}). Got shape {arr.shape} "
                "instead; add the batch axis with X[None] or the channel axis with X[:, None]."
            )
        ax = self._channel_axis()
        if arr.shape[ax] not in (1, 3):
            other, other_ax = ("NHWC", 3) if self.layout == "NCHW" else ("NCHW", 1)
            hint = (
                f"; it looks like {other}: pass layout='{other}'"
                if arr.shape[other_ax] in (1, 3)
                else ""
            )
            raise DataError(
                f"{owner} with layout='{self.layout}' needs 1 or 3 channels on axis {ax}. "
                f"Got shape {arr.shape} instead{hint}."
            )
        if self.needs_rgb and arr.shape[ax] != 3:
            raise DataError(
                f"{owner} changes colour and needs 3-channel RGB images. Got 1 channel "
                f"(shape {arr.shape}) instead."
            )
        if values and arr.size:
            self._check_range(*_value_range(arr))

    def _check_range(self, lo: float, hi: float) -> None:
        owner = type(self).__name__
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise DataError(f"{owner} needs finite pixel values. Got NaN or infinity.")
        if lo < 0.0 or hi > 1.0:
            raise DataError(
                f"{owner} needs pixel values in [0, 1]. Got values in [{lo:.4g}, {hi:.4g}] "
                "instead; scale the images first (e.g. X / 255)."
            )

    def _check_chunk(self, chunk: np.ndarray, batch: np.ndarray) -> None:
        """The value check of a chunk ``apply`` is about to read (in cache, in its thread):
        a chunk out of range raises the batch's error, with the batch's range."""
        if chunk.size and not _in_unit_range(chunk):
            self._check_range(float(np.min(batch)), float(np.max(batch)))

    def identity(self, arr: np.ndarray) -> np.ndarray:
        self._check_images(arr)
        return arr.copy()

    def fit(self, X_ref: Any) -> ImagePerturbation:
        """Check that ``X_ref`` is a valid batch of images; no statistics are learnt."""
        self._validate_params()
        arr, _ = self.prepare(X_ref)
        self._check_images(arr)
        return self

    # -- batch in / out -------------------------------------------------------------
    def prepare(self, X: Any) -> tuple[np.ndarray, Any]:
        self._validate_params()
        token = None
        if type(X).__module__.startswith("torch") and hasattr(X, "detach"):
            torch = _torch()
            token = ("torch", X.dtype, X.device)
            t = X.detach().to("cpu")
            if not t.is_floating_point():
                arr = t.numpy()
            else:
                if t.dtype not in (torch.float16, torch.float32, torch.float64):
                    t = t.to(torch.float32)  # bfloat16 has no numpy dtype
                arr = t.numpy()
        else:
            arr = np.asarray(X)
        # the pixel values are checked by apply, chunk by chunk while in cache (one read of
        # the batch fewer), or by identity at magnitude 0
        self._check_images(arr, values=False)
        return arr, token

    def check(self, X: Any) -> None:
        """Layout, channels and every pixel value (``apply`` checks values per chunk)."""
        arr, _ = self.prepare(X)
        self._check_images(arr)

    def restore(self, X_new: np.ndarray, token: Any) -> Any:
        if token is None:
            return X_new
        torch = _torch()
        _, dtype, device = token
        return torch.from_numpy(X_new).to(device=device, dtype=dtype)


# the bit pattern of 1.0, read as an unsigned integer, per float width
_ONE_BITS: dict[int, tuple[type, int]] = {
    2: (np.uint16, 0x3C00),
    4: (np.uint32, 0x3F80_0000),
    8: (np.uint64, 0x3FF0_0000_0000_0000),
}


def _in_unit_range(a: np.ndarray) -> bool:
    """Whether every value of the float array ``a`` is in [0, 1] (NaN is not), in one pass.

    Non-negative IEEE floats order as their bit patterns read as unsigned
    integers, and every negative value (sign bit set), infinity and NaN reads
    above the pattern of 1.0: one unsigned max decides, where min and max
    take two passes. Only -0.0 (in range, pattern 0x80…) reads above too; the
    exact min and max settle that case.
    """
    bits = _ONE_BITS.get(a.dtype.itemsize) if a.dtype.kind == "f" else None
    if bits is not None and int(a.view(bits[0]).max()) <= bits[1]:
        return True
    lo, hi = float(np.min(a)), float(np.max(a))
    return lo >= 0.0 and hi <= 1.0  # NaN fails too


def _value_range(arr: np.ndarray) -> tuple[float, float]:
    """The smallest and largest value of a batch (NaN if any is NaN).

    A few images at a time on the thread pool, the max right after the min
    while the images are in cache: one read of the batch, shared by the
    threads, instead of two (at 256×3×224×224 float32: ~5.6 ms, not ~10).
    """
    step = _images_per_chunk(arr)
    if arr.shape[0] <= step or arr.size < _PARALLEL_ELEMENTS:
        return float(np.min(arr)), float(np.max(arr))
    lo = np.empty(-(-arr.shape[0] // step))
    hi = np.empty_like(lo)

    def work(a: int, b: int) -> None:
        lo[a // step], hi[a // step] = np.min(arr[a:b]), np.max(arr[a:b])

    _each_chunk(work, arr.shape[0], step)
    return float(np.min(lo)), float(np.max(hi))


class _PerPixelPerturbation(ImagePerturbation):
    """A per-pixel corruption in float32 numpy over cache-sized chunks: subclasses give
    :meth:`_write`.

    ``apply`` walks the batch a few images at a time on the thread pool. ``_write``
    gets each chunk as float32 NCHW (a view of the caller's array when it is
    float32, in either layout: never write it) with :meth:`_chunk_params`, and
    writes into ``dst`` (float32 NCHW, a view of the output when that is
    float32); the result is clipped to [0, 1] and cast to the caller's dtype.
    Each numpy operation is one IEEE float32 operation per element, so an
    image's bits do not depend on the chunk, the batch or the thread count.
    """

    def apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        s = float(magnitude)
        if s == 0.0 or X.shape[0] == 0:
            return self.identity(X)
        out = np.empty(X.shape, dtype=X.dtype)
        nhwc = self.layout == "NHWC"

        def nchw(a: np.ndarray) -> np.ndarray:
            return a.transpose(0, 3, 1, 2) if nhwc else a

        def work(lo: int, hi: int) -> None:
            raw = X[lo:hi]
            self._check_chunk(raw, X)
            x = nchw(raw).astype(np.float32, copy=False)
            dst = nchw(out[lo:hi]) if out.dtype == np.float32 else np.empty(x.shape, np.float32)
            self._write(x, self._chunk_params(raw, _rows(params, slice(lo, hi))), s, dst)
            if not self.in_range:
                np.clip(dst, 0.0, 1.0, out=dst)
            if out.dtype != np.float32:
                nchw(out[lo:hi])[...] = dst

        _each_image_chunk(work, X)
        return out

    def _chunk_params(self, raw: np.ndarray, params: Any) -> Any:
        """What :meth:`_write` needs for the chunk ``raw`` (caller's layout and dtype)."""
        return params

    @abc.abstractmethod
    def _write(self, x: np.ndarray, params: Any, severity: float, dst: np.ndarray) -> None:
        """Write the corruption of the float32 NCHW chunk ``x`` into ``dst`` (same shape)."""


def _cv2() -> Any:
    return require("cv2", feature="Image perturbations")


def _workers() -> int:
    """Threads for batch-level work: OpenCV's thread count (``cv2.setNumThreads``)."""
    try:
        import cv2
    except ImportError:  # pragma: no cover - cv2 is in the image extra
        return 1
    return max(1, int(cv2.getNumThreads()))


@functools.lru_cache(maxsize=8)
def _pool(workers: int) -> Any:
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="perturbkit-image")


# a forked child inherits the cached pools but not their threads: start afresh there
os.register_at_fork(after_in_child=_pool.cache_clear)


def _each_chunk(
    work: Callable[[int, int], None],
    n: int,
    step: int,
    *,
    parallel: bool = True,
    balance: bool = False,
) -> None:
    """Call ``work(lo, hi)`` on the chunks ``[lo, hi)`` of ``range(n)``, ``step`` long.

    With ``parallel`` and more than one worker (:func:`_workers`), the chunks
    are shared by a thread pool: OpenCV, simplejpeg and numpy release the GIL,
    and the chunks write disjoint rows, so the result is the same bits as the
    serial loop. Callers ask for it unless a chunk is many tiny calls whose
    Python overhead holds the GIL (then threads cost more than they save).
    With ``balance`` (for callers whose chunks may have any length up to
    ``step``) the chunks are made shorter and equal so that every worker gets
    as many: 256 images in chunks of at most 85 are four of 64, not 85, 85,
    85 and 1 (``image_threads.py --balance``: 1.1–1.3× on most at 32×32).
    """
    workers = min(_workers(), -(-n // step)) if parallel else 1
    if balance and workers > 1:
        chunks = min(n, -(-n // (step * workers)) * workers)
        step = -(-n // chunks)
    starts = list(range(0, n, step))

    def run(part: list[int]) -> None:
        for lo in part:
            work(lo, min(lo + step, n))

    if workers <= 1:
        run(starts)
        return
    parts = [starts[k::workers] for k in range(workers)]
    for future in [_pool(workers).submit(run, part) for part in parts]:
        future.result()


def _images_per_chunk(X: np.ndarray) -> int:
    """Images in one cache-sized chunk of the batch ``X`` (at least one)."""
    return max(1, _CHUNK_ELEMENTS // max(1, X[0].size))


def _each_image_chunk(work: Callable[[int, int], None], X: np.ndarray) -> None:
    """Elementwise ``work(lo, hi)`` over the images of ``X``, a cache-sized chunk at a time,
    on the thread pool from :data:`_PARALLEL_ELEMENTS` values on."""
    parallel = X.size >= _PARALLEL_ELEMENTS
    _each_chunk(work, X.shape[0], _images_per_chunk(X), parallel=parallel, balance=True)


class _CvImagePerturbation(ImagePerturbation):
    """A corruption computed with OpenCV on float32 pixels, image by image.

    ``apply`` walks the batch in cache-sized chunks. Filters that treat the
    channels alike work on the caller's layout as it is: the 2-D channel
    planes of NCHW, the HWC image of NHWC. Resampling and colour work on
    interleaved HWC pixels (``interleaved = True``), where OpenCV shares the
    coordinate work across channels; NCHW chunks are interleaved and back
    (OpenCV's merge and split for large images, a strided copy per channel for small
    ones). Results are clipped to [0, 1] in cache, unless the corruption cannot
    leave it (``in_range``); one image's result never depends on the rest of the
    batch.
    """

    interleaved: ClassVar[bool] = False
    interleave_small: ClassVar[bool] = False  # interleave chunks of several small images

    def apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        s = float(magnitude)
        if s == 0.0 or X.shape[0] == 0:
            return self.identity(X)
        cv2 = _cv2()
        x = np.ascontiguousarray(X, dtype=np.float32)
        out = np.empty(x.shape, dtype=np.float32)
        nchw = self.layout == "NCHW"
        h, w = (x.shape[2], x.shape[3]) if nchw else x.shape[1:3]
        channels = x.shape[1] if nchw else x.shape[3]
        plan = self._plan(params, s, h, w)
        step = _images_per_chunk(x)
        interleave = self.interleaved or (self.interleave_small and step > 1)
        to_hwc = interleave and nchw and channels == 3
        hwc = to_hwc or not nchw

        def work(lo: int, hi: int) -> None:
            sl = slice(lo, hi)
            self._check_chunk(X[sl], X)
            if not to_hwc:
                src, dst = x[sl], out[sl]
            elif step == 1:  # one large image: OpenCV's vectorised merge
                src = cv2.merge(list(x[lo]))[None]
                dst = np.empty_like(src)
            else:
                src = _interleave(x[sl])
                dst = np.empty_like(src)
            self._chunk(cv2, src, dst, sl, plan, hwc)
            if not self.in_range:
                np.clip(dst, 0.0, 1.0, out=dst)
            if to_hwc:
                if step == 1:
                    cv2.split(dst[0], list(out[lo]))
                else:
                    _deinterleave(dst, out[sl])

        _each_chunk(work, x.shape[0], step, parallel=self._threaded(h, w), balance=True)
        return out if X.dtype == np.float32 else out.astype(X.dtype)

    def _threaded(self, h: int, w: int) -> bool:
        """Whether the chunks of ``h × w`` images may be shared by the thread pool.

        Yes by default, small images included: a chunk of a few dozen images is
        enough work (2 threads: 1.3–2.2× on most corruptions at 128×128 and
        224×224, about even at 32×32; ``benchmarks/modalities/image_threads.py``).
        Subclasses say no where a chunk is many tiny OpenCV calls.
        """
        return True

    @abc.abstractmethod
    def _plan(self, params: Any, severity: float, h: int, w: int) -> Any:
        """What the whole batch shares at ``severity`` (kernels, maps, matrices)."""

    @abc.abstractmethod
    def _chunk(
        self, cv2: Any, src: np.ndarray, dst: np.ndarray, sl: slice, plan: Any, hwc: bool
    ) -> None:
        """Corrupt the images ``sl`` of the batch, ``src`` → ``dst`` (HWC when ``hwc``)."""


class _PerImageCv(_CvImagePerturbation):
    """An OpenCV corruption computed image by image: subclasses give :meth:`_image`."""

    def _chunk(
        self, cv2: Any, src: np.ndarray, dst: np.ndarray, sl: slice, plan: Any, hwc: bool
    ) -> None:
        for j in range(src.shape[0]):
            self._image(cv2, _mats(src[j], hwc), _mats(dst[j], hwc), sl.start + j, plan)

    @abc.abstractmethod
    def _image(
        self, cv2: Any, srcs: list[np.ndarray], dsts: list[np.ndarray], i: int, plan: Any
    ) -> None:
        """Write image ``i``'s corruption of each OpenCV matrix in ``srcs`` into ``dsts``."""


class _HsvPerturbation(_CvImagePerturbation):
    """A per-pixel change in OpenCV's float HSV (hue in degrees, S and V in [0, 1]).

    A chunk of interleaved images is one tall image (the change is per pixel):
    RGB → HSV, :meth:`_adjust`, HSV → RGB. With S and V kept in [0, 1] the
    result stays in [0, V], so no clip pass is needed. A grey pixel has hue 0.
    """

    needs_rgb = True
    interleaved = True
    in_range = True

    def _chunk(
        self, cv2: Any, src: np.ndarray, dst: np.ndarray, sl: slice, plan: Any, hwc: bool
    ) -> None:
        hsv = cv2.cvtColor(src.reshape(-1, src.shape[2], 3), cv2.COLOR_RGB2HSV)
        self._adjust(hsv.reshape(src.shape[0], -1, 3), sl, plan)
        cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB, dst=dst.reshape(hsv.shape))

    @abc.abstractmethod
    def _adjust(self, hsv: np.ndarray, sl: slice, plan: Any) -> None:
        """Change ``hsv`` (images ``sl``, shape (k, pixels, 3)) in place."""


def _interleave(planes: np.ndarray) -> np.ndarray:
    """The NCHW images ``planes`` as a new contiguous NHWC array.

    One strided copy per channel: about 3× numpy's copy of the transposed
    view, which walks the channel axis innermost (0.19 vs 0.57–0.61 ms for
    256 RGB images of 32×32, ``benchmarks/modalities/image_kernels.py``).
    """
    n, c = planes.shape[:2]
    hwc = np.empty((n, *planes.shape[2:], c), dtype=planes.dtype)
    flat, dst = planes.reshape(n, c, -1), hwc.reshape(n, -1, c)
    for ch in range(c):
        dst[:, :, ch] = flat[:, ch]
    return hwc


def _deinterleave(hwc: np.ndarray, planes: np.ndarray) -> None:
    """Write the NHWC images ``hwc`` into the NCHW array ``planes``, a channel at a time."""
    n, c = planes.shape[:2]
    flat, src = planes.reshape(n, c, -1), hwc.reshape(n, -1, c)
    for ch in range(c):
        flat[:, ch] = src[:, :, ch]


def _mats(img: np.ndarray, hwc: bool) -> list[np.ndarray]:
    """The matrices OpenCV works on: the HWC image (2-D if grey), or the channel planes."""
    return [_as_cv_image(img)] if hwc else list(img)


def _as_cv_image(hwc: np.ndarray) -> np.ndarray:
    """HWC image(s) as OpenCV takes them: grey ones without their channel axis (a view)."""
    return hwc[..., 0] if hwc.shape[-1] == 1 else hwc


@functools.lru_cache(maxsize=256)
def _gaussian_taps(sigma: float, truncate: float) -> np.ndarray:
    """scipy.ndimage's 1-D Gaussian: radius ``int(truncate·σ + ½)``, normalised, float32."""
    r = int(truncate * sigma + 0.5)
    k = np.arange(-r, r + 1)
    g = np.exp(-0.5 * (k / sigma) ** 2) if sigma > 0 else (k == 0).astype(np.float64)
    return (g / g.sum()).astype(np.float32)


def _rows(params: Any, sl: slice) -> Any:
    """The draws of the rows ``sl`` (params are per-row arrays, or None)."""
    return None if params is None else params[sl]


def _uniform_per_image(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One U[0, 1) draw per image (float64), e.g. for a random direction."""
    return rng.random(X.shape[0])


def _signs(u: Any, direction: str, positive: str, negative: str) -> np.ndarray:
    """+1 / -1 per image (float32): fixed by ``direction``, or from the draws ``u`` when
    'both'."""
    u = np.asarray(u, dtype=np.float32)
    if direction == positive:
        return np.ones_like(u)
    if direction == negative:
        return -np.ones_like(u)
    return np.where(u < 0.5, np.float32(-1.0), np.float32(1.0))


# -- boundary handling and separable linear operators ------------------------------------
def _fold(idx: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Map out-of-range indices into [0, n) by a boundary rule (any n >= 1, any overshoot).

    ``nearest`` repeats the edge (aaa|abcd|ddd), ``reflect`` mirrors about the
    edge (cba|abcd|dcb, scipy's 'reflect'), ``mirror`` about the edge pixel
    (dcb|abcd|cba, OpenCV's default BORDER_REFLECT_101).
    """
    if mode == "nearest" or n == 1:
        return np.clip(idx, 0, n - 1)
    if mode == "reflect":
        j = np.mod(idx, 2 * n)
        return np.where(j < n, j, 2 * n - 1 - j)
    j = np.mod(idx, 2 * n - 2)
    return np.where(j < n, j, 2 * n - 2 - j)


# -- noise ------------------------------------------------------------------------------
def _standard_normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """float32 N(0, 1) draws by the Box–Muller transform of 64-bit draws.

    Each 64-bit draw gives two 32-bit words; a word's top 23 bits give a
    uniform ``u = (k + ½)·2⁻²³``, exact in float32 and inside (0, 1), and a
    pair ``(u₁, u₂)`` gives two independent normals
    ``√(−2 ln u₁)·(cos 2πu₂, sin 2πu₂)``. Everything runs as vectorised
    float32 numpy passes, 1.4–1.6× torch's sampler and ~5× numpy's float32
    ziggurat. The 23-bit uniforms cap |z| at 5.8 (a tail of 7·10⁻⁹).

    Up to ``2 · _STREAM_WORDS`` normals come from ``rng`` itself; more from
    the child streams of :func:`_for_each_stream`, each block transformed in
    cache. Only ``rng`` is read, and the bits do not depend on the number of
    threads.
    """
    return _values_from_words(rng, shape, 2, _box_muller, "<f4")


def _box_muller(raw: np.ndarray) -> None:
    """Overwrite ``m`` 64-bit draws with ``2m`` float32 normals, in place.

    Words ``k`` and ``m + k`` (as 32-bit words) are the pair (u₁, u₂); the
    cosine normal goes to float ``k``, the sine normal to float ``m + k``.
    """
    half = raw.shape[0]
    words = raw.view("<u4")
    z = raw.view(np.float32)
    for lo in range(0, half, 1 << 15):  # pairs per pass: the temporaries stay in cache
        hi = min(half, lo + (1 << 15))
        u1 = _unit_interval(words[lo:hi])
        u2 = _unit_interval(words[half + lo : half + hi])
        np.log(u1, out=u1)
        u1 *= np.float32(-2.0)
        np.sqrt(u1, out=u1)  # the radius
        u2 *= np.float32(2.0 * math.pi)  # the angle
        np.cos(u2, out=z[lo:hi])
        z[lo:hi] *= u1
        np.sin(u2, out=u2)
        np.multiply(u2, u1, out=z[half + lo : half + hi])


def _unit_interval(words: np.ndarray) -> np.ndarray:
    """float32 uniforms ``(k + ½)·2⁻²³`` in (0, 1) from the top 23 bits k of 32-bit words.

    The bits of k become the mantissa of ``1 + k·2⁻²³`` (exponent bits or-ed
    in), from which ``1 − 2⁻²⁴`` is subtracted exactly (Sterbenz): three
    passes instead of a conversion, an add and a multiply, the same values.
    """
    u = np.right_shift(words, np.uint32(9))
    u |= np.uint32(0x3F800000)
    f = u.view(np.float32)
    f -= np.float32(1.0 - 2.0**-24)
    return f


def _uint64(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniform 64-bit draws, little-endian: for any bit generator (MT19937's raw
    outputs are 32-bit); for PCG64 and its kin, the same bits as its raw outputs."""
    out = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    return out.astype("<u8", copy=False)


_STREAM_WORDS = 1 << 16
"""64-bit draws per child stream when a batch's draws are shared by threads."""


def _for_each_stream(
    rng: np.random.Generator,
    n: int,
    fn: Callable[[int, np.ndarray], None] | None = None,
    *,
    dest: np.ndarray | None = None,
) -> None:
    """Draw ``n`` 64-bit words from child streams, ``_STREAM_WORDS`` each, on the thread pool.

    Four draws of ``rng`` seed a ``SeedSequence``; its children seed PCG64
    streams, whose raw outputs are their 64-bit draws (``random_raw``
    releases the GIL; ``Generator.integers`` holds it). A draw costs ~1.8 ns
    on one core whatever the bit generator, so 10⁷ of them are worth two
    cores. Stream ``j``'s words, for words ``a = j·_STREAM_WORDS`` on, land
    in ``dest[a:]`` (or a scratch block when ``dest`` is None) and are handed
    to ``fn(a, words)`` while in cache. The bits depend on ``rng`` and ``n``
    only, never on the number of threads.
    """
    entropy = [int(v) for v in _uint64(rng, 4)]
    kids = np.random.SeedSequence(entropy).spawn(-(-n // _STREAM_WORDS))

    def work(lo: int, hi: int) -> None:
        scratch = np.empty(_STREAM_WORDS, dtype="<u8") if dest is None else None
        for j in range(lo, hi):
            a = j * _STREAM_WORDS
            size = min(n, a + _STREAM_WORDS) - a
            words = dest[a : a + size] if scratch is None else scratch[:size]
            words[:] = np.random.PCG64(kids[j]).random_raw(size)
            if fn is not None:
                fn(a, words)

    # a word serves two values or more: fewer words than that stay on one thread
    _each_chunk(work, len(kids), 4, parallel=2 * n >= _PARALLEL_ELEMENTS)


def _words(
    rng: np.random.Generator, n: int, fn: Callable[[np.ndarray], None] | None = None
) -> np.ndarray:
    """``n`` uniform 64-bit draws (little-endian) for a batch's noise, ``fn`` applied in place
    to each block of them while in cache.

    Up to ``_STREAM_WORDS`` come from ``rng`` itself (:func:`_uint64`), one
    block; more from the child streams of :func:`_for_each_stream`.
    """
    if n <= _STREAM_WORDS:
        out = _uint64(rng, n)
        if fn is not None:
            fn(out)
        return out
    out = np.empty(n, dtype="<u8")
    _for_each_stream(rng, n, None if fn is None else lambda a, words: fn(words), dest=out)
    return out


def _values_from_words(
    rng: np.random.Generator,
    shape: tuple[int, ...],
    per_word: int,
    transform: Callable[[np.ndarray], None] | None,
    dtype: str,
) -> np.ndarray:
    """``shape`` values of ``dtype``, ``per_word`` of them from each 64-bit draw of
    :func:`_words`, which ``transform`` turns into them in place (None: the raw bits)."""
    count = math.prod(shape)
    words = _words(rng, -(-count // per_word), transform)
    return words.view(dtype)[:count].reshape(shape)


class _PixelNoise(ImagePerturbation):
    """Noise drawn per pixel and channel in NCHW order, whatever the layout.

    Subclasses give the draws (``per_word`` values per 64-bit draw, turned
    into ``draw_dtype`` values in place by :meth:`_transform`) and the
    arithmetic (:meth:`_noise`).
    ``apply`` and the one-shot :meth:`sample_apply` compute :meth:`_noise` in
    numpy, one IEEE float32 operation at a time, in cache-sized chunks on the
    thread pool; they give the same bits (tested).
    """

    stochastic = True
    per_word: ClassVar[int] = 2  # values drawn per 64-bit draw
    draw_dtype: ClassVar[str] = "<f4"  # what those values are
    float32: ClassVar[bool] = True  # computed in float32 (False: in the caller's dtype)

    def _transform(self, words: np.ndarray) -> None:
        """Turn 64-bit ``words`` into ``per_word`` draws each, in place (default: as they are)."""

    def _draws(self, words: np.ndarray) -> np.ndarray:
        self._transform(words)
        return words.view(self.draw_dtype)

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # drawn in NCHW order whatever the layout: the same seed, the same noise
        n, a, b, c = X.shape
        shape = (n, a, b, c) if self.layout == "NCHW" else (n, c, a, b)
        return _values_from_words(rng, shape, self.per_word, self._transform, self.draw_dtype)

    @abc.abstractmethod
    def _factors(self, severity: float) -> tuple[Any, ...]:
        """The constants of :meth:`_noise` at ``severity``."""

    @abc.abstractmethod
    def _noise(self, x: np.ndarray, z: np.ndarray, f: tuple[Any, ...], out: np.ndarray) -> None:
        """``out`` = the noisy float32 ``x`` from the draws ``z`` (never written)."""

    def _write(self, x: np.ndarray, z: np.ndarray, f: tuple[Any, ...], out: np.ndarray) -> None:
        self._noise(x, z, f, out)
        if not self.in_range:
            np.clip(out, 0.0, 1.0, out=out)

    def apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        s = float(magnitude)
        if s == 0.0 or X.shape[0] == 0:
            return self.identity(X)
        f = self._factors(s)
        z = params if self.layout == "NCHW" else params.transpose(0, 2, 3, 1)
        out = np.empty(X.shape, dtype=X.dtype)

        work_dtype = np.dtype(np.float32 if self.float32 else X.dtype)

        def work(lo: int, hi: int) -> None:
            self._check_chunk(X[lo:hi], X)
            x = X[lo:hi].astype(work_dtype, copy=False)
            o = out[lo:hi] if out.dtype == work_dtype else np.empty(x.shape, work_dtype)
            self._write(x, z[lo:hi], f, o)
            if out.dtype != work_dtype:
                out[lo:hi] = o

        _each_image_chunk(work, X)
        return out

    def _fusable(self, X: np.ndarray) -> bool:
        """Whether a one-shot call draws and applies block by block: float32 NCHW,
        C-contiguous, drawn from child streams (more than ``_STREAM_WORDS`` words)."""
        return (
            X.dtype == np.float32
            and self.layout == "NCHW"
            and X.flags.c_contiguous
            and -(-X.size // self.per_word) > _STREAM_WORDS
        )

    def sample_apply(self, X: np.ndarray, rng: np.random.Generator, magnitude: float) -> np.ndarray:
        """Draw and apply block by block, in cache, on the thread pool: the bits of
        ``apply(X, sample(X, rng), magnitude)`` without holding the batch's draws.

        Batches :meth:`_fusable` says yes to; others sample and apply. Stream
        block ``a``'s words serve the flat values ``per_word · a`` on, as in
        :meth:`sample`.
        """
        if not self._fusable(X):
            return super().sample_apply(X, rng, magnitude)
        count, k = X.size, self.per_word
        f = self._factors(float(magnitude))
        x, out = X.reshape(-1), np.empty(X.shape, dtype=X.dtype)
        flat = out.reshape(-1)

        def block(a: int, words: np.ndarray) -> None:
            v0, v1 = k * a, min(count, k * (a + words.shape[0]))
            self._check_chunk(x[v0:v1], X)
            self._write(x[v0:v1], self._draws(words)[: v1 - v0], f, flat[v0:v1])

        _for_each_stream(rng, -(-count // k), block)
        return out


class _NormalNoise(_PixelNoise):
    """Noise from float32 standard normals (Box–Muller, :func:`_box_muller`)."""

    def _transform(self, words: np.ndarray) -> None:
        _box_muller(words)


@register
class ImageGaussianNoise(_NormalNoise):
    """Additive Gaussian noise, ``x + σ·z`` clipped to [0, 1], z ~ N(0, 1) per pixel and channel.

    ImageNet-C's ``gaussian_noise``. Severity 1–5 sets σ (pixel values in [0, 1]):

    ========  ====  ====  ====  ====  ====
    severity  1     2     3     4     5
    σ         0.08  0.12  0.18  0.26  0.38
    ========  ====  ====  ====  ====  ====
    """

    name = "image_gaussian_noise"
    version = 3  # 3: large batches drawn by threads, x + (σ·z) (2: Box-Muller on raw bits)
    TABLE: ClassVar[tuple[float, ...]] = (0.08, 0.12, 0.18, 0.26, 0.38)

    def _factors(self, severity: float) -> tuple[np.float32, ...]:
        return (np.float32(_interp(severity, 0.0, self.TABLE)),)

    def _noise(self, x: np.ndarray, z: np.ndarray, f: tuple[Any, ...], out: np.ndarray) -> None:
        np.multiply(z, f[0], out=out)
        out += x


@register
class ShotNoise(_NormalNoise):
    """Photon (Poisson) noise: ``Poisson(c·x) / c`` with ``c`` photons per unit of intensity.

    ImageNet-C's ``shot_noise``, with the Poisson draw replaced by its
    Gaussian approximation ``x + sqrt(x / c)·z`` (z ~ N(0, 1) per pixel and
    channel, drawn once and shared by every severity), then clipped to
    [0, 1]: brighter pixels get more noise, black stays black. Fractional
    severities interpolate the noise scale ``1/√c`` (0 at severity 0).

    ========  ==  ==  ==  ==  ==
    severity  1   2   3   4   5
    c         60  25  12  5   3
    ========  ==  ==  ==  ==  ==
    """

    name = "shot_noise"
    version = 3  # 3: large batches drawn by threads, x + (√x·z)·s (2: Box-Muller on raw bits)
    TABLE: ClassVar[tuple[float, ...]] = (60.0, 25.0, 12.0, 5.0, 3.0)

    def _factors(self, severity: float) -> tuple[np.float32, ...]:
        return (np.float32(_interp(severity, 0.0, [1.0 / math.sqrt(c) for c in self.TABLE])),)

    def _noise(self, x: np.ndarray, z: np.ndarray, f: tuple[Any, ...], out: np.ndarray) -> None:
        np.sqrt(x, out=out)
        out *= z
        out *= f[0]
        out += x


@register
class ImpulseNoise(_PixelNoise):
    """Salt-and-pepper noise: a fraction ``amount`` of the pixel values set to 0 or 1.

    ImageNet-C's ``impulse_noise`` (scikit-image's ``s&p``, per channel,
    salt and pepper equally likely). One uniform 16-bit draw u per pixel and
    channel decides both: with ``A = round(amount/2 · 2¹⁶)``, the value
    becomes 0 where ``u < A`` and 1 where ``2¹⁵ <= u < 2¹⁵ + A``. The
    replaced set grows with the severity and keeps its pixels (masks nest).
    The draws are 64-bit draws of the generator, four 16-bit values each
    (little-endian), so drawing costs a quarter of float draws.

    ========  ====  ====  ====  ====  ====
    severity  1     2     3     4     5
    amount    0.03  0.06  0.09  0.17  0.27
    ========  ====  ====  ====  ====  ====
    """

    name = "impulse_noise"
    version = 3  # 3: large batches drawn by threads (2: 16-bit draws; 1: float32 draws)
    per_word = 4
    draw_dtype = "<u2"
    float32 = False  # it only copies values, 0 and 1: any float dtype as it is
    in_range = True  # the values it writes are the pixels, 0 and 1: no clip pass
    TABLE: ClassVar[tuple[float, ...]] = (0.03, 0.06, 0.09, 0.17, 0.27)

    def _factors(self, severity: float) -> tuple[Any, ...]:
        amount = _interp(severity, 0.0, self.TABLE)
        return (np.uint16(min(2**15 - 1, round(amount / 2.0 * 2**16))),)

    def _noise(self, x: np.ndarray, z: np.ndarray, f: tuple[Any, ...], out: np.ndarray) -> None:
        # 0 where u < cut, 1 where 2¹⁵ <= u < 2¹⁵ + cut: values stay in [0, 1], no clip
        np.copyto(out, x)
        np.copyto(out, 0.0, where=z < f[0])
        np.copyto(out, 1.0, where=(z - np.uint16(2**15)) < f[0])  # wraps below 2¹⁵


# -- blur ----------------------------------------------------------------------------------
@register
class GaussianBlur(_PerImageCv):
    """Gaussian blur of standard deviation σ pixels (edges repeated, kernel truncated at 4σ).

    ImageNet-C's ``gaussian_blur`` (scikit-image's ``gaussian``). σ is in
    pixels whatever the image size, as in ImageNet-C (defined on 224×224):
    small images blur more in relative terms.

    ========  ==  ==  ==  ==  ==
    severity  1   2   3   4   5
    σ (px)    1   2   3   4   6
    ========  ==  ==  ==  ==  ==
    """

    name = "gaussian_blur"
    version = 1
    interleave_small = True  # one call per small image instead of one per plane
    TABLE: ClassVar[tuple[float, ...]] = (1.0, 2.0, 3.0, 4.0, 6.0)

    def _plan(self, params: Any, severity: float, h: int, w: int) -> Any:
        return _gaussian_taps(_interp(severity, 0.0, self.TABLE), 4.0)

    def _image(
        self, cv2: Any, srcs: list[np.ndarray], dsts: list[np.ndarray], i: int, plan: Any
    ) -> None:
        for a, b in zip(srcs, dsts, strict=True):
            cv2.sepFilter2D(a, -1, plan, plan, dst=b, borderType=cv2.BORDER_REPLICATE)


def _disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """ImageNet-C's anti-aliased disk: a normalised disk, then a 3×3 (5×5 if r > 8) Gaussian."""
    r_ext = max(8, math.ceil(radius))
    L = np.arange(-r_ext, r_ext + 1)
    XX, YY = np.meshgrid(L, L)
    disk = ((XX**2 + YY**2) <= radius**2).astype(np.float64)
    disk /= disk.sum()
    ksize = 3 if radius <= 8 else 5
    if alias_blur > 0:  # OpenCV's GaussianBlur with that size and sigma, reflect-101 edges
        t = np.arange(ksize) - ksize // 2
        g = np.exp(-0.5 * (t / alias_blur) ** 2)
        g /= g.sum()
        A = np.zeros((disk.shape[0], disk.shape[0]))
        idx = _fold(np.arange(disk.shape[0])[:, None] + t[None, :], disk.shape[0], "mirror")
        np.add.at(
            A, (np.repeat(np.arange(disk.shape[0]), ksize), idx.ravel()), np.tile(g, A.shape[0])
        )
        disk = A @ disk @ A.T
    # crop the all-zero border: same result, smaller FFTs
    nz = np.argwhere(disk > 1e-12 * disk.max())
    m = int(max(np.abs(nz - r_ext).max(), 0))
    return disk[r_ext - m : r_ext + m + 1, r_ext - m : r_ext + m + 1].astype(np.float32)


@register
class DefocusBlur(_PerImageCv):
    """Defocus: convolution with an anti-aliased disk of radius r pixels (edges mirrored).

    ImageNet-C's ``defocus_blur``: a disk of radius r, smoothed by a small
    Gaussian of σ ``alias`` against aliasing, applied with OpenCV's
    ``filter2D`` edge rule (reflect-101). Radii are in pixels, as in
    ImageNet-C. Fractional severities interpolate r and ``alias`` (from 0).

    ========  ===  ===  ===  ===  ===
    severity  1    2    3    4    5
    r (px)    3    4    6    8    10
    alias σ   0.1  0.5  0.5  0.5  0.5
    ========  ===  ===  ===  ===  ===
    """

    name = "defocus_blur"
    version = 1
    interleave_small = True  # one call per small image instead of one per plane
    TABLE: ClassVar[tuple[tuple[float, float], ...]] = (
        (3, 0.1),
        (4, 0.5),
        (6, 0.5),
        (8, 0.5),
        (10, 0.5),
    )

    def _plan(self, params: Any, severity: float, h: int, w: int) -> Any:
        radius = _interp(severity, 0.0, [r for r, _ in self.TABLE])
        alias = _interp(severity, 0.0, [a for _, a in self.TABLE])
        return _disk_kernel(radius, alias)

    def _image(
        self, cv2: Any, srcs: list[np.ndarray], dsts: list[np.ndarray], i: int, plan: Any
    ) -> None:
        for a, b in zip(srcs, dsts, strict=True):
            cv2.filter2D(a, -1, plan, dst=b, borderType=cv2.BORDER_REFLECT_101)


_DFT_AREA = 130
"""OpenCV's ``filter2D`` correlates float32 through a DFT from a kernel box of this area
on; below it, it loops over the kernel's non-zero taps only."""
_BAND = 10
"""Columns per band of a motion kernel: a band's taps fit a box of at most 11 × 10."""


def _motion_bands(kernels: np.ndarray) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """Cut motion kernels ``(n, rows, width)`` into bands of at most :data:`_BAND` columns.

    A streak at |angle| <= 45° rises at most one row per column, so a band's taps
    fit a box of at most ``(_BAND + 1) × _BAND`` pixels: under :data:`_DFT_AREA`,
    where OpenCV loops over the taps. Per band ``(c0, c1, first, last)``: its
    columns and, per kernel, the first and last row holding a tap (``last <
    first`` when it holds none).
    """
    _, rows, width = kernels.shape
    edges = np.linspace(0, width, -(-width // _BAND) + 1).round().astype(int)
    bands = []
    for c0, c1 in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        nz = kernels[:, :, c0:c1].any(axis=2)
        first = np.where(nz.any(axis=1), nz.argmax(axis=1), rows)
        last = rows - 1 - nz[:, ::-1].argmax(axis=1)
        bands.append((c0, c1, first, last))
    return bands


def _motion_kernels(angles_deg: np.ndarray, radius: float, sigma: float) -> tuple[np.ndarray, int]:
    """ImageNet-C's motion kernels: half-Gaussian weights on integer steps along each angle.

    ``out = Σ_i k_i · x(y − dy_i, x − dx_i)`` with ``k_i ∝ exp(−i²/2σ²)`` for
    ``i = 0 … 2r`` and ``(dy_i, dx_i) = −ceil(i·(sin a, cos a) − ½)``. For
    angles in [−45°, 45°], ``dx ≤ 0`` and ``|dy| ≤ D``: the kernels are
    returned as ``(n, 2D + 1, 2r + 1)`` correlation kernels with origin
    ``(D, 0)``; the box depends on the severity only, not on the angles drawn.
    """
    width = math.floor(2 * radius) + 1
    i = np.arange(width, dtype=np.float64)
    k = np.exp(-(i**2) / (2 * sigma**2)) if sigma > 0 else (i == 0).astype(np.float64)
    k /= k.sum()
    a = np.deg2rad(np.clip(angles_deg, -45.0, 45.0))[:, None]
    dy = -np.ceil(i[None, :] * np.sin(a) - 0.5).astype(np.int64)
    dx = -np.ceil(i[None, :] * np.cos(a) - 0.5).astype(np.int64)
    D = math.ceil((width - 1) * math.sin(math.pi / 4) + 0.5)
    n = angles_deg.shape[0]
    K = np.zeros((n, 2 * D + 1, width), dtype=np.float64)
    img = np.repeat(np.arange(n), width)
    np.add.at(K, (img, (D - dy).ravel(), (-dx).ravel()), np.tile(k, n))
    return K.astype(np.float32), D


@register
class MotionBlur(_PerImageCv):
    """Camera shake: a one-sided streak of length 2r pixels at a random angle per image.

    ImageNet-C's ``motion_blur`` (``imagecorruptions``' version): the image
    is averaged with copies of itself shifted by 0, 1, … 2r pixels along a
    direction drawn uniformly in [−45°, 45°] per image, weighted by a
    half-Gaussian of σ pixels; edges are repeated. The angle is drawn once
    and shared by every severity. Fractional severities interpolate r and σ.

    ========  ==  ==  ==  ==  ==
    severity  1   2   3   4   5
    r (px)    10  15  15  15  20
    σ (px)    3   5   8   12  15
    ========  ==  ==  ==  ==  ==
    """

    name = "motion_blur"
    version = 2  # 2: sums bands of taps (1: shifted copies or one correlation; float rounding)
    interleave_small = True  # one call per small image instead of one per plane
    stochastic = True
    TABLE: ClassVar[tuple[tuple[float, float], ...]] = (
        (10, 3),
        (15, 5),
        (15, 8),
        (15, 12),
        (20, 15),
    )

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(-45.0, 45.0, size=X.shape[0])

    def _plan(self, params: Any, severity: float, h: int, w: int) -> Any:
        radius = _interp(severity, 0.0, [r for r, _ in self.TABLE])
        sigma = _interp(severity, 0.0, [s for _, s in self.TABLE])
        kernels, d = _motion_kernels(np.asarray(params, np.float64), radius, sigma)
        return kernels, d, _motion_bands(kernels)

    def _image(
        self, cv2: Any, srcs: list[np.ndarray], dsts: list[np.ndarray], i: int, plan: Any
    ) -> None:
        kernels, d, bands = plan
        k = kernels[i]
        h, w = srcs[0].shape[:2]
        # the streak's taps, a band of columns at a time, each correlated tap by tap
        # over the edge-padded image (a DFT would cost more), summed: at 224×224, 165 →
        # ~60 ms a batch against 31 shifted copies added one by one; at 32×32, 8.9 →
        # ~4 ms against one correlation over the streak's rows (a DFT there too)
        # (positional arguments: at 32×32 the binding's per-call cost is a good part)
        filter2d, add, constant, origin = cv2.filter2D, cv2.add, cv2.BORDER_CONSTANT, (0, 0)
        spans = [(c0, c1, int(first[i]), int(last[i]) + 1) for c0, c1, first, last in bands]
        spans = [(c0, c1, y0, y1) for c0, c1, y0, y1 in spans if y1 > y0]
        for a, b in zip(srcs, dsts, strict=True):
            pad = cv2.copyMakeBorder(a, d, d, 0, k.shape[1] - 1, cv2.BORDER_REPLICATE)
            for j, (c0, c1, y0, y1) in enumerate(spans):
                view = pad[y0 : y1 + h - 1, c0 : c1 + w - 1]
                part = filter2d(view, -1, k[y0:y1, c0:c1], None, origin, 0, constant)
                if j == 0:
                    b[...] = part[:h, :w]
                else:
                    add(b, part[:h, :w], b)


# -- colour and tone --------------------------------------------------------------------
@register
class Brightness(_PerPixelPerturbation):
    """Brighter: HSV value ``V + c`` (clipped at 1), hue and saturation kept.

    ImageNet-C's ``brightness``. Each RGB pixel is scaled by ``min(V + c, 1) / V``
    (V = its largest channel; black becomes grey ``c``); a 1-channel image
    gets ``x + c``.

    ========  ===  ===  ===  ===  ===
    severity  1    2    3    4    5
    c         0.1  0.2  0.3  0.4  0.5
    ========  ===  ===  ===  ===  ===
    """

    name = "brightness"
    version = 1
    TABLE: ClassVar[tuple[float, ...]] = (0.1, 0.2, 0.3, 0.4, 0.5)

    def _write(self, x: np.ndarray, params: Any, severity: float, dst: np.ndarray) -> None:
        c = np.float32(_interp(severity, 0.0, self.TABLE))
        if x.shape[1] == 1:
            np.add(x, c, out=dst)
            return
        v = np.max(x, axis=1, keepdims=True)
        v_new = np.minimum(v + c, np.float32(1.0))
        ratio = np.divide(v_new, np.maximum(v, np.float32(1e-12)))
        np.multiply(x, ratio, out=dst)
        np.copyto(dst, v_new, where=v <= 0)  # black: grey v_new


@register
class Contrast(_PerPixelPerturbation):
    """Lower contrast: ``(x − μ)·c + μ`` with μ each image's per-channel mean.

    ImageNet-C's ``contrast``. Fractional severities interpolate c from 1.
    Computed as ``c·x + (1 − c)·μ`` in float32: one pass fewer than the
    textbook form, and provably in [0, 1] without a clip (both terms are
    non-negative and round to at most c and 1 − c, whose float sum rounds to
    at most 1).

    ========  ===  ===  ===  ===  ====
    severity  1    2    3    4    5
    c         0.4  0.3  0.2  0.1  0.05
    ========  ===  ===  ===  ===  ====
    """

    name = "contrast"
    version = 2  # 2: c·x + (1 − c)·μ, no clip (1: (x − μ)·c + μ, clipped)
    in_range = True
    TABLE: ClassVar[tuple[float, ...]] = (0.4, 0.3, 0.2, 0.1, 0.05)

    def _chunk_params(self, raw: np.ndarray, params: Any) -> Any:
        # each image's per-channel means, from its own rows: the same bits whatever the
        # chunk or batch (torch may split one reduction across threads; numpy and
        # OpenCV reduce a row in one order)
        n = raw.shape[0]
        if self.layout == "NCHW" and raw.dtype in (np.float32, np.float64):
            # OpenCV's row sums in float64: one row per (image, channel), ~3× numpy's speed
            cv2 = _cv2()
            planes = raw.reshape(-1, raw.shape[2] * raw.shape[3])
            total = cv2.reduce(planes, 1, cv2.REDUCE_SUM, dtype=cv2.CV_64F)
            mu = total.reshape(n, raw.shape[1]) / planes.shape[1]
        elif self.layout == "NCHW":
            mu = raw.reshape(n, raw.shape[1], -1).mean(axis=2, dtype=np.float64)
        else:
            mu = raw.reshape(n, -1, raw.shape[3]).mean(axis=1, dtype=np.float64)
        return mu.astype(np.float32)[:, :, None, None]

    def _write(self, x: np.ndarray, params: Any, severity: float, dst: np.ndarray) -> None:
        c = np.float32(_interp(severity, 1.0, self.TABLE))
        np.multiply(x, c, out=dst)
        dst += params * (np.float32(1.0) - c)  # μ (k, C, 1, 1) in float32


@register
class Saturation(_HsvPerturbation):
    """Colour saturation: HSV ``S' = clip(a·S + b, 0, 1)``, hue and value kept.

    ImageNet-C's ``saturate`` is not monotone: its severities 1–2 desaturate
    (a = 0.3, 0.1) and 3–5 over-saturate (a = 2, 5, 20), so its pixel change
    falls from severity 2 to 3. Ours moves one way. ``direction="up"``
    (default) over-saturates, with ImageNet-C's rows 3, 4, 5 as our
    severities 2, 4, 5; ``direction="down"`` desaturates towards grey, with
    ImageNet-C's rows 1, 2 as our severities 3, 4. Fractional severities
    interpolate (a, b) from (1, 0). A grey pixel (S = 0) has hue 0 (red), as
    in scikit-image, so ``b > 0`` tints it red.

    ==========  ======  ======  =========  =========  =========
    severity    1       2       3          4          5
    up (a, b)   (1.5,0)  (2, 0)  (3.5,0.05)  (5, 0.1)  (20, 0.2)
    down (a,b)  (0.7,0)  (0.5,0) (0.3, 0)    (0.1, 0)  (0, 0)
    ==========  ======  ======  =========  =========  =========
    """

    name = "saturation"
    version = 1
    unit = (
        "severity 1–5 (ImageNet-C's saturate rows, reordered to be monotone; 0 is the "
        "identity; fractions interpolate)"
    )
    _constraints: ClassVar[dict[str, Any]] = {
        "layout": OneOf(LAYOUTS),
        "direction": OneOf(("up", "down")),
    }
    UP: ClassVar[tuple[tuple[float, float], ...]] = (
        (1.5, 0.0),
        (2.0, 0.0),
        (3.5, 0.05),
        (5.0, 0.1),
        (20.0, 0.2),
    )
    DOWN: ClassVar[tuple[tuple[float, float], ...]] = (
        (0.7, 0.0),
        (0.5, 0.0),
        (0.3, 0.0),
        (0.1, 0.0),
        (0.0, 0.0),
    )

    def __init__(self, *, direction: str = "up", layout: str = "NCHW") -> None:
        self.direction = direction
        self.layout = layout

    def _plan(self, params: Any, severity: float, h: int, w: int) -> Any:
        table = self.UP if self.direction == "up" else self.DOWN
        a = _interp(severity, 1.0, [t[0] for t in table])
        b = _interp(severity, 0.0, [t[1] for t in table])
        return np.float32(a), np.float32(b)

    def _adjust(self, hsv: np.ndarray, sl: slice, plan: Any) -> None:
        a, b = plan
        sat = hsv[..., 1]
        sat *= a
        if b:
            sat += b
        np.clip(sat, 0.0, 1.0, out=sat)


@register
class HueShift(_HsvPerturbation):
    """Hue rotation by ±δ degrees on the HSV colour wheel, saturation and value kept.

    Not in ImageNet-C. The sign is drawn per image (``direction="both"``,
    shared by every severity) or fixed (``"positive"``: red → yellow → green;
    ``"negative"``). Grey pixels do not change.

    ========  ==  ==  ==  ==  ==
    severity  1   2   3   4   5
    δ (deg)   10  20  30  45  60
    ========  ==  ==  ==  ==  ==
    """

    name = "hue_shift"
    version = 1
    stochastic = True
    unit = "severity 1–5 on perturbkit's table (hue rotation in degrees; 0 is the identity)"
    _constraints: ClassVar[dict[str, Any]] = {
        "layout": OneOf(LAYOUTS),
        "direction": OneOf(("both", "positive", "negative")),
    }
    TABLE: ClassVar[tuple[float, ...]] = (10.0, 20.0, 30.0, 45.0, 60.0)

    def __init__(self, *, direction: str = "both", layout: str = "NCHW") -> None:
        self.direction = direction
        self.layout = layout

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _uniform_per_image(X, rng)

    def _plan(self, params: Any, severity: float, h: int, w: int) -> Any:
        delta = _interp(severity, 0.0, self.TABLE)
        sign = _signs(params, self.direction, "positive", "negative")
        # as a shift in [0, 360): OpenCV's HSV -> RGB wraps hues up to 720, not below 0
        return np.mod(sign * delta, 360.0).astype(np.float32)

    def _adjust(self, hsv: np.ndarray, sl: slice, plan: Any) -> None:
        hue = hsv[..., 0]
        hue += plan[sl, None]


def _blackbody_rgb(kelvin: np.ndarray) -> np.ndarray:
    """Approximate sRGB white point (0–255) of a black body (Helland's fit, 1000–40000 K)."""
    t = np.asarray(kelvin, dtype=np.float64) / 100.0
    r = np.where(t <= 66, 255.0, 329.698727446 * np.power(np.maximum(t - 60, 1e-9), -0.1332047592))
    g = np.where(
        t <= 66,
        99.4708025861 * np.log(t) - 161.1195681661,
        288.1221695283 * np.power(np.maximum(t - 60, 1e-9), -0.0755148492),
    )
    b = np.where(
        t >= 66,
        255.0,
        np.where(t <= 19, 0.0, 138.5177312231 * np.log(np.maximum(t - 10, 1e-9)) - 305.0447927307),
    )
    return np.clip(np.stack([r, g, b], axis=-1), 0.0, 255.0)


@register
class ColorTemperature(_PerPixelPerturbation):
    """White-balance error: channel gains of a black body at 6500 K ± Δ mired.

    Not in ImageNet-C. The image is rendered as if lit by a black body of
    ``1e6 / (1e6/6500 ± Δ)`` kelvin instead of 6500 K: each channel is
    multiplied by the ratio of the two white points, normalised to keep the
    luminance of white (Rec. 601 weights), then clipped. ``+Δ`` is warmer
    (more red), ``−Δ`` cooler (more blue); the sign is drawn per image
    (``direction="both"``, shared by every severity) or fixed (``"warm"``,
    ``"cool"``). Mired (micro reciprocal degrees) are the perceptually even
    unit of colour temperature.

    ==============  ====  ====  ====  ====  =====
    severity        1     2     3     4     5
    Δ (mired)       15    30    50    75    110
    warm (K)        5917  5436  4907  4374  3791
    cool (K)        7217  8108  9625  12660 22901
    ==============  ====  ====  ====  ====  =====
    """

    name = "color_temperature"
    version = 1
    stochastic = True
    needs_rgb = True
    unit = "severity 1–5 on perturbkit's table (colour temperature shift in mired)"
    _constraints: ClassVar[dict[str, Any]] = {
        "layout": OneOf(LAYOUTS),
        "direction": OneOf(("both", "warm", "cool")),
    }
    TABLE: ClassVar[tuple[float, ...]] = (15.0, 30.0, 50.0, 75.0, 110.0)
    REFERENCE_K: ClassVar[float] = 6500.0

    def __init__(self, *, direction: str = "both", layout: str = "NCHW") -> None:
        self.direction = direction
        self.layout = layout

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _uniform_per_image(X, rng)

    def _write(self, x: np.ndarray, params: Any, severity: float, dst: np.ndarray) -> None:
        d = _interp(severity, 0.0, self.TABLE)
        sign = _signs(params, self.direction, "warm", "cool").astype(np.float64)
        kelvin = 1e6 / (1e6 / self.REFERENCE_K + sign * d)
        gains = _blackbody_rgb(kelvin) / _blackbody_rgb(np.array([self.REFERENCE_K]))
        gains /= (gains @ np.array([0.299, 0.587, 0.114]))[:, None]
        np.multiply(x, gains.astype(np.float32)[:, :, None, None], out=dst)


# -- compression and resolution ---------------------------------------------------------
def _jpeg_simplejpeg(img: np.ndarray, quality: int) -> np.ndarray:
    import simplejpeg

    if img.shape[2] == 1:
        data = simplejpeg.encode_jpeg(
            img, quality=quality, colorspace="GRAY", colorsubsampling="Gray"
        )
        return simplejpeg.decode_jpeg(data, colorspace="GRAY").reshape(img.shape)
    data = simplejpeg.encode_jpeg(img, quality=quality, colorspace="RGB", colorsubsampling="420")
    return simplejpeg.decode_jpeg(data, colorspace="RGB")


def _jpeg_decoder(cv2: Any) -> Any:
    """``decode(buf, shape)`` → 8-bit BGR (or grey) pixels of that shape.

    simplejpeg's decoder when it is installed (libjpeg-turbo with the same
    settings as OpenCV's and Pillow's: the same bits, tested; ~25% faster on
    small images), else OpenCV's.
    """
    try:
        import simplejpeg
    except ImportError:  # pragma: no cover - simplejpeg is in the image extra
        return lambda buf, shape: cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).reshape(shape)

    def decode(buf: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        space = "BGR" if shape[-1] == 3 else "GRAY"
        return simplejpeg.decode_jpeg(buf.data, colorspace=space).reshape(shape)

    return decode


def _jpeg_roundtrip(img: np.ndarray, quality: int) -> np.ndarray:
    import io

    from PIL import Image

    mode = "L" if img.shape[2] == 1 else "RGB"
    buf = io.BytesIO()
    Image.fromarray(img[..., 0] if mode == "L" else img, mode=mode).save(
        buf, format="JPEG", quality=quality
    )
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert(mode))
    return out.reshape(img.shape)


@register
class JpegCompression(ImagePerturbation):
    """JPEG re-encoding at a quality of 25 down to 7 with a real codec (libjpeg-turbo).

    ImageNet-C's ``jpeg_compression``: each image is rounded to 8 bits,
    encoded at the quality below (4:2:0 chroma subsampling, as Pillow's
    default) and decoded. Batching: cache-sized chunks of the batch are
    rounded to 8 bits and laid out as HWC in vectorised steps, their images
    encoded and decoded one by one, and written back (large images shared by
    the thread pool of OpenCV's thread count). The default ``codec="opencv"``
    runs OpenCV's libjpeg-turbo (decoding with simplejpeg when installed):
    its round trip is bit for bit Pillow's. ``codec="pillow"`` runs Pillow
    itself. Fractional
    severities interpolate the quality (100 at severity 0) and round it to
    an integer.

    ``codec="simplejpeg"`` uses the ``simplejpeg`` package (libjpeg-turbo,
    ``pip install simplejpeg``) instead: the same quality tables and 4:2:0
    subsampling, 2× (224×224) to 30× (32×32) faster per image, with a mean
    pixel change within 0.1% of Pillow's but not bit for bit the same.

    ========  ==  ==  ==  ==  ==
    severity  1   2   3   4   5
    quality   25  18  15  10  7
    ========  ==  ==  ==  ==  ==
    """

    name = "jpeg_compression"
    version = 1
    _constraints: ClassVar[dict[str, Any]] = {
        "layout": OneOf(LAYOUTS),
        "codec": OneOf(("opencv", "pillow", "simplejpeg")),
    }
    TABLE: ClassVar[tuple[float, ...]] = (25.0, 18.0, 15.0, 10.0, 7.0)

    def __init__(self, *, codec: str = "opencv", layout: str = "NCHW") -> None:
        self.codec = codec
        self.layout = layout

    def apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        s = float(magnitude)
        if s == 0.0 or X.shape[0] == 0:
            return self.identity(X)
        quality = round(_interp(s, 100.0, self.TABLE))
        nchw = self.layout == "NCHW"
        colour = (X.shape[1] if nchw else X.shape[3]) == 3
        out = np.empty(X.shape, dtype=X.dtype)
        step = _images_per_chunk(X)
        if self.codec == "opencv" and step == 1 and nchw and colour and X.dtype == np.float32:
            self._opencv_planes(X, quality, out)
            return out
        one, bgr = self._codec(quality)

        def work(lo: int, hi: int) -> None:  # quantise, lay out as 8-bit HWC, code, back
            self._check_chunk(X[lo:hi], X)
            xs = X[lo:hi] if X.dtype.itemsize >= 4 else X[lo:hi].astype(np.float32)
            u8 = np.rint(xs * xs.dtype.type(255.0)).astype(np.uint8)  # float16 rounds badly
            if nchw:
                u8 = u8.transpose(0, 2, 3, 1)
            u8 = np.ascontiguousarray(u8[..., ::-1] if bgr and colour else u8)
            dec = np.stack([one(img) for img in u8])
            if bgr and colour:
                dec = dec[..., ::-1]
            dec = dec.transpose(0, 3, 1, 2) if nchw else dec
            np.divide(dec, 255.0, out=out[lo:hi], dtype=out.dtype)

        _each_chunk(work, X.shape[0], step, balance=True)  # the codecs release the GIL
        return out

    def _codec(self, quality: int) -> tuple[Callable[[np.ndarray], np.ndarray], bool]:
        """One image's 8-bit HWC round trip, and whether it takes BGR (OpenCV's order)."""
        if self.codec == "pillow":
            require("PIL", feature="JpegCompression(codec='pillow')")
            return functools.partial(_jpeg_roundtrip, quality=quality), False
        if self.codec == "simplejpeg":
            require("simplejpeg", feature="JpegCompression(codec='simplejpeg')")
            return functools.partial(_jpeg_simplejpeg, quality=quality), False
        cv2 = _cv2()
        decode = _jpeg_decoder(cv2)
        flags = [cv2.IMWRITE_JPEG_QUALITY, quality]

        def one(img: np.ndarray) -> np.ndarray:
            ok, buf = cv2.imencode(".jpg", img, flags)
            if not ok:  # pragma: no cover - libjpeg refuses nothing 8-bit
                raise DataError(f"{type(self).__name__}: OpenCV refused an image.")
            return decode(buf, img.shape)

        return one, True

    def _opencv_planes(self, X: np.ndarray, quality: int, out: np.ndarray) -> None:
        """Large float32 NCHW RGB images, one per task: OpenCV's vectorised 8-bit
        conversion (rounds half to even, as np.rint), merged in BGR order and split,
        all in cache."""
        cv2 = _cv2()
        one, _ = self._codec(quality)

        def work(lo: int, hi: int) -> None:
            self._check_chunk(X[lo], X)
            bgr = cv2.merge([cv2.convertScaleAbs(p, alpha=255.0) for p in X[lo, ::-1]])
            for plane, dst in zip(cv2.split(one(bgr)), out[lo, ::-1], strict=True):
                np.divide(plane, 255.0, out=dst, dtype=np.float32)

        _each_chunk(work, X.shape[0], 1)


@register
class Pixelate(_CvImagePerturbation):
    """Pixelation: downscale by a factor f with a box filter, then upscale back (nearest).

    ImageNet-C's ``pixelate`` (Pillow's BOX down, NEAREST up; the small
    size is ``int(f·side)``, at least 1). Ours averages by area (OpenCV's
    ``INTER_AREA``: at fractional factors a source pixel counts by the part of
    it inside the window, where Pillow counts it whole when its centre is
    inside) and upscales by pixel centres (``INTER_NEAREST_EXACT``).
    Fractional severities interpolate f from 1.

    ========  ===  ===  ===  ===  ====
    severity  1    2    3    4    5
    f         0.6  0.5  0.4  0.3  0.25
    ========  ===  ===  ===  ===  ====
    """

    name = "pixelate"
    version = 3  # 3: planes stacked for the area downscale (2: OpenCV area, nearest-exact)
    in_range = True  # the small image is clipped before the upscale copies it
    TABLE: ClassVar[tuple[float, ...]] = (0.6, 0.5, 0.4, 0.3, 0.25)

    def _plan(self, params: Any, severity: float, h: int, w: int) -> Any:
        f = _interp(severity, 1.0, self.TABLE)
        return max(1, int(w * f)), max(1, int(h * f))

    def _chunk(
        self, cv2: Any, src: np.ndarray, dst: np.ndarray, sl: slice, plan: Any, hwc: bool
    ) -> None:
        """The chunk's images (or channel planes) stacked h rows each as one tall image:
        one area downscale, then one nearest-exact upscale (one large image; a large
        RGB image is interleaved for the downscale) or, for several small ones, two
        gathers of the pixels OpenCV's upscale reads.

        The small size keeps the tall image's ratio, so the area windows never
        straddle two images, and the upscale reads the same rows as image by image:
        the same bits whatever the chunk (tested).
        """
        sw, sh = plan
        h, w = src.shape[1:3] if hwc else src.shape[2:4]
        if src.shape[0] == 1 and not hwc and src.shape[1] == 3:
            # one large RGB image: OpenCV's area downscale runs 1.4× faster on interleaved
            # pixels than on planes (the same bits); the small image is split back
            small = cv2.resize(cv2.merge(list(src[0])), (sw, sh), interpolation=cv2.INTER_AREA)
            np.clip(small, 0.0, 1.0, out=small)
            for plane, out in zip(cv2.split(small), dst[0], strict=True):
                cv2.resize(plane, (w, h), dst=out, interpolation=cv2.INTER_NEAREST_EXACT)
            return
        tall = src.reshape(-1, w, src.shape[3]) if hwc else src.reshape(-1, w)
        small = cv2.resize(tall, (sw, tall.shape[0] // h * sh), interpolation=cv2.INTER_AREA)
        np.clip(small, 0.0, 1.0, out=small)  # the upscale copies: no clip pass after it
        if src.shape[0] == 1:
            up = dst.reshape(tall.shape)
            cv2.resize(small, (w, tall.shape[0]), dst=up, interpolation=cv2.INTER_NEAREST_EXACT)
            return
        blocks = small.reshape(-1, sh, sw, *small.shape[2:])
        rows, cols = _nearest_exact_indices(sh, sw, h, w)
        wide = np.take(blocks, cols, axis=2, mode="clip")
        np.take(wide, rows, axis=1, out=dst.reshape(-1, h, w, *small.shape[2:]), mode="clip")


@functools.lru_cache(maxsize=64)
def _nearest_exact_indices(sh: int, sw: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """The source row and column OpenCV's ``INTER_NEAREST_EXACT`` reads for each output pixel
    of an ``sh × sw → h × w`` upscale (read off by resizing index ramps)."""
    cv2 = _cv2()
    ramp_y = np.arange(sh, dtype=np.float32)[:, None]
    ramp_x = np.arange(sw, dtype=np.float32)[None, :]
    rows = cv2.resize(ramp_y, (1, h), interpolation=cv2.INTER_NEAREST_EXACT)[:, 0]
    cols = cv2.resize(ramp_x, (w, 1), interpolation=cv2.INTER_NEAREST_EXACT)[0]
    return rows.astype(np.intp), cols.astype(np.intp)


# -- geometry ---------------------------------------------------------------------------
# Bilinear resampling stays in [0, 1] (``in_range``, no clip pass): OpenCV's four weights
# are products of multiples of 1/32, exact in float32 and summing to exactly 1, and
# rounding is monotone, so a weighted sum of values in [0, 1] rounds into [0, 1]; mirrored
# edges read only pixels (tests/perturbations/test_image.py feeds values next to 0 and 1).
def _pixel_grid(h: int, w: int) -> tuple[Any, Any]:
    """Pixel-centre coordinates relative to the image centre, (h, w) each, float64 numpy."""
    ys = np.arange(h, dtype=np.float64) - (h - 1) / 2.0
    xs = np.arange(w, dtype=np.float64) - (w - 1) / 2.0
    return np.meshgrid(ys, xs, indexing="ij")


class _Affine(_PerImageCv):
    """Rotation, zoom or translation about the centre: bilinear, mirrored edges.

    OpenCV's ``warpAffine`` samples at 1/32-pixel steps (its fixed-point
    bilinear tables), as every OpenCV-based augmentation does.
    """

    interleaved = True
    in_range = True  # bilinear: see the note above _pixel_grid

    stochastic = True
    unit = "severity 1–5 on perturbkit's table (0 is the identity; fractions interpolate)"

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _uniform_per_image(X, rng)

    @abc.abstractmethod
    def _matrix(self, u: np.ndarray, severity: float, h: int, w: int) -> tuple[Any, Any]:
        """Per image: the 2×2 map from output to source coordinates, and the offset."""

    def _plan(self, params: Any, severity: float, h: int, w: int) -> Any:
        A, t = self._matrix(np.asarray(params, np.float64), severity, h, w)
        # source (y, x) = A @ (y, x) + t about the centre c; OpenCV's inverse map is
        # x_src = M[0] · (x, y, 1), y_src = M[1] · (x, y, 1) in pixels
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
        M = np.empty((A.shape[0], 2, 3))
        M[:, 0, 0], M[:, 0, 1] = A[:, 1, 1], A[:, 1, 0]
        M[:, 1, 0], M[:, 1, 1] = A[:, 0, 1], A[:, 0, 0]
        M[:, 0, 2] = t[:, 1] + cx - A[:, 1, 1] * cx - A[:, 1, 0] * cy
        M[:, 1, 2] = t[:, 0] + cy - A[:, 0, 1] * cx - A[:, 0, 0] * cy
        return M, (w, h)

    def _chunk(
        self, cv2: Any, src: np.ndarray, dst: np.ndarray, sl: slice, plan: Any, hwc: bool
    ) -> None:
        if not hwc:
            super()._chunk(cv2, src, dst, sl, plan, hwc)
            return
        # one interleaved (or grey) image per call, positional arguments: at 32×32 the
        # binding's per-call cost is most of the time
        M, size = plan
        warp, flags, border = (
            cv2.warpAffine,
            cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            cv2.BORDER_REFLECT,
        )
        imgs, outs = _as_cv_image(src), _as_cv_image(dst)
        for a, m, b in zip(imgs, M[sl], outs):
            warp(a, m, size, b, flags, border)

    def _image(
        self, cv2: Any, srcs: list[np.ndarray], dsts: list[np.ndarray], i: int, plan: Any
    ) -> None:
        M, size = plan
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        for a, b in zip(srcs, dsts, strict=True):
            cv2.warpAffine(a, M[i], size, dst=b, flags=flags, borderMode=cv2.BORDER_REFLECT)


@register
class Rotation(_Affine):
    """Small rotation by ±θ degrees about the image centre (bilinear, mirrored edges).

    Not in ImageNet-C. The sign is drawn per image (``direction="both"``,
    shared by every severity) or fixed (``"clockwise"``,
    ``"counterclockwise"``).

    ========  ==  ==  ==  ==  ==
    severity  1   2   3   4   5
    θ (deg)   3   6   9   13  18
    ========  ==  ==  ==  ==  ==
    """

    name = "rotation"
    version = 2  # 2: OpenCV resampling (1/32-pixel bilinear steps)
    _constraints: ClassVar[dict[str, Any]] = {
        "layout": OneOf(LAYOUTS),
        "direction": OneOf(("both", "clockwise", "counterclockwise")),
    }
    TABLE: ClassVar[tuple[float, ...]] = (3.0, 6.0, 9.0, 13.0, 18.0)

    def __init__(self, *, direction: str = "both", layout: str = "NCHW") -> None:
        self.direction = direction
        self.layout = layout

    def _matrix(self, u: np.ndarray, severity: float, h: int, w: int) -> tuple[Any, Any]:
        sign = _signs(u, self.direction, "counterclockwise", "clockwise")
        theta = np.deg2rad(_interp(severity, 0.0, self.TABLE)) * sign.astype(np.float64)
        c, s = np.cos(theta), np.sin(theta)
        # output (y, x) comes from the source rotated back by theta (y axis points down)
        A = np.stack([np.stack([c, s], -1), np.stack([-s, c], -1)], axis=1)
        return A, np.zeros((u.shape[0], 2))


@register
class Translation(_Affine):
    """Small shift by a fraction of the image size in a random direction (mirrored edges).

    Not in ImageNet-C. The direction is drawn uniformly on the circle per
    image and shared by every severity; the shift is ``d·height`` rows and
    ``d·width`` columns along it (sub-pixel shifts interpolate bilinearly).

    ========  ====  ====  ====  ====  ====
    severity  1     2     3     4     5
    d         0.03  0.06  0.09  0.13  0.18
    ========  ====  ====  ====  ====  ====
    """

    name = "translation"
    version = 2  # 2: OpenCV resampling (1/32-pixel bilinear steps)
    TABLE: ClassVar[tuple[float, ...]] = (0.03, 0.06, 0.09, 0.13, 0.18)

    def _matrix(self, u: np.ndarray, severity: float, h: int, w: int) -> tuple[Any, Any]:
        d = _interp(severity, 0.0, self.TABLE)
        phi = 2.0 * np.pi * u
        t = np.stack([-d * h * np.sin(phi), -d * w * np.cos(phi)], axis=-1)
        A = np.broadcast_to(np.eye(2), (u.shape[0], 2, 2))
        return A, t


@register
class Zoom(_Affine):
    """Zoom about the centre by a factor z: in (magnify, crop) or out (shrink, mirrored edges).

    Not in ImageNet-C (its ``zoom_blur`` averages many zooms; this is one).
    The direction is drawn per image (``direction="both"``, shared by every
    severity) or fixed (``"in"``: scale z; ``"out"``: scale 1/z).

    ========  ====  ====  ====  ====  ====
    severity  1     2     3     4     5
    z         1.05  1.10  1.16  1.23  1.32
    ========  ====  ====  ====  ====  ====
    """

    name = "zoom"
    version = 2  # 2: OpenCV resampling (1/32-pixel bilinear steps)
    _constraints: ClassVar[dict[str, Any]] = {
        "layout": OneOf(LAYOUTS),
        "direction": OneOf(("both", "in", "out")),
    }
    TABLE: ClassVar[tuple[float, ...]] = (1.05, 1.10, 1.16, 1.23, 1.32)

    def __init__(self, *, direction: str = "both", layout: str = "NCHW") -> None:
        self.direction = direction
        self.layout = layout

    def _matrix(self, u: np.ndarray, severity: float, h: int, w: int) -> tuple[Any, Any]:
        z = _interp(severity, 1.0, self.TABLE)
        sign = _signs(u, self.direction, "in", "out").astype(np.float64)
        inv = np.power(z, -sign)  # source = output / scale
        A = inv[:, None, None] * np.eye(2)[None]
        return A, np.zeros((u.shape[0], 2))


@register
class LensDistortion(_PerImageCv):
    """Radial lens distortion: barrel (k > 0) or pincushion (k < 0), mirrored edges.

    Not in ImageNet-C. Output pixel at normalised radius r (1 at the corners)
    samples the source at ``r·(1 + k·r²)``: with k > 0 the edges are
    squeezed (barrel), with k < 0 stretched (pincushion). The kind is drawn
    per image (``kind="both"``, shared by every severity) or fixed.

    ========  ====  ====  ====  ====  ====
    severity  1     2     3     4     5
    |k|       0.04  0.08  0.14  0.22  0.32
    ========  ====  ====  ====  ====  ====
    """

    name = "lens_distortion"
    version = 2  # 2: OpenCV resampling (1/32-pixel bilinear steps)
    interleaved = True
    in_range = True  # bilinear: see the note above _pixel_grid
    stochastic = True
    unit = "severity 1–5 on perturbkit's table (radial coefficient |k|; 0 is the identity)"
    _constraints: ClassVar[dict[str, Any]] = {
        "layout": OneOf(LAYOUTS),
        "kind": OneOf(("both", "barrel", "pincushion")),
    }
    TABLE: ClassVar[tuple[float, ...]] = (0.04, 0.08, 0.14, 0.22, 0.32)

    def __init__(self, *, kind: str = "both", layout: str = "NCHW") -> None:
        self.kind = kind
        self.layout = layout

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _uniform_per_image(X, rng)

    def _plan(self, params: Any, severity: float, h: int, w: int) -> Any:
        k = _interp(severity, 0.0, self.TABLE)
        sign = _signs(params, self.kind, "barrel", "pincushion").astype(np.float64)
        py, px = _pixel_grid(h, w)
        half_diag = max(math.hypot((h - 1) / 2.0, (w - 1) / 2.0), 1e-12)
        r2 = (py**2 + px**2) / half_diag**2
        maps = {}  # one source map per sign: every image with that sign shares it
        for sg in (-1.0, 1.0):
            factor = 1.0 + sg * k * r2
            maps[sg] = (
                (px * factor + (w - 1) / 2.0).astype(np.float32),
                (py * factor + (h - 1) / 2.0).astype(np.float32),
            )
        return [maps[float(v)] for v in sign]

    def _image(
        self, cv2: Any, srcs: list[np.ndarray], dsts: list[np.ndarray], i: int, plan: Any
    ) -> None:
        mx, my = plan[i]
        for a, b in zip(srcs, dsts, strict=True):
            cv2.remap(a, mx, my, cv2.INTER_LINEAR, dst=b, borderMode=cv2.BORDER_REFLECT)


@register
class ElasticTransform(_PerImageCv):
    """Elastic deformation: a smooth random displacement field, bilinear, mirrored edges.

    ImageNet-C's ``elastic_transform`` (``imagecorruptions``' version):
    each pixel moves by ``α·G_σ * U`` where U ~ Uniform(−0.005·H, 0.005·H)
    per pixel and axis (drawn once, shared by every severity), smoothed by a
    Gaussian of σ = 0.01·(H, W) pixels (truncated at 3σ, mirrored edges),
    then the image is resampled bilinearly. The displacement is thus about
    the same in pixels for every image size. Fractional severities
    interpolate α from 0.

    ========  =====  =====  =====  ===  ===
    severity  1      2      3      4    5
    α         12.5   16.25  21.25  25   30
    ========  =====  =====  =====  ===  ===
    """

    name = "elastic_transform"
    version = 3  # 3: 23-bit uniforms drawn by threads (2: OpenCV resampling, 1/32 px)
    interleaved = True
    in_range = True  # bilinear: see the note above _pixel_grid
    stochastic = True
    TABLE: ClassVar[tuple[float, ...]] = (12.5, 16.25, 21.25, 25.0, 30.0)

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The smoothed fields ``G_σ * U`` (n, 2, h, w): drawn, then smoothed once per sweep.

        U is ``(k + ½)·2⁻²² − 1`` from the top 23 bits of 32-bit words of
        :func:`_words`; the planes are drawn and smoothed by the thread pool.
        """
        cv2 = _cv2()
        ax = 2 if self.layout == "NCHW" else 1
        h, w = X.shape[ax], X.shape[ax + 1]
        u = np.empty((X.shape[0], 2, h, w), dtype=np.float32)
        planes = u.reshape(-1, h, w)
        words = _words(rng, -(-u.size // 2)).view("<u4")[: u.size].reshape(planes.shape)
        ky, kx = _gaussian_taps(0.01 * h, 3.0), _gaussian_taps(0.01 * w, 3.0)

        def work(lo: int, hi: int) -> None:
            part = planes[lo:hi]
            np.multiply(_unit_interval(words[lo:hi]), np.float32(2.0), out=part)
            part -= np.float32(1.0)
            for plane in part:
                cv2.sepFilter2D(plane, -1, kx, ky, dst=plane, borderType=cv2.BORDER_REFLECT)

        _each_chunk(work, planes.shape[0], _images_per_chunk(planes), balance=True)
        return u

    def _plan(self, params: Any, severity: float, h: int, w: int) -> Any:
        alpha = _interp(severity, 0.0, self.TABLE)
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        return params, np.float32(alpha * 0.005 * h), gx, gy

    def _chunk(
        self, cv2: Any, src: np.ndarray, dst: np.ndarray, sl: slice, plan: Any, hwc: bool
    ) -> None:
        if not hwc or src.shape[0] == 1:
            super()._chunk(cv2, src, dst, sl, plan, hwc)
            return
        # small images: the chunk's maps by two scaleAdd calls over (images, pixels) views
        # of the fields (the same elementwise op as one call per image), then one remap each
        fields, scale, gx, gy = plan
        k, h, w = src.shape[:3]
        part = fields[sl].reshape(k, 2, h * w)
        mx = cv2.scaleAdd(part[:, 0], float(scale), np.tile(gx.reshape(1, -1), (k, 1)))
        my = cv2.scaleAdd(part[:, 1], float(scale), np.tile(gy.reshape(1, -1), (k, 1)))
        remap, linear, border = cv2.remap, cv2.INTER_LINEAR, cv2.BORDER_REFLECT
        imgs, outs = _as_cv_image(src), _as_cv_image(dst)
        for a, x, y, b in zip(imgs, mx.reshape(k, h, w), my.reshape(k, h, w), outs):
            remap(a, x, y, linear, b, border)

    def _image(
        self, cv2: Any, srcs: list[np.ndarray], dsts: list[np.ndarray], i: int, plan: Any
    ) -> None:
        fields, scale, gx, gy = plan
        mx = cv2.scaleAdd(fields[i, 0], float(scale), gx)
        my = cv2.scaleAdd(fields[i, 1], float(scale), gy)
        for a, b in zip(srcs, dsts, strict=True):
            cv2.remap(a, mx, my, cv2.INTER_LINEAR, dst=b, borderMode=cv2.BORDER_REFLECT)
