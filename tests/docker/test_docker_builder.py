"""The Docker Engine builder against a real dockerd: what a learner sees when building and running.

Every image starts from the local base ``labkit-busybox:1`` (see conftest.py): no registry is
reached. Containers run on the host network and answer on 127.0.0.1 only.
"""

from __future__ import annotations

import socket
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import docker
import docker.errors
import pytest

from labkit.errors import BaseImageError, BuildError, ContainerError, EngineError, UsageError
from labkit.images.docker_builder import DockerBuilder, scan
from labkit.images.models import BuildStep

SERVICE = """\
FROM {base}
ENV GREETING=hello TOKEN={token}
WORKDIR /www
COPY index.html .
RUN echo "built $GREETING" && ls /www
CMD httpd -f -p "$PORT" -h /www
"""


def service(base: str, token: str | None = None) -> str:
    """A small web service Dockerfile; a fresh token makes its layers new to the cache."""
    return SERVICE.format(base=base, token=token or uuid.uuid4().hex)


def free_port() -> int:
    """A TCP port nothing listens on at the moment."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def recorder() -> tuple[list[BuildStep], Callable[[BuildStep], None]]:
    """A progress callback and the events it got."""
    events: list[BuildStep] = []
    return events, events.append


def states(events: list[BuildStep]) -> list[tuple[int, str]]:
    """(step number, state) of every event but output chunks."""
    return [(e.number, e.state) for e in events if e.state != "output"]


# -- building -------------------------------------------------------------------------------


@pytest.mark.docker
def test_build_streams_steps_and_returns_the_image(builder: DockerBuilder, base_image: str, new_tag) -> None:
    tag = new_tag()
    events, progress = recorder()
    result = builder.build(
        service(base_image), {"index.html": "<h1>posts</h1>\n"}, tag=tag, progress=progress
    )

    assert states(events) == [(1, "cached")] + [(n, s) for n in range(2, 7) for s in ("start", "done")]
    run_output = "".join(e.output for e in events if e.state == "output" and e.number == 5)
    assert "built hello" in run_output and "index.html" in run_output
    assert {e.line for e in events if e.number == 5} == {5}
    assert all(e.total == 6 for e in events)
    assert result.tag == tag and result.builder == "docker"
    assert result.id.startswith("sha256:") and len(result.id) == 71
    assert result.steps == 6 and result.cache_hits == 1 and not result.all_cached  # the base was here
    assert result.size > 1_000_000  # busybox itself
    made_by = [h.created_by for h in result.history]
    assert "WORKDIR /www" in made_by and made_by[-1].startswith("CMD ")
    assert any(h.created_by.startswith("COPY ") and h.size > 0 for h in result.history)
    assert docker.from_env().images.get(tag).id == result.id


@pytest.mark.docker
def test_image_config_has_env_workdir_and_cmd(builder: DockerBuilder, base_image: str, new_tag) -> None:
    tag = new_tag()
    builder.build(service(base_image, "t1") + "EXPOSE 8080\n", {"index.html": "x"}, tag=tag)

    config = builder.image_config(tag)

    env = dict(config.env)
    assert env["GREETING"] == "hello" and env["TOKEN"] == "t1" and env["PATH"] == "/bin"
    assert config.working_dir == "/www"
    assert config.cmd == ("/bin/sh", "-c", 'httpd -f -p "$PORT" -h /www')
    assert config.entrypoint == ()
    assert config.exposed_ports == (8080,)


@pytest.mark.docker
def test_unchanged_rebuild_is_all_cache_hits(builder: DockerBuilder, base_image: str, new_tag) -> None:
    dockerfile, files = service(base_image), {"index.html": "same"}
    first = builder.build(dockerfile, files, tag=new_tag())
    events, progress = recorder()

    again = builder.build(dockerfile, files, tag=new_tag(), progress=progress)

    assert again.all_cached and again.cache_hits == again.steps == 6
    assert again.id == first.id
    assert states(events) == [(n, "cached") for n in range(1, 7)]
    assert not [e for e in events if e.state == "output"]  # RUN did not run again


@pytest.mark.docker
def test_a_change_invalidates_from_that_step_on(builder: DockerBuilder, base_image: str, new_tag) -> None:
    dockerfile = service(base_image)
    first = builder.build(dockerfile, {"index.html": "one"}, tag=new_tag())
    events, progress = recorder()

    changed = builder.build(dockerfile, {"index.html": "two"}, tag=new_tag(), progress=progress)

    cached = [e.number for e in events if e.state == "cached"]
    rebuilt = [e.number for e in events if e.state == "done"]
    assert cached == [1, 2, 3]  # FROM, ENV, WORKDIR: before the COPY of the changed file
    assert rebuilt == [4, 5, 6]  # the COPY and everything after it
    assert changed.cache_hits == 3 and changed.id != first.id


@pytest.mark.docker
def test_no_cache_builds_every_step(builder: DockerBuilder, base_image: str, new_tag) -> None:
    dockerfile, files = service(base_image), {"index.html": "x"}
    builder.build(dockerfile, files, tag=new_tag())

    events, progress = recorder()
    result = builder.build(dockerfile, files, tag=new_tag(), no_cache=True, progress=progress)

    assert result.cache_hits == 0 and result.steps == 6
    assert states(events) == [(n, s) for n in range(1, 7) for s in ("start", "done")]


@pytest.mark.docker
def test_context_directory_honours_dockerignore(
    builder: DockerBuilder, base_image: str, new_tag, tmp_path: Path
) -> None:
    (tmp_path / "app.txt").write_text("app")
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")  # a context file, not the one used
    (tmp_path / ".dockerignore").write_text("# keep secrets out\nsecret.txt\n")
    dockerfile = f"FROM {base_image}\nCOPY . /ctx\nRUN ls -a /ctx # {uuid.uuid4().hex}\n"
    events, progress = recorder()

    builder.build(dockerfile, tmp_path, tag=new_tag(), progress=progress)

    listed = "".join(e.output for e in events if e.state == "output").split()
    assert sorted(set(listed) - {".", ".."}) == ["Dockerfile", "app.txt"]


@pytest.mark.docker
def test_multi_stage_build_with_args_and_target(builder: DockerBuilder, base_image: str, new_tag) -> None:
    dockerfile = f"""\
ARG BASE={base_image}
FROM $BASE AS compile
ARG WHO=nobody
RUN mkdir /out && echo "hello $WHO {uuid.uuid4().hex}" > /out/greeting

FROM $BASE
COPY --from=compile /out/greeting /greeting
CMD ["cat", "/greeting"]
"""
    tag = new_tag()
    events, progress = recorder()
    result = builder.build(dockerfile, tag=tag, build_args={"WHO": "learner"}, progress=progress)

    # the ARG before the first FROM is not a step: numbering starts at the first FROM
    assert events[0].number == 1 and {e.total for e in events} == {6}
    assert {e.stage for e in events if e.number <= 3} == {"compile"}
    assert {e.stage for e in events if e.number >= 4} == {"1"}
    assert [e.line for e in events if e.state == "cached"] == [2, 6]  # FROM $BASE, twice
    assert result.steps == 6 and result.cache_hits == 2
    container = builder.run(tag)
    assert container.wait() == 0
    assert container.logs().startswith("hello learner ")
    container.stop()

    first_stage = builder.build(dockerfile, tag=new_tag(), target="compile", build_args={"WHO": "learner"})
    assert first_stage.all_cached and first_stage.steps == 3
    assert builder.image_config(first_stage.tag).cmd == ("sh",)  # the base's, not the last stage's


@pytest.mark.docker
def test_unused_build_arg_is_a_warning(builder: DockerBuilder, base_image: str, new_tag) -> None:
    result = builder.build(f"FROM {base_image}\nENV A=1\n", tag=new_tag(), build_args={"UNUSED": "1"})

    assert any("UNUSED" in w for w in result.warnings)


# -- running --------------------------------------------------------------------------------


@pytest.mark.docker
def test_run_serves_http_on_the_host_network(builder: DockerBuilder, base_image: str, new_tag) -> None:
    tag = new_tag()
    builder.build(service(base_image), {"index.html": "<h1>posts</h1>\n"}, tag=tag)
    port = free_port()

    container = builder.run(tag, port=port)

    assert container.url == f"http://127.0.0.1:{port}/"
    with urllib.request.urlopen(container.url + "index.html", timeout=5) as answer:
        assert answer.status == 200 and answer.read() == b"<h1>posts</h1>\n"
    assert container.status() == "running"
    container.stop()
    assert container.status() == "removed"
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.docker
def test_closing_the_builder_removes_its_containers(
    docker_client: docker.DockerClient, base_image: str
) -> None:
    with DockerBuilder() as own:
        container = own.run(base_image, command=["sleep", "60"])
        assert docker_client.containers.get(container.id).status == "running"

    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(container.id)


@pytest.mark.docker
def test_container_that_exits_before_answering(builder: DockerBuilder, base_image: str) -> None:
    with pytest.raises(ContainerError) as caught:
        builder.run(base_image, port=free_port(), command=["sh", "-c", "echo cannot bind >&2; exit 7"])

    message = str(caught.value)
    assert "exited" in message and "exit code 7" in message and "cannot bind" in message
    assert "$PORT" in caught.value.hint


@pytest.mark.docker
def test_run_refuses_a_port_in_use(builder: DockerBuilder, base_image: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ContainerError, match=f"port {port} is already in use"):
            builder.run(base_image, port=port)


@pytest.mark.docker
def test_run_an_image_that_is_not_here(builder: DockerBuilder) -> None:
    with pytest.raises(ContainerError, match="No such image") as caught:
        builder.run("labkit-no-such-image:1")

    assert "never pulls" in caught.value.hint


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.docker
def test_failing_run_step_names_line_exit_code_and_output(builder: DockerBuilder, base_image: str) -> None:
    dockerfile = f"FROM {base_image}\n# install\nRUN echo fetching {uuid.uuid4().hex} && \\\n    exit 3\n"
    events, progress = recorder()

    with pytest.raises(BuildError) as caught:
        builder.build(dockerfile, progress=progress)

    error = caught.value
    assert error.line == 3 and error.exit_code == 3
    assert "fetching" in error.output
    assert "Dockerfile line 3" in error.message and "exit code 3" in error.message
    assert "fetching" in error.message  # the output is shown, not only kept
    assert states(events)[-1] == (2, "error")


@pytest.mark.docker
def test_missing_base_image_cannot_be_pulled(builder: DockerBuilder) -> None:
    # a registry on a closed loopback port: the engine's pull fails without leaving the machine
    dockerfile = "# syntax comment\nFROM 127.0.0.1:1/labkit-missing:1\nRUN true\n"

    with pytest.raises(BaseImageError) as caught:
        builder.build(dockerfile)

    assert caught.value.line == 2
    assert "127.0.0.1:1/labkit-missing:1" in caught.value.message
    assert "import_busybox_base()" in caught.value.hint and "embedded builder" in caught.value.hint


def test_engine_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    closed = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(closed))  # the socket file stays; nothing listens on it
    monkeypatch.setenv("DOCKER_HOST", f"unix://{closed}")

    with pytest.raises(EngineError) as caught:
        DockerBuilder()

    assert str(closed) in caught.value.message
    assert "Is Docker running?" in caught.value.hint and "embedded builder" in caught.value.hint


@pytest.mark.docker
def test_copy_of_a_missing_file(builder: DockerBuilder, base_image: str) -> None:
    with pytest.raises(BuildError) as caught:
        builder.build(f"FROM {base_image}\nCOPY requirements.txt /app/\n", {"app.py": "print()"})

    assert caught.value.line == 2 and caught.value.exit_code is None
    assert "requirements.txt" in caught.value.message
    assert "build context" in caught.value.hint


@pytest.mark.docker
def test_unknown_instruction_names_its_line(builder: DockerBuilder, base_image: str) -> None:
    with pytest.raises(BuildError) as caught:
        builder.build(f"FROM {base_image}\n\nRUNN echo hi\n")

    assert caught.value.line == 3 and "RUNN" in caught.value.message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_dockerfile(text: str) -> None:
    with pytest.raises(UsageError, match="The Dockerfile is empty"):
        _offline_builder().build(text)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tag": "Posts:1"}, "tag"),
        ({"tag": "posts:"}, "tag"),
        ({"target": "nope"}, "target"),
        ({"context": {"../outside.txt": "x"}}, "context file name"),
        ({"context": {"/etc/passwd": "x"}}, "context file name"),
        ({"context": "/no/such/dir"}, "context"),
    ],
)
def test_bad_arguments_are_refused_before_building(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(UsageError) as caught:
        _offline_builder().build("FROM busybox AS base\nRUN true\n", **kwargs)  # type: ignore[arg-type]

    assert caught.value.message.startswith(field)


def _offline_builder() -> DockerBuilder:
    """A builder on an engine that is not there: these checks must fail before any request."""
    return DockerBuilder(docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version="1.41"))


# -- step numbers to Dockerfile lines, as the classic builder counts them --------------------


def test_scan_counts_instructions_like_the_classic_builder() -> None:
    text = """\
# escape=`
ARG V=1

FROM base:$V AS build
# a comment inside a continuation does not end it
RUN echo one `
    # skipped
    two
from build
COPY --from=build /a /b
"""
    found = scan(text)

    assert [(i.line, i.keyword, i.stage) for i in found] == [
        (2, "ARG", ""),
        (4, "FROM", "build"),
        (6, "RUN", "build"),
        (9, "FROM", "1"),
        (10, "COPY", "1"),
    ]
    # the continuation line keeps its indent, as the engine prints it: "Step 3/5 : RUN echo one     two"
    assert found[2].text == "RUN echo one     two"


# -- the local base image -------------------------------------------------------------------


@pytest.mark.docker
def test_import_busybox_base_makes_a_runnable_base(builder: DockerBuilder, new_tag) -> None:
    tag = builder.import_busybox_base(new_tag())

    config = builder.image_config(tag)
    assert config.cmd == ("sh",) and dict(config.env) == {"PATH": "/bin"}
    container = builder.run(tag, command=["sh", "-c", "echo $((6 * 7)) && ls /bin/httpd /bin/nc"])
    assert container.wait() == 0
    assert container.logs().split() == ["42", "/bin/httpd", "/bin/nc"]
    container.stop()


@pytest.mark.docker
def test_import_busybox_base_refuses_a_dynamic_binary(builder: DockerBuilder, new_tag) -> None:
    with pytest.raises(UsageError, match="not a statically linked busybox") as caught:
        builder.import_busybox_base(new_tag(), busybox="/bin/ls")

    assert "busybox-static" in caught.value.hint
