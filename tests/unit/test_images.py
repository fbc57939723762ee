"""The built-in images and the echo server they run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.embedded.kubelet.network import free_port
from labkit.embedded.runnable_images import BUILTIN_HINT, ECHO_SERVER, builtin_images, split_reference


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("busybox", ("busybox", "latest")),
        ("busybox:1.36", ("busybox", "1.36")),
        ("docker.io/library/alpine:3.20", ("alpine", "3.20")),
        ("labkit/echo:v2", ("labkit/echo", "v2")),
        ("localhost:5000/team/app", ("localhost:5000/team/app", "latest")),
        ("nginx@sha256:abc", ("nginx", "sha256:abc")),
    ],
)
def test_references_split_into_repository_and_tag(reference: str, expected: tuple[str, str]) -> None:
    assert split_reference(reference) == expected


@pytest.mark.parametrize(
    "reference", ["labkit/echo", "labkit/echo:v1", "echo:2.0", "docker.io/labkit/echo:v3"]
)
def test_the_echo_image_resolves_under_any_tag(reference: str) -> None:
    image = builtin_images().resolve(reference)
    assert image is not None
    assert image.name == reference and image.repository in ("labkit/echo", "echo")
    assert image.config.entrypoint == ("echo-server",) and image.config.exposed_ports == (8080,)
    assert image.commands["echo-server"] == (sys.executable, "-u", str(ECHO_SERVER))
    assert dict(image.config.env)["VERSION"] == split_reference(reference)[1]
    assert image.id.startswith("sha256:") and len(image.id) == 71


def test_tags_are_distinct_images_with_stable_ids() -> None:
    store = builtin_images()
    v1, v2, again = (
        store.resolve("labkit/echo:v1"),
        store.resolve("labkit/echo:v2"),
        store.resolve("labkit/echo:v1"),
    )
    assert v1 and v2 and again
    assert v1.id != v2.id and v1.id == again.id


@pytest.mark.parametrize("reference", ["busybox", "alpine:3.20", "debian:12", "ubuntu:24.04"])
def test_shell_images_run_host_programs(reference: str) -> None:
    image = builtin_images().resolve(reference)
    assert image is not None and image.root is None and image.config.cmd == ("sh",)
    assert "/bin" in dict(image.config.env)["PATH"].split(":")


@pytest.mark.parametrize("reference", ["nginx", "redis:7", "labkit/other", ""])
def test_other_images_are_not_present(reference: str) -> None:
    assert builtin_images().resolve(reference) is None


def test_the_hint_names_how_to_get_an_image() -> None:
    assert "%%dockerfile" in BUILTIN_HINT and "labkit/echo" in BUILTIN_HINT and "busybox" in BUILTIN_HINT


# -- the echo server -----------------------------------------------------------------------


def start_echo(tmp: Path, **env: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    full = {"PATH": os.environ.get("PATH", ""), "PORT": str(port), **env}
    proc = subprocess.Popen(
        [sys.executable, "-u", str(ECHO_SERVER)],
        env=full,
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert "listening on 0.0.0.0:" in proc.stdout.readline()
    return proc, port


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc, port = start_echo(tmp_path, HOSTNAME="web-1", POD_IP="127.244.1.5", NODE_NAME="n1", VERSION="v7")
    yield proc, port
    proc.kill()
    proc.wait()


def call(port: int, path: str, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method == "POST" else None
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_echo_says_who_answered_and_counts(echo: tuple[subprocess.Popen[str], int]) -> None:
    proc, port = echo
    assert call(port, "/a?x=1") == (
        200,
        {"pod": "web-1", "node": "n1", "ip": "127.244.1.5", "count": 1, "path": "/a", "version": "v7"},
    )
    assert call(port, "/b", "POST")[1]["count"] == 2
    assert call(port, "/healthz") == (200, {"status": "ok"})
    assert call(port, "/readyz") == (200, {"status": "ready"})
    assert call(port, "/c")[1]["count"] == 3  # health checks are not counted
    assert proc.stdout is not None
    assert '"GET /a?x=1 HTTP/1.1" 200' in proc.stdout.readline()


def test_echo_health_and_readiness_can_be_switched_off(echo: tuple[subprocess.Popen[str], int]) -> None:
    _, port = echo
    assert call(port, "/healthz/disable", "POST") == (200, {"healthy": False})
    assert call(port, "/healthz") == (500, {"status": "unhealthy"})
    call(port, "/readyz/disable", "POST")
    assert call(port, "/readyz") == (503, {"status": "not ready"})
    call(port, "/readyz/enable", "POST")
    call(port, "/healthz/enable", "POST")
    assert call(port, "/readyz")[0] == call(port, "/healthz")[0] == 200


def test_echo_is_not_ready_while_the_unready_file_exists(
    echo: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    _, port = echo
    (tmp_path / "unready").touch()
    assert call(port, "/readyz")[0] == 503
    (tmp_path / "unready").unlink()
    assert call(port, "/readyz")[0] == 200


def test_echo_exits_on_sigterm_with_code_0(echo: tuple[subprocess.Popen[str], int]) -> None:
    proc, _ = echo
    proc.terminate()
    assert proc.wait(timeout=5) == 0


def test_echo_on_a_taken_port_says_so_and_exits_1(
    echo: tuple[subprocess.Popen[str], int], tmp_path: Path
) -> None:
    _, port = echo
    started = time.monotonic()
    second = subprocess.run(
        [sys.executable, "-u", str(ECHO_SERVER)],
        env={"PORT": str(port)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert second.returncode == 1 and time.monotonic() - started < 5
    assert f"cannot listen on 0.0.0.0:{port}" in second.stderr and "Address already in use" in second.stderr


def test_a_stock_tag_whose_version_differs_from_this_machine_is_noted() -> None:
    from labkit.embedded.runnable_images import version_note

    note = version_note("python:3.12-slim", "3.12-slim", "Python", "3.11.7")
    assert note.startswith("python:3.12-slim asks for Python 3.12, and this machine has Python 3.11.7")
    assert version_note("python:3.11-slim", "3.11-slim", "Python", "3.11.7") == ""
    assert version_note("node:20-alpine", "20-alpine", "Node.js", "20.20.2") == ""
    assert "Node.js 22" in version_note("node:22", "22", "Node.js", "20.20.2")
    assert version_note("node:lts", "lts", "Node.js", "20.20.2") == ""  # no version asked
    assert version_note("python:3", "3", "Python", "3.11.7") == ""
