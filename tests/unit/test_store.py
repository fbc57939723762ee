"""The object store: revisions, optimistic concurrency, durability and watch history."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from labkit.embedded import store as st


def cm(name: str, ns: str = "default", **data: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    }


@pytest.fixture
def store(tmp_path: Path) -> st.Store:
    s = st.Store(tmp_path / "store.db")
    yield s
    s.close()


def test_every_write_gets_a_higher_resource_version(store: st.Store) -> None:
    a = store.create("core/configmaps", cm("a"))
    b = store.create("core/configmaps", cm("b"))
    a2 = store.update("core/configmaps", {**a, "data": {"x": "1"}})
    gone = store.delete("core/configmaps", "default", "b")
    versions = [int(o["metadata"]["resourceVersion"]) for o in (a, b, a2, gone)]
    assert versions == sorted(versions) and len(set(versions)) == 4
    assert store.revision == versions[-1]


def test_create_twice_is_already_exists(store: st.Store) -> None:
    store.create("core/configmaps", cm("a"))
    with pytest.raises(st.AlreadyExistsError):
        store.create("core/configmaps", cm("a"))


def test_same_name_in_another_namespace_or_kind_is_fine(store: st.Store) -> None:
    store.create("core/configmaps", cm("a"))
    store.create("core/configmaps", cm("a", ns="other"))
    store.create("core/secrets", cm("a"))
    assert len(store.list("core/configmaps")[0]) == 2
    assert [o["metadata"]["namespace"] for o in store.list("core/configmaps", "other")[0]] == ["other"]


def test_stale_resource_version_is_a_conflict(store: st.Store) -> None:
    a = store.create("core/configmaps", cm("a"))
    store.update("core/configmaps", {**a, "data": {"v": "2"}}, expected_rv=a["metadata"]["resourceVersion"])
    with pytest.raises(st.ConflictError):
        store.update(
            "core/configmaps", {**a, "data": {"v": "3"}}, expected_rv=a["metadata"]["resourceVersion"]
        )
    assert store.get("core/configmaps", "default", "a")["data"] == {"v": "2"}


def test_missing_objects_are_not_found(store: st.Store) -> None:
    with pytest.raises(st.NotFoundError):
        store.get("core/configmaps", "default", "nope")
    with pytest.raises(st.NotFoundError):
        store.update("core/configmaps", cm("nope"))
    with pytest.raises(st.NotFoundError):
        store.delete("core/configmaps", "default", "nope")


def test_reads_are_copies(store: st.Store) -> None:
    store.create("core/configmaps", cm("a", k="v"))
    got = store.get("core/configmaps", "default", "a")
    got["data"]["k"] = "changed"
    assert store.get("core/configmaps", "default", "a")["data"] == {"k": "v"}


def test_reopening_keeps_objects_and_never_reuses_a_revision(tmp_path: Path) -> None:
    s = st.Store(tmp_path / "db")
    s.create("core/configmaps", cm("keep", k="v"))
    s.create("core/configmaps", cm("drop"))
    deleted_rv = int(s.delete("core/configmaps", "default", "drop")["metadata"]["resourceVersion"])
    s.close()
    again = st.Store(tmp_path / "db")
    assert again.get("core/configmaps", "default", "keep")["data"] == {"k": "v"}
    assert again.find("core/configmaps", "default", "drop") is None
    assert again.revision == deleted_rv
    new = again.create("core/configmaps", cm("new"))
    assert int(new["metadata"]["resourceVersion"]) == deleted_rv + 1
    again.close()


def test_watch_gets_changes_of_its_key_and_namespace_only(store: st.Store) -> None:
    async def run() -> list[tuple[str, str]]:
        watch, backlog = store.watch("core/configmaps", "default", None)
        assert backlog == []
        store.create("core/configmaps", cm("a"))
        store.create("core/configmaps", cm("b", ns="other"))
        store.create("core/secrets", cm("s"))
        store.delete("core/configmaps", "default", "a")
        seen = []
        while not watch.queue.empty():
            e = watch.queue.get_nowait()
            seen.append((e.type, e.obj["metadata"]["name"]))
        watch.close()
        return seen

    assert asyncio.run(run()) == [("ADDED", "a"), ("DELETED", "a")]


def test_watch_resumes_from_a_revision(store: st.Store) -> None:
    a = store.create("core/configmaps", cm("a"))
    store.update("core/configmaps", {**a, "data": {"x": "1"}})
    store.create("core/configmaps", cm("b"))
    _, backlog = store.watch("core/configmaps", None, int(a["metadata"]["resourceVersion"]))
    assert [(e.type, e.obj["metadata"]["name"]) for e in backlog] == [("MODIFIED", "a"), ("ADDED", "b")]


def test_watch_from_before_the_history_is_expired(tmp_path: Path) -> None:
    s = st.Store(tmp_path / "db", history=3)
    first = s.create("core/configmaps", cm("a"))
    for i in range(5):
        s.create("core/configmaps", cm(f"n{i}"))
    with pytest.raises(st.ExpiredError) as info:
        s.watch("core/configmaps", None, int(first["metadata"]["resourceVersion"]))
    assert "too old resource version" in str(info.value)
    _, backlog = s.watch("core/configmaps", None, s.revision - 2)
    assert len(backlog) == 2
    s.close()


def test_watch_from_before_a_restart_is_expired(tmp_path: Path) -> None:
    s = st.Store(tmp_path / "db")
    old = s.create("core/configmaps", cm("a"))
    s.create("core/configmaps", cm("b"))
    s.close()
    again = st.Store(tmp_path / "db")
    with pytest.raises(st.ExpiredError):
        again.watch("core/configmaps", None, int(old["metadata"]["resourceVersion"]))
    again.close()


def test_event_lines_are_serialized_once(store: st.Store) -> None:
    store.create("core/configmaps", cm("a"))
    _, backlog = store.watch("core/configmaps", None, 0)
    event = backlog[0]
    assert event.line() is event.line()
    assert event.line().endswith(b"\n")
