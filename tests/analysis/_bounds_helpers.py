"""Known answers for the bounds tests: linear models, a small network, binomial tolerances."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

P_FAIL = 1e-4
"""Each coverage assertion fails a correct implementation with probability below this."""


def miss_limits(reps: int, alpha: float, *, asymptotic: bool) -> tuple[int, int]:
    """The accepted range [lo, hi] of misses over ``reps`` independent repetitions.

    Exact (or conservative) bounds miss with probability at most ``alpha``:
    ``P(Binomial(reps, alpha) > hi) < P_FAIL``. Asymptotic bounds (t, BCa)
    are allowed a finite-sample miss rate up to ``1.4 alpha`` (measured: at
    most 1.31 alpha over 2,000 repetitions of these set-ups) and must miss at
    least ``0.7 alpha`` of the time (not vacuous): each side fails a
    correct implementation with probability < ``P_FAIL``.
    """
    p_hi = 1.4 * alpha if asymptotic else alpha
    hi = int(stats.binom.isf(P_FAIL, reps, p_hi))
    lo = int(stats.binom.ppf(P_FAIL, reps, 0.7 * alpha)) if asymptotic else 0
    return lo, hi


def rng(*key: int) -> np.random.Generator:
    """A local generator for test data (never the global one)."""
    return np.random.default_rng(np.random.SeedSequence(20260611, spawn_key=key))


class Linear:
    """y = a·x + c + N(0, tau²) data, scored by the (misspecified) model f(x) = w·x + b."""

    w = np.array([1.0, -2.0, 0.5, 1.5])
    b = 0.2
    a = np.array([1.2, -1.5, 0.0, 1.0])
    c = 0.0
    tau = 0.7

    @classmethod
    def f(cls, X: np.ndarray) -> np.ndarray:
        return X @ cls.w + cls.b

    @classmethod
    def data(cls, n: int, *key: int) -> tuple[np.ndarray, np.ndarray]:
        g = rng(1, *key)
        X = g.normal(size=(n, len(cls.w)))
        return X, X @ cls.a + cls.c + cls.tau * g.normal(size=n)

    @classmethod
    def population_mse(cls, sigma: float) -> float:
        """E over x ~ N(0, I), y and Gaussian input noise of std sigma (absolute)."""
        clean = float(np.sum((cls.w - cls.a) ** 2) + (cls.b - cls.c) ** 2 + cls.tau**2)
        return clean + sigma**2 * float(cls.w @ cls.w)

    @classmethod
    def deviation(cls, sigma: float) -> float:
        return sigma**2 * float(cls.w @ cls.w)

    @classmethod
    def dataset_mse(cls, X: np.ndarray, y: np.ndarray, sigma: float) -> float:
        """Per point (f(x) − y)² + σ²‖w‖², averaged: the analytic truth on a fixed data set."""
        return float(np.mean((cls.f(X) - y) ** 2)) + cls.deviation(sigma)


class Bounded:
    """Bounded data and noise, for the distribution-free (Bernstein, Hoeffding) bounds."""

    w = np.array([1.0, -0.5, 0.8])
    b = 0.1
    a = np.array([0.7, -0.5, 1.0])
    sigma = 0.3  # uniform noise: every entry moves by at most √3·σ

    @classmethod
    def f(cls, X: np.ndarray) -> np.ndarray:
        return X @ cls.w + cls.b

    @classmethod
    def data(cls, n: int, *key: int) -> tuple[np.ndarray, np.ndarray]:
        g = rng(2, *key)
        X = g.uniform(-1, 1, size=(n, 3))
        return X, X @ cls.a + g.uniform(-0.5, 0.5, size=n)

    @classmethod
    def value_range(cls) -> float:
        reach = np.abs(cls.w).sum() * (1 + math.sqrt(3) * cls.sigma)
        return float((abs(cls.b) + reach + np.abs(cls.a).sum() + 0.5) ** 2)

    @classmethod
    def population_mse(cls) -> float:
        clean = float(np.sum((cls.w - cls.a) ** 2) / 3 + cls.b**2 + 1 / 12)
        return clean + cls.sigma**2 * float(cls.w @ cls.w)


class TinyNet:
    """A fixed two-layer tanh network R³ → R (weights from a local seeded generator)."""

    def __init__(self) -> None:
        g = rng(3)
        self.W1 = g.normal(size=(3, 16))
        self.b1 = g.normal(size=16) * 0.5
        self.w2 = g.normal(size=16) / 4

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return np.tanh(X @ self.W1 + self.b1) @ self.w2

    def data(self, n: int, *key: int) -> tuple[np.ndarray, np.ndarray]:
        g = rng(4, *key)
        X = g.normal(size=(n, 3))
        return X, np.sin(X[:, 0]) + 0.3 * X[:, 1] + 0.2 * g.normal(size=n)


class Ridge:
    """A smooth nonlinear model f(x) = sin(w·x) whose perturbed moments are analytic.

    Under Gaussian input noise δ ~ N(0, σ² I), with u = w·x and s² = σ²‖w‖²:
    E sin(u + w·δ) = sin(u) e^{−s²/2} and E sin²(u + w·δ) = (1 − cos(2u) e^{−2s²}) / 2.
    """

    w = np.array([0.5, -1.0, 0.25, 0.75])

    @classmethod
    def f(cls, X: np.ndarray) -> np.ndarray:
        return np.sin(X @ cls.w)

    @classmethod
    def data(cls, n: int, *key: int) -> tuple[np.ndarray, np.ndarray]:
        g = rng(5, *key)
        X = g.normal(size=(n, len(cls.w)))
        return X, cls.f(X) + 0.3 * g.normal(size=n)

    @classmethod
    def dataset_truth(cls, X: np.ndarray, y: np.ndarray, sigma: float) -> tuple[float, float]:
        """(deviation, MSE) on the fixed data set: per-point expectations over the noise."""
        u = X @ cls.w
        s2 = sigma**2 * float(cls.w @ cls.w)
        m1 = np.sin(u) * math.exp(-s2 / 2)
        m2 = (1 - np.cos(2 * u) * math.exp(-2 * s2)) / 2
        dev = m2 - 2 * np.sin(u) * m1 + np.sin(u) ** 2
        return float(dev.mean()), float((m2 - 2 * y * m1 + y**2).mean())


def honest_dataset_half_width(
    sampler: str, sigma: float, *, reps: int, n_draws: int, alpha: float
) -> np.ndarray:
    """Median dataset half-widths ``[deviation, mse]`` of ``sampler`` on Ridge's data,
    after asserting, over ``reps`` seeds, that the bound covers its analytic truth at
    confidence ``1 - alpha`` and that the standard error its half-width implies
    matches the estimate's spread over the seeds (400 seeds pin it to about ±4%)."""
    from scipy import special

    from perturbkit.analysis.bounds import robustness_curve

    X, y = Ridge.data(50, 0)
    dev, mse = Ridge.dataset_truth(X, y, sigma)
    lo, hi = miss_limits(reps, alpha, asymptotic=True)
    est, se, miss = [], [], np.zeros(2, dtype=int)
    for rep in range(reps):
        c = robustness_curve(
            Ridge.f,
            X,
            y,
            levels=[sigma],
            relative=False,
            sampler=sampler,
            n_draws=n_draws,
            confidence=1 - alpha,
            target="dataset",
            seed=rep,
        )
        t = c.table
        q = special.stdtrit(50 * (c.meta["n_replicates"] - 1), 1 - alpha)
        est.append([t.deviation[0], t.mse[0]])
        se.append([(t.deviation_upper[0] - t.deviation[0]) / q, (t.mse_upper[0] - t.mse[0]) / q])
        miss += [t.deviation_upper[0] < dev, t.mse_upper[0] < mse]
    assert (lo <= miss).all() and (miss <= hi).all(), (sampler, miss, lo, hi)
    E, S = np.array(est), np.array(se)
    honesty = np.sqrt((S**2).mean(axis=0)) / E.std(axis=0, ddof=1)
    assert ((0.85 < honesty) & (honesty < 1.18)).all(), (sampler, honesty)
    return np.median(S, axis=0) * q
