"""Audio perturbations of batches of equal-length clips, shape ``(n, samples)``.

A clip is a float waveform at full scale [-1, 1] (float16, float32 or float64;
the dtype is kept). A 1-D array is read as one clip and given back 1-D.
Integer PCM must be scaled first (``x / 32768`` for int16); ragged batches
must be padded or cropped to one length. The sample rate is a parameter of
the perturbations that need it (``sample_rate=16000`` by default).

Every operation is vectorised over the batch (numpy and ``scipy.fft`` /
``scipy.signal`` along the sample axis); the spectral ones (time stretch,
pitch shift, pink noise) run in single precision whatever the input dtype.
No output exceeds full scale: a result outside [-1, 1] is limited to it (to
the clip's own peak when the input already exceeds full scale), as a
recording would clip.

Catalogue, by what one unit of magnitude means:

- noise RMS as a fraction of the clip's RMS, SNR = −20·log10(magnitude) dB:
  ``white_noise``, ``pink_noise`` (see :func:`snr_to_magnitude`);
- decibels of gain: ``gain``;
- fraction of samples clipped (at most 1): ``clipping``;
- relative tempo change: ``time_stretch``;
- semitones: ``pitch_shift``;
- octaves of cut-off below the Nyquist frequency: ``low_pass``;
- kilohertz of cut-off: ``high_pass``;
- reverberation time RT60 in seconds: ``reverb``;
- seconds: ``time_shift``.
"""

from __future__ import annotations

import abc
import functools
import math
from typing import Any, ClassVar

import numpy as np

from perturbkit._validation import Interval, OneOf
from perturbkit.exceptions import DataError
from perturbkit.perturbations.base import Perturbation
from perturbkit.perturbations.registry import register

__all__ = [
    "AudioPerturbation",
    "Clipping",
    "Gain",
    "HighPass",
    "LowPass",
    "PinkNoise",
    "PitchShift",
    "Reverb",
    "TimeShift",
    "TimeStretch",
    "WhiteNoise",
    "magnitude_to_snr",
    "snr_to_magnitude",
]

_RATE = Interval(1, None, integer=True)


def snr_to_magnitude(snr_db: float) -> float:
    """The noise magnitude that gives a signal-to-noise ratio of ``snr_db`` decibels."""
    return float(10.0 ** (-float(snr_db) / 20.0))


def magnitude_to_snr(magnitude: float) -> float:
    """The SNR in decibels of noise at ``magnitude`` (``inf`` at 0)."""
    return math.inf if magnitude == 0 else -20.0 * math.log10(float(magnitude))


def _rms(X: np.ndarray) -> np.ndarray:
    """Per-row RMS (float64), accumulated in the rows' own precision."""
    if X.shape[1] == 0:
        return np.zeros(X.shape[0])
    return np.sqrt(np.einsum("ij,ij->i", X, X).astype(np.float64) / X.shape[1])


def _work_dtype(X: np.ndarray) -> np.dtype:
    return np.dtype(np.float32) if X.dtype == np.float16 else X.dtype


class AudioPerturbation(Perturbation):
    """Shared machinery: batch checks, full-scale limiting, dtype kept."""

    modality = "audio"
    rowwise = True
    _may_exceed: ClassVar[bool] = True
    _chunk_samples: ClassVar[int] = 1 << 16  # samples per block of clips (256 KiB of float32)
    _constraints: ClassVar[dict[str, Any]] = {}

    def prepare(self, X: Any) -> tuple[np.ndarray, Any]:
        owner = type(self).__name__
        if isinstance(X, (list, tuple)) and X and all(np.ndim(c) == 1 for c in X):
            lengths = [len(c) for c in X]
            if len(set(lengths)) > 1:
                i = next(k for k, n in enumerate(lengths) if n != lengths[0])
                raise DataError(
                    f"{owner} needs clips of equal length; clip 0 has {lengths[0]} samples and "
                    f"clip {i} has {lengths[i]}. Pad or crop them to one length first."
                )
        try:
            arr = np.asarray(X)
        except ValueError as exc:
            raise DataError(
                f"{owner} needs an (n, samples) batch of equal-length clips; the clips could "
                f"not be stacked ({exc}). Pad or crop them to one length first."
            ) from exc
        if arr.dtype == object:
            raise DataError(
                f"{owner} needs an (n, samples) batch of equal-length float clips. Got a ragged "
                "or object batch instead; pad or crop the clips to one length first."
            )
        if not np.issubdtype(arr.dtype, np.floating):
            raise DataError(
                f"{owner} needs float audio at full scale [-1, 1]. Got dtype {arr.dtype} "
                "instead; scale integer PCM first (x / 32768 for int16)."
            )
        if arr.ndim not in (1, 2):
            raise DataError(
                f"{owner} needs an (n, samples) batch of clips or one 1-D clip. Got shape "
                f"{arr.shape} instead; fold channels into the batch (n * channels, samples)."
            )
        if arr.size and not _finite(arr):
            row = int(np.argwhere(~np.isfinite(arr))[0][0])
            raise DataError(
                f"{owner} needs finite audio; clip {row} holds NaN or infinite samples."
            )
        return arr, None

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> Any:
        """Standard draws for the clips of ``X`` (a 1-D clip draws as a batch of one)."""
        return self._sample(X.reshape(1, -1) if X.ndim == 1 else X, rng)

    def apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        """The perturbed copy of ``X``, computed a cache-sized block of clips at a time.

        Every operation treats clips independently, so the blocking changes no
        bit of the result; it keeps the arithmetic in the CPU cache.
        """
        if magnitude == 0 or X.size == 0:
            return X.copy()
        X2 = X.reshape(1, -1) if X.ndim == 1 else X
        out = np.empty_like(X2)
        step = max(1, self._chunk_samples // max(1, X2.shape[1]))
        limit = self._needs_limit(magnitude)
        for a in range(0, X2.shape[0], step):
            Xc = X2[a : a + step]
            res = self._apply(
                Xc.astype(_work_dtype(Xc), copy=False), _rows(params, a, a + step), magnitude
            )
            out[a : a + step] = _limit(Xc, res) if limit else res
        return out.reshape(X.shape)

    def _sample(self, X: np.ndarray, rng: np.random.Generator) -> Any:
        return None

    @abc.abstractmethod
    def _apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        """The perturbation of a 2-D float batch of clips at ``magnitude``."""

    def _needs_limit(self, magnitude: float) -> bool:
        return self._may_exceed


def _finite(arr: np.ndarray) -> bool:
    """Whether every sample is finite: one BLAS pass (NaN and inf propagate into x·x)."""
    if arr.flags.c_contiguous and arr.dtype in (np.float32, np.float64):
        flat = arr.reshape(-1)
        if np.isfinite(np.dot(flat, flat)):
            return True  # otherwise NaN, inf, or an overflow of x·x: check exactly
    return bool(np.isfinite(arr).all())


def _rows(params: Any, a: int, b: int) -> Any:
    """Rows ``a:b`` of per-clip params (None, an array, or a tuple of arrays)."""
    if params is None:
        return None
    if isinstance(params, tuple):
        return tuple(p[a:b] for p in params)
    return params[a:b]


def _limit(X: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Clip to full scale, or to each clip's own peak where the input exceeds full scale."""
    if X.max() <= 1 and X.min() >= -1:
        return np.clip(out, -1, 1, out=out if out is not X else None)
    peak = np.maximum(np.abs(X).max(axis=1, keepdims=True), 1).astype(out.dtype)
    return np.clip(out, -peak, peak)


# -- noise ----------------------------------------------------------------------------------
class _Noise(AudioPerturbation):
    """Additive noise with RMS ``magnitude × clip RMS`` (exactly, per clip)."""

    unit = "noise RMS as a fraction of the clip's RMS: SNR = −20·log10(magnitude) dB"

    def __init__(self) -> None:
        pass

    @abc.abstractmethod
    def _standard(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        """Unit-RMS noise of the given shape."""

    def _sample(self, X: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(noise / its RMS, its RMS)`` per clip: unit-RMS float32 noise, and the raw RMS."""
        z = self._standard(rng, (X.shape[0], X.shape[1]))
        rms = _rms(z)
        scale = np.divide(1.0, rms, out=np.zeros_like(rms), where=rms > 0)
        return (z * scale[:, None].astype(np.float32)).astype(np.float32, copy=False), rms

    def _apply(
        self, X: np.ndarray, params: tuple[np.ndarray, np.ndarray], magnitude: float
    ) -> np.ndarray:
        scale = (magnitude * _rms(X)).astype(X.dtype)
        return X + scale[:, None] * params[0]


@register
class WhiteNoise(_Noise):
    """White Gaussian noise at a signal-to-noise ratio set by the magnitude.

    The noise of each clip has RMS exactly ``magnitude ×`` the clip's RMS, so
    the realised SNR is ``−20·log10(magnitude)`` dB: 0.1 → 20 dB, 0.316 → 10
    dB, 1 → 0 dB (:func:`snr_to_magnitude` converts). A silent clip stays
    silent. The noise is drawn once per clip (float32, normalised to unit
    RMS) and scaled by the magnitude.
    """

    name = "white_noise"
    version = 1

    def _standard(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)


@register
class PinkNoise(_Noise):
    """Pink (1/f power) noise at a signal-to-noise ratio set by the magnitude.

    The same unit as :class:`WhiteNoise`: noise RMS = ``magnitude ×`` clip RMS,
    SNR = ``−20·log10(magnitude)`` dB. The noise is Gaussian, drawn in the
    frequency domain (a complex normal per bin, the spectrum of white noise)
    and shaped by ``1/√f`` (power falls 3 dB per octave; no DC), then
    normalised to unit RMS per clip.
    """

    name = "pink_noise"
    version = 1

    def _standard(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        """Gaussian noise drawn in the frequency domain, one complex normal per bin, shaped."""
        from scipy import fft

        n, length = shape
        if length < 2:
            return rng.standard_normal(shape, dtype=np.float32)  # no spectrum to shape
        bins = length // 2 + 1
        z = rng.standard_normal((n, 2, bins), dtype=np.float32)
        k = np.arange(bins, dtype=np.float32)
        weight = np.divide(1.0, np.sqrt(k), out=np.zeros_like(k), where=k > 0)
        spec = np.empty((n, bins), np.complex64)
        spec.real = z[:, 0] * weight
        spec.imag = z[:, 1] * weight
        if length % 2 == 0:
            spec[:, -1].imag = 0  # the Nyquist bin of an even length is real
        return fft.irfft(spec, n=length, axis=1).astype(np.float32, copy=False)


# -- level ----------------------------------------------------------------------------------
@register
class Gain(AudioPerturbation):
    """A change of level by ``magnitude`` decibels, down (default) or up.

    ``direction="down"`` multiplies by ``10^(−magnitude/20)`` (a quieter
    microphone: 6 dB halves the amplitude); ``"up"`` by ``10^(magnitude/20)``,
    and what then exceeds full scale clips. Deterministic.
    """

    name = "gain"
    version = 1
    unit = "decibels of gain (down or up)"
    stochastic = False
    _constraints: ClassVar[dict[str, Any]] = {"direction": OneOf(("down", "up"))}

    def __init__(self, *, direction: str = "down") -> None:
        self.direction = direction

    def _needs_limit(self, magnitude: float) -> bool:
        return self.direction == "up"  # a gain below 1 cannot exceed the input's own range

    def _apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        sign = -1.0 if self.direction == "down" else 1.0
        return X * X.dtype.type(10.0 ** (sign * magnitude / 20.0))


@register
class Clipping(AudioPerturbation):
    """Clipping distortion: the loudest fraction ``magnitude`` of the samples is clipped.

    Each clip is limited to ``±t`` with ``t`` its k-th largest ``|x|``,
    k = ``round(magnitude × samples)`` (at least 1), so a fraction magnitude
    of its samples (at most 1) are at the limit: 0.01 clips the peaks, 0.5
    squares the waveform off, 1 leaves only the quietest sample's level.
    Deterministic.
    """

    name = "clipping"
    version = 1
    unit = "fraction of samples clipped (at most 1)"
    stochastic = False
    max_magnitude = 1.0
    _may_exceed = False

    def __init__(self) -> None:
        pass

    def _apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        length = X.shape[1]
        k = min(length, max(1, round(magnitude * length)))  # samples at the limit
        a = np.abs(X)
        t = np.partition(a, length - k, axis=1)[:, length - k : length - k + 1]
        return np.clip(X, -t, t)


# -- time and pitch ------------------------------------------------------------------------
def _n_fft(sample_rate: int) -> int:
    """A power of two near 32 ms."""
    return max(16, 2 ** round(math.log2(0.032 * sample_rate)))


def _stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred STFT (zero padding, Hann window) of float32 rows: ``(n, frames, bins)``."""
    from scipy import fft

    pad = n_fft // 2
    length = x.shape[1]
    n_frames = 1 + -(-length // hop)
    total = (n_frames - 1) * hop + n_fft
    xp = np.zeros((x.shape[0], total), np.float32)
    xp[:, pad : pad + length] = x
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft, axis=1)[:, ::hop]
    return fft.rfft(frames * _hann(n_fft), axis=-1)


def _fast(k: int) -> bool:
    """Whether ``k`` has no prime factor above 11 (pocketfft's fast sizes)."""
    for p in (2, 3, 5, 7, 11):
        while k % p == 0:
            k //= p
    return k == 1


@functools.lru_cache(maxsize=256)
def _resampling_sizes(stretched: float, length: int) -> tuple[int, int]:
    """FFT sizes ``(n, m)`` with ``n / m`` the ratio ``stretched / length``, both fast if can be.

    Band-limited resampling of ``stretched`` samples to ``length`` needs
    transforms of those sizes, and a size with a large prime factor is
    several times slower. The stretched signal is zero-padded to a fast
    ``n`` instead, with ``m = round(n · length / stretched)`` fast too (the
    first such pair within 25 % more samples): the ratio is then off by at
    most ``0.5 / m`` (0.05 cent at 16,000 samples).
    """
    start = max(1, math.ceil(stretched))
    for n in range(start, math.ceil(1.25 * start) + 1):
        m = max(length, round(n * length / stretched))
        if _fast(n) and _fast(m):
            return n, m
    return start, max(length, round(start * length / stretched))


def _hann(n: int) -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def _istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """Weighted overlap-add inverse of :func:`_stft`, cropped or zero-padded to ``length``."""
    from scipy import fft

    n, t, _ = spec.shape
    win = _hann(n_fft)
    frames = fft.irfft(spec, n=n_fft, axis=-1).astype(np.float32, copy=False) * win
    k = n_fft // hop
    parts = frames.reshape(n, t, k, hop)
    y = np.zeros((n, t + k - 1, hop), np.float32)
    wsum = np.zeros((t + k - 1, hop), np.float32)
    w2 = (win * win).reshape(k, hop)
    for j in range(k):
        y[:, j : j + t] += parts[:, :, j]
        wsum[j : j + t] += w2[j]
    y = y.reshape(n, -1)
    wsum = wsum.reshape(-1)
    y /= np.where(wsum > 1e-6, wsum, 1.0)
    pad = n_fft // 2
    out = np.zeros((n, length), np.float32)
    got = y[:, pad : pad + length]
    out[:, : got.shape[1]] = got
    return out


def _stretch(x: np.ndarray, rate: float, n_fft: int, out_len: int) -> np.ndarray:
    """Phase-vocoder time stretch of float32 rows by ``rate`` (> 1 faster), ``out_len`` samples.

    librosa's algorithm, vectorised over rows and frames: magnitudes are
    interpolated between analysis frames, and each output frame advances the
    phase by the phase difference of its two analysis frames. That advance is
    carried as a unit phasor, ``(c1/|c1|)·conj(c0/|c0|)``, and accumulated by
    multiplication: the same phases as librosa's wrapped angle sums, without
    arctangents, sines or cosines.
    """
    hop = n_fft // 4
    spec = _stft(x, n_fft, hop)
    n, t, f = spec.shape
    n_out = min(math.ceil(t / rate), -(-out_len // hop) + 1)
    steps = np.arange(n_out) * rate
    idx = np.minimum(steps.astype(np.int64), t - 1)
    alpha = (steps - idx).astype(np.float32)[None, :, None]
    mag = np.zeros((n, t + 1, f), np.float32)
    unit = np.ones((n, t + 1, f), np.complex64)  # each analysis bin's phase, as a unit phasor
    np.abs(spec, out=mag[:, :t])
    np.divide(spec, mag[:, :t], out=unit[:, :t], where=mag[:, :t] > 0)
    m0, m1 = mag[:, idx], mag[:, idx + 1]
    out_mag = m0 + alpha * (m1 - m0)
    turn = unit[:, idx + 1]
    before = unit[:, idx]
    turn *= np.conjugate(before, out=before)
    acc = np.empty((n, n_out, f), np.complex64)
    acc[:, 0] = unit[:, 0]
    for j in range(1, n_out):  # a cumulative product over frames: contiguous (n, bins) products
        np.multiply(acc[:, j - 1], turn[:, j - 1], out=acc[:, j])
    acc *= out_mag
    return _istft(acc, n_fft, hop, out_len)


class _TimeBase(AudioPerturbation):
    _chunk_samples = 1 << 18

    def _n_fft(self) -> int:
        return _n_fft(self.sample_rate)

    sample_rate: int


@register
class TimeStretch(_TimeBase):
    """Tempo change without pitch change (a faster or slower speaker).

    ``direction="faster"`` plays at rate ``1 + magnitude`` (0.25: 25 % faster),
    ``"slower"`` at rate ``1 / (1 + magnitude)``. A phase vocoder (Hann
    window of about 32 ms at ``sample_rate``, hop a quarter of it) changes
    the duration and keeps the pitch, as ``librosa.effects.time_stretch``
    does; the clip keeps its length: a faster clip is zero-padded at the end,
    a slower one cropped. Deterministic.
    """

    name = "time_stretch"
    version = 1
    unit = "relative tempo change: rate 1 + magnitude (faster) or 1 / (1 + magnitude)"
    stochastic = False
    _constraints: ClassVar[dict[str, Any]] = {
        "direction": OneOf(("faster", "slower")),
        "sample_rate": _RATE,
    }

    def __init__(self, *, direction: str = "faster", sample_rate: int = 16000) -> None:
        self.direction = direction
        self.sample_rate = sample_rate

    def _apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        rate = 1 + magnitude if self.direction == "faster" else 1 / (1 + magnitude)
        length = X.shape[1]
        n_fft = self._n_fft()
        y = _stretch(X.astype(np.float32, copy=False), rate, n_fft, max(1, round(length / rate)))
        out = np.zeros(X.shape, np.float32)
        k = min(length, y.shape[1])
        out[:, :k] = y[:, :k]
        return out


@register
class PitchShift(_TimeBase):
    """Pitch change without tempo change, by ``magnitude`` semitones up or down.

    The clip is time-stretched by the factor ``2^(±magnitude/12)`` (longer for
    a higher pitch) with the phase vocoder of :class:`TimeStretch` and
    resampled (FFT, band-limited) back to its length, as
    ``librosa.effects.pitch_shift`` does. 12 semitones is an octave; at most
    24. Deterministic.
    """

    name = "pitch_shift"
    version = 1
    unit = "semitones (up or down)"
    stochastic = False
    max_magnitude = 24.0
    _constraints: ClassVar[dict[str, Any]] = {
        "direction": OneOf(("up", "down")),
        "sample_rate": _RATE,
    }

    def __init__(self, *, direction: str = "up", sample_rate: int = 16000) -> None:
        self.direction = direction
        self.sample_rate = sample_rate

    def _apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:
        from scipy import fft

        steps = magnitude if self.direction == "up" else -magnitude
        factor = 2.0 ** (steps / 12.0)  # stretch longer by it, then resample shorter: pitch up
        length = X.shape[1]
        n, m = _resampling_sizes(length * factor, length)
        y = _stretch(X.astype(np.float32, copy=False), 1 / factor, self._n_fft(), n)
        spec = fft.rfft(y, axis=1)
        out = np.zeros((X.shape[0], m // 2 + 1), spec.dtype)
        keep = min(n, m) // 2 + 1
        out[:, :keep] = spec[:, :keep]
        return (fft.irfft(out, n=m, axis=1)[:, :length] * np.float32(m / n)).astype(np.float32)


# -- filters -------------------------------------------------------------------------------
@functools.lru_cache(maxsize=64)
def _butter(order: int, wn: float, btype: str) -> tuple[np.ndarray, int]:
    """Second-order sections of the Butterworth filter, and how long its response rings.

    The ring length is where the impulse response's remaining energy falls
    below 1e-9 of its total (at most 2^16 samples); the signal is padded by it.
    """
    from scipy import signal

    sos = signal.butter(order, wn, btype=btype, output="sos")
    impulse = np.zeros(1 << 16)
    impulse[0] = 1.0
    h = signal.sosfilt(sos, impulse)
    tail = np.cumsum((h**2)[::-1])[::-1]
    ring = int(np.argmax(tail < 1e-9 * tail[0])) or impulse.size
    return sos, ring


def _zero_phase(X: np.ndarray, order: int, wn: float, btype: str) -> np.ndarray:
    """Zero-phase Butterworth filtering, in the frequency domain.

    The clip is extended at both ends by odd reflection (as ``filtfilt``
    does) by the filter's ring length, its spectrum multiplied by ``|H|²``
    (the response of the filter run forwards and backwards) and transformed
    back: the same filter as ``sosfiltfilt``, at the cost of two FFTs.
    """
    from scipy import fft, signal

    sos, ring = _butter(order, wn, btype)
    length = X.shape[1]
    pad = min(ring, length - 1)
    x = X.astype(np.float32, copy=False)
    if pad > 0:
        left = 2 * x[:, :1] - x[:, pad:0:-1]
        right = 2 * x[:, -1:] - x[:, -2 : -pad - 2 : -1]
        x = np.concatenate([left, x, right], axis=1)
    size = fft.next_fast_len(x.shape[1], real=True)
    spec = fft.rfft(x, n=size, axis=1)
    _, h = signal.sosfreqz(sos, worN=np.arange(spec.shape[1]) * (2 * np.pi / size))
    spec *= (np.abs(h) ** 2).astype(np.float32)
    return fft.irfft(spec, n=size, axis=1)[:, pad : pad + length]


@register
class LowPass(AudioPerturbation):
    """Low-pass filtering (a muffled or band-limited channel), ``magnitude`` octaves down.

    The cut-off is ``(sample_rate / 2) · 2^(−magnitude)``: at 16 kHz, 1 → 4 kHz,
    2 → 2 kHz, 3 → 1 kHz (telephone-like). A zero-phase Butterworth filter of
    ``order``: the response of the filter run forwards and backwards (no
    delay, twice the slope, −6 dB at the cut-off), applied in the frequency
    domain to the clip extended by odd reflection.
    The cut-off never exceeds 0.999 of Nyquist. At most 10 octaves.
    Deterministic.
    """

    name = "low_pass"
    version = 1
    unit = "octaves of cut-off below the Nyquist frequency"
    stochastic = False
    _chunk_samples = 1 << 18
    max_magnitude = 10.0
    _constraints: ClassVar[dict[str, Any]] = {"order": Interval(1, 16, integer=True)}

    def __init__(self, *, order: int = 4) -> None:
        self.order = order

    def _apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:

        return _zero_phase(X, int(self.order), min(2.0 ** (-magnitude), 0.999), "low")


@register
class HighPass(AudioPerturbation):
    """High-pass filtering (a small loudspeaker, a thin microphone), cut-off ``magnitude`` kHz.

    Removes what lies below ``1000 · magnitude`` Hz with a zero-phase
    Butterworth filter of ``order`` at ``sample_rate`` (as :class:`LowPass`
    applies it; −6 dB at the cut-off): 0.1 removes rumble,
    0.3 thins a voice, 1 leaves little of it. A cut-off at or above the
    Nyquist frequency leaves silence. Deterministic.
    """

    name = "high_pass"
    version = 1
    unit = "cut-off frequency in kHz"
    stochastic = False
    _chunk_samples = 1 << 18
    _constraints: ClassVar[dict[str, Any]] = {
        "order": Interval(1, 16, integer=True),
        "sample_rate": _RATE,
    }

    def __init__(self, *, order: int = 4, sample_rate: int = 16000) -> None:
        self.order = order
        self.sample_rate = sample_rate

    def _apply(self, X: np.ndarray, params: Any, magnitude: float) -> np.ndarray:

        wn = 1000.0 * magnitude / (self.sample_rate / 2)
        if wn >= 1:
            return np.zeros_like(X)
        return _zero_phase(X, int(self.order), wn, "high")


# -- room and timing -----------------------------------------------------------------------
@register
class Reverb(AudioPerturbation):
    """A simple reverb: a synthetic room with reverberation time ``magnitude`` seconds (RT60).

    Each clip is convolved with its own impulse response: the direct sound
    plus a tail of white noise (uniform, unit variance) decaying by 60 dB
    over ``magnitude`` seconds (exponentially), whose energy is ``wet × magnitude`` times the
    direct sound's (``wet=0.5``: a 1 s room adds half the energy again). The
    sum is scaled by ``1/√(1 + wet·magnitude)`` to keep the level. The tail
    noise is drawn once per clip and the magnitude stretches its envelope, so
    larger rooms are smooth continuations of smaller ones. The tail is at
    most the clip's length.
    """

    name = "reverb"
    version = 1
    unit = "reverberation time RT60, in seconds"
    _chunk_samples = 1 << 18
    _constraints: ClassVar[dict[str, Any]] = {
        "wet": Interval(0, None),
        "sample_rate": _RATE,
    }

    def __init__(self, *, wet: float = 0.5, sample_rate: int = 16000) -> None:
        self.wet = wet
        self.sample_rate = sample_rate

    def _sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each clip's tail noise: uniform on [−√3, √3) (unit variance), float32."""
        u = rng.random((X.shape[0], X.shape[1]), dtype=np.float32)
        return (u - np.float32(0.5)) * np.float32(2 * math.sqrt(3))

    def _apply(self, X: np.ndarray, params: np.ndarray, magnitude: float) -> np.ndarray:
        from scipy import signal

        sr, length = self.sample_rate, X.shape[1]
        decay = 3 * math.log(10)  # amplitude e-folds to -60 dB at t = RT60
        n_tail = min(length - 1, math.ceil(magnitude * sr))
        if n_tail <= 0 or self.wet == 0:
            return X.copy()
        t = np.arange(1, n_tail + 1, dtype=np.float64) / sr
        amp = math.sqrt(2 * decay * float(self.wet) / sr)
        env = (amp * np.exp(-decay * t / magnitude)).astype(np.float32)
        tail = params[:, :n_tail] * env
        wet = signal.fftconvolve(X.astype(np.float32, copy=False), tail, axes=1)
        out = X.astype(np.float32, copy=True)
        out[:, 1:] += wet[:, : length - 1]
        out *= np.float32(1 / math.sqrt(1 + float(self.wet) * magnitude))
        return out


@register
class TimeShift(AudioPerturbation):
    """A shift in time by ``magnitude`` seconds, earlier or later (a fair coin per clip).

    ``mode="pad"`` (default) fills the gap with silence and drops what leaves
    the clip; ``mode="roll"`` wraps it around. The direction is drawn once
    per clip, so the shift grows with the magnitude in the same direction.
    """

    name = "time_shift"
    version = 1
    unit = "shift in seconds"
    _may_exceed = False
    _constraints: ClassVar[dict[str, Any]] = {
        "mode": OneOf(("pad", "roll")),
        "sample_rate": _RATE,
    }

    def __init__(self, *, mode: str = "pad", sample_rate: int = 16000) -> None:
        self.mode = mode
        self.sample_rate = sample_rate

    def _sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One uniform per clip: the clip moves later when it is below 1/2."""
        return rng.random(X.shape[0])

    def _apply(self, X: np.ndarray, params: np.ndarray, magnitude: float) -> np.ndarray:
        length = X.shape[1]
        k = round(magnitude * self.sample_rate)
        later = np.asarray(params) < 0.5
        if self.mode == "roll":
            out = np.empty_like(X)
            out[later] = np.roll(X[later], k, axis=1)
            out[~later] = np.roll(X[~later], -k, axis=1)
            return out
        out = np.empty_like(X)
        if k >= length:
            out[:] = 0
            return out
        out[:, :k] = 0
        out[:, k:] = X[:, : length - k]  # every clip later; then the earlier ones
        early = np.flatnonzero(~later)
        out[early, : length - k] = X[early, k:]
        out[early, length - k :] = 0
        return out
