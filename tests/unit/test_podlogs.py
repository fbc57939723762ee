"""Container log files: the CRI line format, rotation, and what ``kubectl logs`` gets from them."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from labkit.embedded import podlogs
from labkit.embedded.podlogs import LogWriter, PodLogs, container_id, pod_dir

UID = "0b7f4a2e-uid"


def pod(statuses: list[dict[str, Any]], containers: tuple[str, ...] = ("web",)) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "default", "uid": UID},
        "spec": {"containers": [{"name": n} for n in containers]},
        "status": {"containerStatuses": statuses},
    }


def running(run: int, last: int | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "name": "web",
        "restartCount": run,
        "state": {"running": {"startedAt": "2026-11-25T08:00:00Z"}},
        "containerID": f"labkit://{container_id(UID, 'web', run)}",
        "lastState": {},
    }
    if last is not None:
        status["lastState"] = {
            "terminated": {"exitCode": 1, "containerID": f"labkit://{container_id(UID, 'web', last)}"}
        }
    return status


def write(tmp: Path, run: int, *chunks: tuple[str, bytes], close: bool = True) -> LogWriter:
    writer = LogWriter(pod_dir(tmp, "default", "p", UID) / "web" / f"{run}.log")
    for stream, data in chunks:
        writer.write(stream, data)
    if close:
        writer.close()
    return writer


def read(logs: PodLogs, p: dict[str, Any], **options: Any) -> bytes:
    return asyncio.run(logs.read(p, "web", **options))


def test_lines_are_stamped_and_tagged_as_cri_logs(tmp_path: Path) -> None:
    write(tmp_path, 0, ("stdout", b"hello\nwor"), ("stderr", b"oops\n"), ("stdout", b"ld\nlast"))
    text = (pod_dir(tmp_path, "default", "p", UID) / "web" / "0.log").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in text] == [
        "stdout F hello",
        "stderr F oops",
        "stdout F world",
        "stdout F last",
    ]
    stamp = datetime.strptime(text[0].split(" ")[0][:26] + "Z", "%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs(stamp.replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)) < timedelta(seconds=5)
    assert text[0].split(" ")[0].endswith("000Z") and len(text[0].split(" ")[0]) == 30


def test_reading_a_running_container(tmp_path: Path) -> None:
    write(tmp_path, 0, ("stdout", b"a\nb\nc\n"))
    logs = PodLogs(tmp_path)
    p = pod([running(0)])
    assert read(logs, p) == b"a\nb\nc\n"
    assert read(logs, p, tail_lines=2) == b"b\nc\n"
    assert read(logs, p, tail_lines=0) == b""
    assert read(logs, p, limit_bytes=3) == b"a\nb"
    stamped = read(logs, p, timestamps=True).splitlines()
    assert [line.split(b" ", 1)[1] for line in stamped] == [b"a", b"b", b"c"]
    assert read(logs, p, since_seconds=60) == b"a\nb\nc\n"


def test_since_seconds_skips_older_lines(tmp_path: Path) -> None:
    path = pod_dir(tmp_path, "default", "p", UID) / "web" / "0.log"
    path.parent.mkdir(parents=True)
    old = podlogs.timestamp(datetime.now(timezone.utc) - timedelta(hours=1))
    new = podlogs.timestamp()
    path.write_text(f"{old} stdout F old\n{new} stdout F new\n")
    assert read(PodLogs(tmp_path), pod([running(0)]), since_seconds=60) == b"new\n"


def test_previous_reads_the_last_terminated_run(tmp_path: Path) -> None:
    write(tmp_path, 0, ("stdout", b"first run\n"))
    write(tmp_path, 1, ("stdout", b"second run\n"), close=False)
    logs = PodLogs(tmp_path)
    p = pod([running(1, last=0)])
    assert read(logs, p) == b"second run\n"
    assert read(logs, p, previous=True) == b"first run\n"
    crashed = running(1, last=0)
    crashed["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    crashed["restartCount"] = 0
    assert read(logs, pod([crashed])) == b"first run\n"  # waiting: the last run's log


@pytest.mark.parametrize(
    ("status", "options", "message"),
    [
        (running(0), {"previous": True}, 'previous terminated container "web" in pod "p" not found'),
        (
            {"name": "web", "state": {"waiting": {"reason": "ErrImagePull"}}},
            {},
            'container "web" in pod "p" is waiting to start: image can\'t be pulled',
        ),
        (
            {"name": "web", "state": {"waiting": {"reason": "ImagePullBackOff"}}},
            {},
            'container "web" in pod "p" is waiting to start: trying and failing to pull image',
        ),
        (
            {"name": "web", "state": {"waiting": {"reason": "CreateContainerConfigError"}}},
            {},
            'container "web" in pod "p" is waiting to start: CreateContainerConfigError',
        ),
        (None, {}, 'container "web" in pod "p" is waiting to start: ContainerCreating'),
    ],
)
def test_no_log_gives_upstream_messages(
    tmp_path: Path, status: dict[str, Any] | None, options: dict[str, Any], message: str
) -> None:
    p = pod([status] if status else [])
    with pytest.raises(LookupError) as e:
        read(PodLogs(tmp_path), p, **options)
    assert str(e.value) == message


def test_an_unknown_container_is_named(tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="container db is not valid for pod p"):
        asyncio.run(PodLogs(tmp_path).read(pod([running(0)]), "db"))


def test_follow_yields_new_output_until_the_run_ends(tmp_path: Path) -> None:
    writer = write(tmp_path, 0, ("stdout", b"one\n"), close=False)

    async def scenario() -> list[bytes]:
        chunks: list[bytes] = []

        async def produce() -> None:
            await asyncio.sleep(0.15)
            writer.write("stdout", b"two\n")
            await asyncio.sleep(0.15)
            writer.write("stderr", b"three")
            writer.close()

        task = asyncio.get_running_loop().create_task(produce())
        async for chunk in PodLogs(tmp_path).follow(pod([running(0)]), "web"):
            chunks.append(chunk)
        await task
        return chunks

    chunks = asyncio.run(asyncio.wait_for(scenario(), 5))
    assert chunks[0] == b"one\n"
    assert b"".join(chunks) == b"one\ntwo\nthree\n"


def test_follow_honours_tail_and_limit(tmp_path: Path) -> None:
    write(tmp_path, 0, ("stdout", b"a\nb\nc\n"))

    async def collect(**options: Any) -> bytes:
        return b"".join([c async for c in PodLogs(tmp_path).follow(pod([running(0)]), "web", **options)])

    assert asyncio.run(collect(tail_lines=1)) == b"c\n"
    assert asyncio.run(collect(limit_bytes=3)) == b"a\nb"


def test_long_lines_are_split_and_big_files_rotated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(podlogs, "MAX_FILE_BYTES", 400)
    long = b"x" * (podlogs.MAX_LINE_BYTES + 10)
    write(tmp_path, 0, ("stdout", long + b"\n"))
    assert read(PodLogs(tmp_path), pod([running(0)])) == long + b"\n"
    lines = [b"line %d\n" % i for i in range(20)]
    write(tmp_path, 1, *(("stdout", line) for line in lines))
    directory = pod_dir(tmp_path, "default", "p", UID) / "web"
    assert (directory / "1.log.1").exists()
    # the one rotated part is read too, before what the file holds since
    text = read(PodLogs(tmp_path), pod([running(1)]))
    current = len((directory / "1.log").read_bytes().splitlines())
    assert text.endswith(b"line 19\n") and len(text.splitlines()) > current
    assert text.splitlines() == [line.rstrip(b"\n") for line in lines[-len(text.splitlines()) :]]


def test_old_runs_are_pruned(tmp_path: Path) -> None:
    for run in range(podlogs.KEEP_RUNS + 3):
        write(tmp_path, run, ("stdout", b"run\n"))
    names = sorted(p.name for p in (pod_dir(tmp_path, "default", "p", UID) / "web").glob("*.log"))
    assert names == sorted(f"{run}.log" for run in range(3, podlogs.KEEP_RUNS + 3))


def test_tail_text_gives_the_last_lines_without_stamps(tmp_path: Path) -> None:
    writer = write(tmp_path, 0, ("stderr", b"OSError: [Errno 98] Address already in use\n"), close=False)
    assert writer.tail_text() == "OSError: [Errno 98] Address already in use\n"
    writer.close()
