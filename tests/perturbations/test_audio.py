"""Audio perturbations: realised SNR, range kept, known answers per unit, bad input, a real model.

Signals are synthesised (tones, harmonic stacks, clicks), so every expected
value is known in closed form; tolerances are stated where they come from.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest

import perturbkit as pk
from perturbkit import perturbations
from perturbkit.exceptions import DataError, ParameterError
from perturbkit.perturbations.audio import (
    Clipping,
    Gain,
    HighPass,
    LowPass,
    PinkNoise,
    PitchShift,
    Reverb,
    TimeShift,
    TimeStretch,
    WhiteNoise,
    magnitude_to_snr,
    snr_to_magnitude,
)

SR = 16000
T = np.arange(SR) / SR


def tone(freq: float, amp: float = 0.3, n: int = SR) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / SR)).astype(np.float32)


def dominant(x: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.shape[-1])))
    return float(np.argmax(spec) * sr / x.shape[-1])


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    noise = noisy.astype(np.float64) - clean
    return 10 * np.log10((clean.astype(np.float64) ** 2).sum(1) / (noise**2).sum(1))


@pytest.fixture(scope="module")
def speechlike() -> np.ndarray:
    """Eight 1 s clips: harmonic stacks with a syllable-rate envelope, peak below 1."""
    gen = np.random.default_rng(0)
    f0 = gen.uniform(90, 250, (8, 1))
    x = sum(np.sin(2 * np.pi * k * f0 * T + gen.uniform(0, 6.3, (8, 1))) / k for k in range(1, 9))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * T + gen.uniform(0, 6.3, (8, 1)))
    x = x * env
    return (0.5 * x / np.abs(x).max(axis=1, keepdims=True)).astype(np.float32)


# -- noise at a given SNR -----------------------------------------------------------------
@pytest.mark.parametrize("cls", [WhiteNoise, PinkNoise])
@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0, 35.0])
def test_snr_is_realised_within_half_a_db(cls: type, snr: float, speechlike: np.ndarray) -> None:
    out = cls()(speechlike, snr_to_magnitude(snr), 3)
    # Exact up to float32 rounding and the full-scale limit (not reached here).
    np.testing.assert_allclose(snr_db(speechlike, out), snr, atol=0.5)
    np.testing.assert_allclose(snr_db(speechlike, out), snr, atol=0.01)


def test_snr_conversions() -> None:
    assert snr_to_magnitude(20) == pytest.approx(0.1)
    assert magnitude_to_snr(0.1) == pytest.approx(20)
    assert magnitude_to_snr(0) == math.inf


def test_pink_noise_falls_3db_per_octave() -> None:
    params = PinkNoise().sample(np.zeros((64, SR), np.float32), np.random.default_rng(1))
    power = (np.abs(np.fft.rfft(params[0], axis=1)) ** 2).mean(axis=0)
    octave = [power[lo : 2 * lo].mean() for lo in (100, 200, 400, 800, 1600)]
    slopes = 10 * np.log10(np.asarray(octave[1:]) / octave[:-1])
    np.testing.assert_allclose(slopes, -3.01, atol=0.3)


def test_white_noise_is_white_and_gaussian() -> None:
    z = WhiteNoise().sample(np.zeros((16, SR), np.float32), np.random.default_rng(2))[0]
    assert abs(float((z**4).mean()) - 3.0) < 0.05  # kurtosis of a normal
    power = (np.abs(np.fft.rfft(z, axis=1)) ** 2).mean(axis=0)
    low, high = power[100:2000].mean(), power[6000:7900].mean()
    assert abs(10 * np.log10(high / low)) < 0.2


def test_noise_draws_are_shared_across_magnitudes(speechlike: np.ndarray) -> None:
    p = WhiteNoise()
    d1 = p(speechlike, 0.1, 5) - speechlike
    d2 = p(speechlike, 0.2, 5) - speechlike
    np.testing.assert_allclose(d2, 2 * d1, rtol=1e-4, atol=1e-6)


# -- range -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", perturbations.list("audio"))
def test_full_scale_is_kept(name: str) -> None:
    loud = np.stack([tone(440, 0.99), tone(3000, 0.99), np.sign(tone(100)) * 0.99])
    p = perturbations.get(name, **({"direction": "up"} if name == "gain" else {}))
    hi = 1.0 if p.max_magnitude is None else float(p.max_magnitude)
    for m in (0.5 * hi, hi, 3 * hi if p.max_magnitude is None else hi):
        out = p(loud, m, 0)
        assert out.dtype == np.float32 and out.shape == loud.shape
        assert np.abs(out).max() <= 1.0, (name, m)


def test_clips_already_over_full_scale_keep_their_own_peak() -> None:
    x = np.stack([tone(440, 2.0), tone(440, 0.5)])
    out = WhiteNoise()(x, 1.0, 0)
    assert np.abs(out[0]).max() <= 2.0 + 1e-6 and np.abs(out[0]).max() > 1.5
    assert np.abs(out[1]).max() <= 1.0


# -- known answers per unit ------------------------------------------------------------------
def test_gain_is_exact_decibels() -> None:
    x = np.stack([tone(440), tone(880, 0.1)])
    np.testing.assert_allclose(Gain()(x, 6.0, 0), x * 10 ** (-6 / 20), rtol=1e-6)
    np.testing.assert_allclose(Gain(direction="up")(x, 3.0, 0), x * 10 ** (3 / 20), rtol=1e-6)


@pytest.mark.parametrize("m", [0.01, 0.1, 0.5])
def test_clipping_clips_the_requested_fraction(m: float, speechlike: np.ndarray) -> None:
    out = Clipping()(speechlike, m, 0)
    limit = np.abs(out).max(axis=1, keepdims=True)
    at_limit = (np.abs(speechlike) >= limit).mean(axis=1)
    np.testing.assert_allclose(at_limit, m, atol=2 / SR + 1e-3)


def test_time_shift_is_exact() -> None:
    x = np.stack([tone(440)] * 6)
    p = TimeShift()
    later = p.sample(x, np.random.default_rng(7)) < 0.5
    out = p(x, 0.01, 7)
    k = 160
    for row, is_later in zip(out, later):
        if is_later:
            np.testing.assert_array_equal(row[k:], x[0, :-k])
            assert not row[:k].any()
        else:
            np.testing.assert_array_equal(row[:-k], x[0, k:])
    rolled = TimeShift(mode="roll")(x, 0.01, 7)
    assert sorted(rolled[0].tolist()) == sorted(x[0].tolist())


def _gain_db(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    middle = slice(4000, 12000)  # away from the edges' transients
    return 20 * np.log10(np.abs(out[:, middle]).max(1) / np.abs(x[:, middle]).max(1))


def _butter_db(order: int, cutoff: float, btype: str, freqs: list[float], sr: int = SR) -> Any:
    """Zero-phase (run twice) gain in dB of the digital Butterworth filter, per frequency."""
    from scipy import signal

    sos = signal.butter(order, cutoff / (sr / 2), btype=btype, output="sos")
    _, h = signal.sosfreqz(sos, worN=np.asarray(freqs), fs=sr)
    return 2 * 20 * np.log10(np.abs(h))


@pytest.mark.parametrize("order", [2, 4])
def test_low_pass_cutoff_is_octaves_below_nyquist(order: int) -> None:
    freqs = [500.0, 1000.0, 1000 * 2**0.5, 4000.0]
    x = np.stack([tone(f) for f in freqs])
    out = LowPass(order=order)(x, 3.0, 0)  # magnitude 3: 8 kHz / 2^3 = 1 kHz
    expect = _butter_db(order, 1000.0, "low", freqs)
    assert expect[1] == pytest.approx(-6.02, abs=0.01)  # -3 dB at the cut-off, twice
    np.testing.assert_allclose(_gain_db(x, out)[:3], expect[:3], atol=0.2)
    assert _gain_db(x, out)[3] < -40


def test_high_pass_cutoff_is_kilohertz() -> None:
    freqs = [100.0, 500.0, 3000.0]
    x = np.stack([tone(f) for f in freqs])
    out = HighPass()(x, 0.5, 0)  # magnitude 0.5: cut-off 500 Hz
    gain = _gain_db(x, out)
    assert gain[0] < -40
    np.testing.assert_allclose(gain[1:], _butter_db(4, 500.0, "high", freqs[1:]), atol=0.2)
    assert gain[1] == pytest.approx(-6.02, abs=0.2)
    assert not HighPass(sample_rate=8000)(x, 4.0, 0).any()  # at Nyquist: silence


def test_time_stretch_changes_duration_not_pitch() -> None:
    x = np.zeros((1, SR), np.float32)
    x[0, 4000:8000] = tone(440, 0.5, 4000)
    for m, direction, rate in ((1.0, "faster", 2.0), (0.5, "slower", 1 / 1.5)):
        out = TimeStretch(direction=direction)(x, m, 0)[0]
        on = np.flatnonzero(np.abs(out) > 0.1)
        assert (on[-1] - on[0]) == pytest.approx(4000 / rate, rel=0.05)
        assert on[0] == pytest.approx(4000 / rate, abs=300)
        assert dominant(out) == pytest.approx(440, abs=3)


@pytest.mark.parametrize(("semitones", "direction"), [(12, "up"), (3, "up"), (5, "down")])
def test_pitch_shift_moves_frequency_by_semitones(semitones: float, direction: str) -> None:
    x = np.stack([tone(220), tone(330)])
    out = PitchShift(direction=direction)(x, semitones, 0)
    ratio = 2 ** ((semitones if direction == "up" else -semitones) / 12)
    for row, f in zip(out, (220, 330)):
        assert dominant(row) == pytest.approx(f * ratio, rel=0.01)
    assert out.shape == x.shape


def test_reverb_tail_decays_60db_at_rt60() -> None:
    x = np.zeros((16, SR), np.float32)
    x[:, 100] = 0.5
    rt60 = 0.3
    out = Reverb()(x, rt60, 0)
    energy = (out[:, 101:].astype(np.float64) ** 2).mean(axis=0)  # after the direct sound
    win = 400  # 25 ms windows at 10 ms and 160 ms: 150 ms apart is 60 dB × 0.15 / 0.3
    early = energy[160 : 160 + win].mean()
    late = energy[2560 : 2560 + win].mean()
    assert 10 * np.log10(early / late) == pytest.approx(30, abs=1.5)
    assert np.abs(out[:, :100]).max() < 1e-6  # causal (FFT convolution rounds to ~1e-10)
    bigger = Reverb()(x, 2 * rt60, 0)
    assert (bigger[:, 5000:] ** 2).sum() > (out[:, 5000:] ** 2).sum()


def test_reverb_keeps_the_level() -> None:
    """In expectation over rooms: exact for broadband sound (a tone meets a random room gain)."""
    x = (0.1 * np.random.default_rng(3).standard_normal((16, SR))).astype(np.float32)
    out = Reverb()(x, 0.5, 0)
    ratio = (out.astype(np.float64) ** 2).mean(1) / (x.astype(np.float64) ** 2).mean(1)
    assert ratio.mean() == pytest.approx(1.0, abs=0.05)


# -- batches ------------------------------------------------------------------------------
def test_one_clip_in_one_clip_out() -> None:
    x = tone(440)
    for name in perturbations.list("audio"):
        out = perturbations.get(name)(x, 0.2, 0)
        assert out.shape == x.shape and out.dtype == x.dtype, name


def test_the_batch_is_vectorised_row_by_row(speechlike: np.ndarray) -> None:
    """A clip's perturbation does not depend on its neighbours (for the same draws)."""
    for name in perturbations.list("audio"):
        p = perturbations.get(name)
        params = p.sample(speechlike, np.random.default_rng(0))
        whole = p.apply(speechlike, params, 0.3)
        if params is None:
            part = p.apply(speechlike[2:5], None, 0.3)
        elif isinstance(params, tuple):
            part = p.apply(speechlike[2:5], tuple(a[2:5] for a in params), 0.3)
        else:
            part = p.apply(speechlike[2:5], params[2:5], 0.3)
        np.testing.assert_allclose(part, whole[2:5], rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ([np.zeros(100), np.zeros(99)], "equal length; clip 0 has 100 samples and clip 1 has 99"),
        (np.zeros((2, 100), np.int16), "scale integer PCM"),
        (np.full((2, 10), np.nan), "clip 0 holds NaN"),
        (np.zeros((2, 2, 10)), "fold channels"),
        ("clip.wav", "float audio"),
    ],
)
def test_bad_input_is_refused_in_one_line(bad: Any, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        WhiteNoise()(bad, 0.1, 0)
    assert "\n" not in str(info.value)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ParameterError, match="'sample_rate' parameter of TimeStretch"):
        perturbations.get("time_stretch", sample_rate=0)
    with pytest.raises(ParameterError, match="'direction' parameter of Gain"):
        perturbations.get("gain", direction="sideways")
    with pytest.raises(ParameterError, match=r"\[0, 24\]"):
        PitchShift()(tone(440), 30, 0)


# -- a real classifier on synthesised clips, through the engine -------------------------------
FREQS = (300.0, 700.0, 1500.0, 3200.0)


def _clips(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic tones in four pitch classes, random phase, level and a little noise."""
    gen = np.random.default_rng(seed)
    y = gen.integers(0, len(FREQS), n)
    f0 = np.asarray(FREQS)[y][:, None] * gen.uniform(0.97, 1.03, (n, 1))
    t = np.arange(SR // 4) / SR
    x = sum(
        np.sin(2 * np.pi * k * f0 * t + gen.uniform(0, 6.3, (n, 1))) / k**1.5 for k in (1, 2, 3)
    )
    x = x * gen.uniform(0.1, 0.5, (n, 1)) + 0.01 * gen.standard_normal(x.shape)
    return x.astype(np.float32), y


def _features(x: np.ndarray) -> np.ndarray:
    """Log energy in 32 log-spaced bands (a crude mel spectrum), level-normalised."""
    spec = np.abs(np.fft.rfft(np.asarray(x, np.float64), axis=1)) ** 2
    freqs = np.fft.rfftfreq(x.shape[1], 1 / SR)
    edges = np.geomspace(100, SR / 2, 33)
    bands = np.stack(
        [spec[:, (freqs >= lo) & (freqs < hi)].sum(1) for lo, hi in itertools.pairwise(edges)], 1
    )
    logb = np.log(bands + 1e-9)
    return logb - logb.mean(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def tone_model() -> Any:
    from sklearn.linear_model import LogisticRegression

    x, y = _clips(400, 0)
    clf = LogisticRegression(max_iter=2000).fit(_features(x), y)
    return pk.wrap(lambda batch: clf.predict_proba(_features(batch)), task="classification")


def test_tone_classifier_through_sweep(tone_model: Any) -> None:
    x, y = _clips(200, 1)
    result = pk.sweep(
        tone_model,
        x,
        y,
        perturbations=["low_pass", "white_noise", "time_shift"],
        magnitudes={
            "low_pass": [0, 1, 2, 4],
            "white_noise": [0, 0.1, 1.0, 3.0],
            "time_shift": [0, 0.05],
        },
        repeats=2,
        seed=0,
        progress=False,
    )
    s = result.summary()
    acc = s[s["metric"] == "accuracy"].set_index(["perturbation", "magnitude"])["mean"]
    assert acc[("low_pass", 0.0)] > 0.95
    # Cut-off 4 kHz keeps every class; 500 Hz (magnitude 4) removes all but the lowest.
    assert acc[("low_pass", 1.0)] > 0.9 and acc[("low_pass", 4.0)] < 0.6
    assert acc[("white_noise", 0.1)] > 0.9 > acc[("white_noise", 3.0)]
    assert acc[("time_shift", 0.05)] > 0.9  # a spectrum does not care where the tone starts
