"""Helpers shared by the store tests (imported as a module, not a conftest)."""

from __future__ import annotations

from typing import Any

from perturbkit.store import Store


def make_rows(
    pert: str = "gaussian_noise",
    *,
    version: int = 1,
    magnitude: float = 0.1,
    repeat: int = 0,
    values: dict[tuple[str, str], float] | None = None,
) -> list[dict[str, Any]]:
    """Metric rows of one cell; ``values`` maps (metric, group) to the value."""
    if values is None:
        values = {("accuracy", ""): 0.9, ("flip_rate", ""): 0.05, ("accuracy", "0"): 0.8}
    return [
        {
            "perturbation": pert,
            "version": version,
            "params": '{"scale":1.0}',
            "magnitude": magnitude,
            "repeat": repeat,
            "metric": metric,
            "group": group,
            "value": value,
        }
        for (metric, group), value in values.items()
    ]


def new_run(store: Store, run_id: str = "run-1", *, fingerprint: str = "fp-1") -> str:
    store.create_run(
        run_id=run_id,
        name="demo",
        fingerprint=fingerprint,
        root_seed=12345,
        config={"magnitudes": [0.0, 0.1]},
        meta={"numpy": "2.x"},
    )
    return run_id


def write(store: Store, run_id: str, pert_id: str, mi: int, rep: int, **kw: Any) -> None:
    rows = kw.pop("rows", None)
    magnitude = kw.pop("magnitude", 0.1 * mi)
    if rows is None:
        rows = make_rows(pert_id.split("@")[0], magnitude=magnitude, repeat=rep)
    store.write_cell(
        run_id,
        pert_id=pert_id,
        magnitude_index=mi,
        repeat=rep,
        magnitude=magnitude,
        seconds=kw.pop("seconds", 0.25),
        rows=rows,
    )
