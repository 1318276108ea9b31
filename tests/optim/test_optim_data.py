"""Training-data perturbation: numpy batches, the DataLoader collate, the Dataset wrapper."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from perturbkit.exceptions import ParameterError, UnknownPerturbationError  # noqa: E402
from perturbkit.optim import (  # noqa: E402
    ExponentialSchedule,
    PerturbedCollate,
    PerturbedDataset,
    perturbed_batches,
)
from perturbkit.perturbations import GaussianNoise  # noqa: E402


@pytest.fixture(scope="module")
def Xy():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


def collect(gen):
    out = list(gen)
    return np.concatenate([b[0] for b in out]), np.concatenate([b[1] for b in out])


def test_batches_cover_every_row_once_per_epoch_and_are_reproducible(Xy):
    X, y = Xy
    kw = {"perturbation": "gaussian_noise", "magnitude": 0.0, "batch_size": 64, "seed": 3}
    Xs, ys = collect(perturbed_batches(X, y, **kw))
    # magnitude 0: the rows themselves, shuffled, each once, labels alongside
    order = np.lexsort(Xs.T[::-1])
    assert np.array_equal(Xs[order], X[np.lexsort(X.T[::-1])])
    assert sorted(ys.tolist()) == sorted(y.tolist())
    kw["magnitude"] = 0.5
    a, _ = collect(perturbed_batches(X, y, **kw))
    b, _ = collect(perturbed_batches(X, y, **kw))
    assert np.array_equal(a, b)
    c, _ = collect(perturbed_batches(X, y, **{**kw, "seed": 4}))
    assert not np.array_equal(a, c)


def test_noise_is_in_the_perturbations_unit_with_training_statistics(Xy):
    X, y = Xy
    Xc = X.copy()
    batches = list(
        perturbed_batches(
            X,
            y,
            perturbation="gaussian_noise",
            magnitude=0.5,
            shuffle=False,
            batch_size=600,
            seed=0,
        )
    )
    ((Xb, _),) = batches
    assert np.array_equal(X, Xc)  # the caller's data is never written
    scale = X.std(axis=0)
    z = (Xb - X)[:, scale > 0] / scale[scale > 0]
    assert z.std() == pytest.approx(0.5, rel=0.02)


def test_schedule_scales_the_magnitude_by_epoch_and_fraction_keeps_rows_clean(Xy):
    X, _ = Xy
    out = list(
        perturbed_batches(
            X,
            perturbation=GaussianNoise(absolute=True),
            magnitude=0.4,
            schedule=ExponentialSchedule(0.5),
            n_epochs=2,
            shuffle=False,
            batch_size=600,
            seed=0,
        )
    )
    assert (out[0] - X).std() == pytest.approx(0.4, rel=0.02)
    assert (out[1] - X).std() == pytest.approx(0.2, rel=0.02)
    (half,) = perturbed_batches(
        X,
        perturbation=GaussianNoise(absolute=True),
        magnitude=0.4,
        fraction=0.3,
        shuffle=False,
        batch_size=600,
        seed=0,
    )
    changed = (half != X).any(axis=1).mean()
    assert changed == pytest.approx(0.3, abs=0.08)


def test_partial_fit_training_on_perturbed_batches(Xy):
    from sklearn.linear_model import SGDClassifier

    X, y = Xy
    clf = SGDClassifier(random_state=0)
    for Xb, yb in perturbed_batches(
        X, y, perturbation="gaussian_noise", magnitude=0.3, n_epochs=3, batch_size=100, seed=0
    ):
        clf.partial_fit(Xb, yb, classes=np.arange(10))
    assert clf.score(X, y) > 0.8


def test_collate_perturbs_whole_batches_reproducibly(Xy):
    X, y = Xy
    ds = torch.utils.data.TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y))

    def run(seed, epoch=0):
        collate = PerturbedCollate("gaussian_noise", magnitude=0.5, reference=X, seed=seed)
        collate.set_epoch(epoch)
        # a DataLoader draws a base seed from the global RNG unless given a generator
        loader = torch.utils.data.DataLoader(
            ds, batch_size=128, collate_fn=collate, generator=torch.Generator()
        )
        return [(xb.clone(), yb.clone()) for xb, yb in loader]

    a, b = run(1), run(1)
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))
    assert a[0][0].dtype == torch.float32
    assert torch.equal(torch.cat([yb for _, yb in a]), torch.tensor(y))  # labels untouched
    noise = torch.cat([xb for xb, _ in a]).double() - torch.tensor(X)
    assert float(noise.abs().max()) > 0
    assert not torch.equal(a[0][0], run(1, epoch=1)[0][0])


def test_dataset_items_do_not_depend_on_order_or_batching(Xy):
    X, y = Xy
    base = torch.utils.data.TensorDataset(torch.tensor(X, dtype=torch.float32), torch.tensor(y))
    ds = PerturbedDataset(base, "gaussian_noise", magnitude=0.5, reference=X, seed=0)
    direct = torch.stack([ds[i][0] for i in range(len(ds))])
    order = np.random.default_rng(0).permutation(len(ds)).tolist()
    loader = torch.utils.data.DataLoader(
        ds, batch_size=50, sampler=order, generator=torch.Generator()
    )
    seen = torch.empty_like(direct)
    seen[torch.tensor(order)] = torch.cat([xb for xb, _ in loader])
    assert torch.equal(seen, direct)
    ds.set_epoch(1)
    assert not torch.equal(ds[0][0], direct[0])


def test_unfitted_perturbation_needs_a_reference(Xy):
    X, y = Xy
    base = torch.utils.data.TensorDataset(torch.tensor(X), torch.tensor(y))
    with pytest.raises(ParameterError, match="pass reference="):
        PerturbedDataset(base, "gaussian_noise", magnitude=0.5)
    with pytest.raises(ParameterError, match="pass reference="):
        PerturbedCollate("gaussian_noise", magnitude=0.5)
    fitted = GaussianNoise().fit(X)
    PerturbedCollate(fitted, magnitude=0.5)  # a fitted one is used as is
    unfitted = GaussianNoise()
    PerturbedCollate(unfitted, magnitude=0.5, reference=X)
    assert not unfitted.fitted  # the caller's perturbation is not modified


def test_bad_input_is_one_clear_line(Xy):
    X, y = Xy
    with pytest.raises(UnknownPerturbationError, match="Did you mean 'gaussian_noise'"):
        perturbed_batches(X, y, perturbation="gausian_noise", magnitude=0.1)
    with pytest.raises(ParameterError, match="'magnitude' parameter of GaussianNoise"):
        perturbed_batches(X, y, perturbation="gaussian_noise", magnitude=-1)
    with pytest.raises(ParameterError, match="'fraction' parameter of perturbed_batches"):
        perturbed_batches(X, y, perturbation="gaussian_noise", magnitude=0.1, fraction=2)
    with pytest.raises(ParameterError, match="'perturbation' parameter of perturbed_batches"):
        perturbed_batches(X, y, perturbation=3, magnitude=0.1)
    with pytest.raises(ParameterError, match="'magnitude' parameter of MissingValues"):
        perturbed_batches(X, y, perturbation="missing_values", magnitude=1.5)
    with pytest.raises(ParameterError, match="'dataset' parameter of PerturbedDataset"):
        PerturbedDataset(3, "gaussian_noise", magnitude=0.1, reference=X)
