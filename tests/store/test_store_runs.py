"""Runs: create, resume information, list, look up by prefix, finish, delete."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _store_helpers import new_run, write

from perturbkit.exceptions import StoreError
from perturbkit.store import Store


def test_stored_cells_and_find_resumable_tell_a_sweep_what_to_skip(store: Store) -> None:
    assert store.find_resumable("fp-1") is None
    run_id = new_run(store, "aaa111", fingerprint="fp-1")
    write(store, run_id, "gaussian_noise@1", 0, 0)
    write(store, run_id, "gaussian_noise@1", 1, 0)
    write(store, run_id, "jpeg@1", 0, 2)
    store.finish_run(run_id, status="interrupted")

    found = store.find_resumable("fp-1")
    assert found is not None
    assert found["run_id"] == run_id
    assert found["root_seed"] == 12345
    assert found["status"] == "interrupted"
    assert found["n_cells"] == 3
    assert found["config"] == {"magnitudes": [0.0, 0.1]}
    assert store.stored_cells(run_id) == {
        ("gaussian_noise@1", 0, 0),
        ("gaussian_noise@1", 1, 0),
        ("jpeg@1", 0, 2),
    }
    assert store.stored_cells("unknown") == set()
    assert store.find_resumable("fp-other") is None


def test_find_resumable_returns_the_newest_run_of_any_status(store: Store) -> None:
    new_run(store, "old", fingerprint="fp")
    store.finish_run("old", status="complete")
    new_run(store, "other", fingerprint="fp-2")
    new_run(store, "new", fingerprint="fp")
    store.finish_run("new", status="failed")
    found = store.find_resumable("fp")
    assert found is not None and found["run_id"] == "new"


def test_finish_and_reopen_update_status_and_merge_meta(store: Store) -> None:
    run_id = new_run(store)
    store.finish_run(run_id, status="interrupted", meta_update={"seconds": 1.5})
    record, _ = store.load_run(run_id)
    assert record["status"] == "interrupted"
    assert record["meta"] == {"numpy": "2.x", "seconds": 1.5}
    assert record["finished_at"] >= record["created_at"]
    store.reopen_run(run_id, meta_update={"resumed": 1})
    record, _ = store.load_run(run_id)
    assert (record["status"], record["finished_at"]) == ("running", None)
    store.finish_run(run_id, status="complete", meta_update={"seconds": 3.0})
    record, _ = store.load_run(run_id)
    assert record["meta"] == {"numpy": "2.x", "seconds": 3.0, "resumed": 1}
    assert record["status"] == "complete"


def test_finish_run_refuses_unknown_status_and_unknown_run(store: Store) -> None:
    run_id = new_run(store)
    with pytest.raises(StoreError, match=r"status of Store.finish_run must be one of .*'done'"):
        store.finish_run(run_id, status="done")
    with pytest.raises(StoreError, match=r"No run 'zzz' in sqlite:///"):
        store.finish_run("zzz", status="complete")


def test_create_run_refuses_a_duplicate_id_and_bad_seeds(store: Store) -> None:
    new_run(store, "r1")
    with pytest.raises(StoreError, match=r"A run 'r1' is already stored"):
        new_run(store, "r1")
    for seed in (-1, 1.5, True, "7"):
        with pytest.raises(StoreError, match=r"root_seed of Store\.create_run"):
            store.create_run(
                run_id="r2", name="x", fingerprint="f", root_seed=seed, config={}, meta={}
            )
    assert store.list_runs()["run_id"].tolist() == ["r1"]


def test_list_runs(store: Store) -> None:
    empty = store.list_runs()
    assert list(empty.columns) == [
        "run_id",
        "name",
        "status",
        "created_at",
        "finished_at",
        "n_cells",
        "root_seed",
        "fingerprint",
    ]
    assert len(empty) == 0
    new_run(store, "first", fingerprint="fa")
    write(store, "first", "p@1", 0, 0)
    write(store, "first", "p@1", 1, 0)
    store.finish_run("first", status="complete")
    new_run(store, "second", fingerprint="fb")
    runs = store.list_runs()
    assert runs["run_id"].tolist() == ["second", "first"]  # newest first
    assert runs["n_cells"].tolist() == [0, 2]
    assert runs["n_cells"].dtype == np.int64
    assert runs["status"].tolist() == ["running", "complete"]
    assert runs["root_seed"].tolist() == [12345, 12345]
    assert runs["fingerprint"].tolist() == ["fb", "fa"]
    assert isinstance(runs["created_at"].dtype, pd.DatetimeTZDtype)
    assert pd.isna(runs["finished_at"].iloc[0])
    assert runs["finished_at"].iloc[1] >= runs["created_at"].iloc[1]


def test_load_run_accepts_a_unique_prefix(store: Store) -> None:
    new_run(store, "3f2a9c")
    new_run(store, "3f2b00")
    new_run(store, "3F2")  # case matters, as on PostgreSQL
    assert store.load_run("3f2a")[0]["run_id"] == "3f2a9c"
    assert store.load_run("3F")[0]["run_id"] == "3F2"
    assert store.load_run("3f2b00")[0]["run_id"] == "3f2b00"
    with pytest.raises(StoreError, match=r"'3f2' is the start of several runs .*'3f2a9c'"):
        store.load_run("3f2")
    # % and _ are not wildcards
    with pytest.raises(StoreError, match="No run '3f2_9c'"):
        store.load_run("3f2_9c")
    with pytest.raises(StoreError, match="No run '%'"):
        store.load_run("%")


def test_an_unknown_run_is_one_line_naming_the_store(store: Store, db_url: str) -> None:
    new_run(store)
    with pytest.raises(StoreError) as info:
        store.load_run("abc")
    assert str(info.value) == f"No run 'abc' in {db_url}; see `perturbkit runs`."
    with pytest.raises(StoreError, match="non-empty str"):
        store.load_run("")


def test_delete_run_removes_its_cells_and_metrics_only(store: Store) -> None:
    new_run(store, "keep")
    new_run(store, "drop")
    for run_id in ("keep", "drop"):
        write(store, run_id, "p@1", 0, 0)
        write(store, run_id, "p@1", 1, 0)
    _, kept = store.load_run("keep")
    store.delete_run("dr")  # a unique prefix
    assert store.list_runs()["run_id"].tolist() == ["keep"]
    assert store.stored_cells("drop") == set()
    assert store.load_run("keep")[1].equals(kept)
    with pytest.raises(StoreError, match="No run 'drop'"):
        store.delete_run("drop")
    new_run(store, "drop")  # the id is free again
    assert store.load_run("drop")[0]["n_cells"] == 0


def test_a_closed_store_says_so(db_url: str) -> None:
    with Store(db_url) as store:
        new_run(store)
    with pytest.raises(StoreError, match="is closed"):
        store.list_runs()
    store.close()  # closing twice is fine


def test_repr_and_url(db_url: str) -> None:
    with Store(db_url) as store:
        assert store.url == db_url
        assert repr(store) == f"Store({db_url!r})"
