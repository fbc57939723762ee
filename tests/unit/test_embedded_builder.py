"""labkit's embedded builder: images, the layer cache, the store and bad input, as a user sees them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from labkit.embedded.imagesource import DiskImageSource
from labkit.errors import BaseImageError, BuildError, ImageError
from labkit.images import local
from labkit.images.embedded_builder import build
from labkit.images.models import BuildResult, BuildStep
from labkit.sandbox.isolation import detect, own_for
from labkit.sandbox.view import View, borrowed
from labkit.shared.imagestore import DiskImages

SERVER = "import os\nprint('serving on', os.environ.get('PORT', '8080'))\n"
POSTS = """\
FROM python:3.12-slim
WORKDIR /app
ENV APP=posts
COPY server.py .
RUN echo "built for $APP" > built.txt
EXPOSE 8080
CMD ["python", "server.py"]
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def context(tmp_path: Path) -> Path:
    return write(tmp_path / "ctx", {"Dockerfile": POSTS, "server.py": SERVER})


def run_build(
    context: Path, home: Path, tag: str = "posts:1.0", **kwargs: object
) -> tuple[BuildResult, list[BuildStep]]:
    events: list[BuildStep] = []
    result = build(context, tag, home=home, progress=events.append, **kwargs)  # type: ignore[arg-type]
    return result, events


def states(events: list[BuildStep]) -> list[tuple[str, str]]:
    return [(e.instruction.split()[0], e.state) for e in events if e.state in ("cached", "done")]


def assert_nothing_half_written(home: Path, images_before: int = 0) -> None:
    store = DiskImages(home)
    assert len(store.list()) == images_before
    assert not list(store.tmp_dir.glob("*")) if store.tmp_dir.exists() else True


def test_a_python_service_image_has_its_config_and_files(context: Path, home: Path) -> None:
    result, events = run_build(context, home)
    assert result.tag == "posts:1.0" and result.id.startswith("sha256:") and result.steps == 7
    assert result.cache_hits == 0 and result.builder == "embedded"
    assert [e.number for e in events if e.state == "done"] == list(range(1, 8))
    assert any("Python 3.12" in w and "this machine has" in w for w in result.warnings) == (
        sys.version_info[:2] != (3, 12)
    )
    image = DiskImageSource(DiskImages(home)).resolve("posts:1.0")  # as the kubelet sees it
    assert image is not None and image.root is not None and image.local
    assert image.config.cmd == ("python", "server.py") and image.config.working_dir == "/app"
    assert image.config.exposed_ports == (8080,)
    env = dict(image.config.env)
    assert env["APP"] == "posts"
    assert env["PATH"].split(":")[0] == str(image.root / "usr/local/bin")  # the image's venv first
    assert (image.root / "app/built.txt").read_text() == "built for posts\n"
    python = image.root / "usr/local/bin/python"
    out = subprocess.run([python, "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True)
    assert out.stdout.strip() == str(image.root / "usr/local")
    assert [h["created_by"] for h in local.inspect("posts:1.0", home)["History"]][-1].startswith("CMD")


def test_an_unchanged_rebuild_is_all_cache_hits_and_a_change_invalidates_from_that_step(
    context: Path, home: Path
) -> None:
    first, _ = run_build(context, home)
    again, events = run_build(context, home)
    assert again.id == first.id and again.all_cached and again.cache_hits == again.steps == 7
    assert {state for _, state in states(events)} == {"cached"}
    (context / "server.py").write_text(SERVER + "# changed\n")
    changed, events = run_build(context, home)
    assert changed.id != first.id and changed.cache_hits == 3
    assert states(events) == [
        ("FROM", "cached"), ("WORKDIR", "cached"), ("ENV", "cached"), ("COPY", "done"),
        ("RUN", "done"), ("EXPOSE", "done"), ("CMD", "done"),
    ]  # fmt: skip
    no_cache, _ = run_build(context, home, no_cache=True)
    assert no_cache.cache_hits == 0


def test_run_uses_arg_and_env_and_streams_its_output(tmp_path: Path, home: Path) -> None:
    ctx = write(
        tmp_path / "c",
        {
            "Dockerfile": "ARG GREETING=hello\nFROM busybox\nARG GREETING\nARG WHO=world\n"
            "ENV MARK=${WHO:+set}\nWORKDIR /work\n"
            'RUN echo "$GREETING $WHO $MARK" && pwd > where.txt\n'
            "RUN <<EOF\necho from a heredoc > heredoc.txt\nEOF\n"
        },
    )
    result, events = run_build(ctx, home, "greet:1", build_args={"WHO": "posts", "UNUSED": "x"})
    assert [e.output for e in events if e.state == "output"] == ["hello posts set"]
    root = DiskImages(home).get("greet:1").rootfs
    assert (root / "work/where.txt").read_text().strip() == "/work"  # the image is /, as in Docker
    assert (root / "work/heredoc.txt").read_text() == "from a heredoc\n"
    assert any("UNUSED" in w and "not consumed" in w for w in result.warnings)


def make_wheel(folder: Path) -> Path:
    """A tiny wheel with a module and a console script, made by hand (no network, no setuptools)."""
    files = {
        "hello/__init__.py": "def hi():\n    print('hi from hello')\n",
        "hello-0.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: hello\nVersion: 0.1\n",
        "hello-0.1.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        "hello-0.1.dist-info/entry_points.txt": "[console_scripts]\nhello-cli = hello:hi\n",
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hello-0.1-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(text)}")
        z.writestr("hello-0.1.dist-info/RECORD", "\n".join([*record, "hello-0.1.dist-info/RECORD,,"]) + "\n")
    return path


def run_in_image(rootfs: Path, scratch: Path, argv: list[str]) -> str:
    """Run ``argv`` in a copy of an image, isolated as a container; its output."""
    root = scratch / "root"
    shutil.copytree(rootfs, root, symlinks=True)
    mounts, links = borrowed(root)
    view = View(root, "/", tuple(mounts), None, tuple(links))
    view.stubs()
    isolation = detect()
    own_for(isolation, root)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root"}
    out = subprocess.run(isolation.command(view, argv), capture_output=True, text=True, env=env, cwd=root)
    return out.stdout + out.stderr


def test_pip_install_goes_into_that_images_own_environment(tmp_path: Path, home: Path) -> None:
    ctx = tmp_path / "c"
    make_wheel(ctx / "wheels")
    write(ctx, {"requirements.txt": "hello\n", "Dockerfile": (
        "FROM python:3.11\nWORKDIR /src\nCOPY . .\n"
        "RUN pip install --no-index --find-links wheels -r requirements.txt\n"
        "RUN python -m pip --version && hello-cli\n"
    )})  # fmt: skip
    _, events = run_build(ctx, home, "withpip:1")
    assert "hi from hello" in [e.output for e in events if e.state == "output"]
    image = DiskImages(home).get("withpip:1")
    script = image.rootfs / "usr/local/bin/hello-cli"
    # the script names the image's own python where the image has it, as pip in a container writes it
    assert script.read_text().startswith("#!/usr/local/bin/python")
    assert "/tmp/build-" not in script.read_text() and str(home) not in script.read_text()
    assert run_in_image(image.rootfs, tmp_path / "run", ["hello-cli"]) == "hi from hello\n"
    run_build(write(tmp_path / "o", {"Dockerfile": "FROM python:3.11\n"}), home, "plain:1")
    plain = DiskImages(home).get("plain:1").rootfs / "usr/local/bin/python"
    for python in (plain, Path(sys.executable)):
        assert subprocess.run([python, "-c", "import hello"], capture_output=True).returncode != 0


def test_multi_stage_builds_copy_from_a_stage_and_build_only_what_the_target_needs(
    tmp_path: Path, home: Path
) -> None:
    ctx = write(tmp_path / "c", {"src/main.txt": "source\n", "Dockerfile": (
        "FROM busybox AS build\nWORKDIR /out\nCOPY src/ ./\nRUN cat main.txt main.txt > twice.txt\n"
        "FROM busybox AS unused\nRUN exit 1\n"
        "FROM scratch\nCOPY --from=build /out/twice.txt /app/\nCOPY --from=0 /out/main.txt /app/copy.txt\n"
        "ENTRYPOINT [\"/bin/cat\"]\nCMD [\"/app/twice.txt\"]\n"
    )})  # fmt: skip
    result, _ = run_build(ctx, home, "multi:1")
    image = DiskImages(home).get("multi:1")
    assert (image.rootfs / "app/twice.txt").read_text() == "source\nsource\n"
    assert (image.rootfs / "app/copy.txt").read_text() == "source\n"
    assert image.config["config"]["Entrypoint"] == ["/bin/cat"] and result.steps == 9  # not "unused"
    build_only, _ = run_build(ctx, home, "multi:build", target="build")
    assert DiskImages(home).get("multi:build").config["config"]["WorkingDir"] == "/out"
    assert build_only.all_cached


def test_dockerignore_is_honoured(tmp_path: Path, home: Path) -> None:
    ctx = write(tmp_path / "c", {
        ".dockerignore": "*.log\nsecrets/\n!keep.log\n**/cache\n",
        "a.log": "x", "keep.log": "k", "secrets/key": "s", "deep/x/cache": "c", "deep/x/data": "d",
        "Dockerfile": "FROM busybox\nCOPY . /app/\n",
    })  # fmt: skip
    run_build(ctx, home, "ignored:1")
    root = DiskImages(home).get("ignored:1").rootfs / "app"
    copied = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert copied == [".dockerignore", "Dockerfile", "deep/x/data", "keep.log"]
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY a.log /app/\n")
    with pytest.raises(BuildError, match=r"excluded by \.dockerignore") as caught:
        run_build(ctx, home, "ignored:2")
    assert caught.value.line == 2


def test_copy_rules_glob_directory_destination_and_chmod(tmp_path: Path, home: Path) -> None:
    ctx = write(tmp_path / "c", {"a.py": "a", "b.py": "b", "c.txt": "c", "Dockerfile": (
        "FROM busybox\nWORKDIR /app\nCOPY --chmod=700 *.py lib/\nCOPY c.txt renamed.txt\n"
        "COPY <<EOF config.ini\nname=${HOSTNAME:-posts}\nEOF\n"
    )})  # fmt: skip
    run_build(ctx, home, "copies:1")
    app = DiskImages(home).get("copies:1").rootfs / "app"
    assert sorted(p.name for p in (app / "lib").iterdir()) == ["a.py", "b.py"]
    assert (app / "lib/a.py").stat().st_mode & 0o777 == 0o700
    assert (app / "renamed.txt").read_text() == "c" and (app / "config.ini").read_text() == "name=posts\n"


def test_images_can_be_listed_tagged_inspected_exported_and_removed(
    context: Path, home: Path, tmp_path: Path
) -> None:
    result, _ = run_build(context, home)
    assert local.tag("posts:1.0", "posts:stable", home) == "posts:stable"
    (image,) = local.list_images(home)
    assert image.tags == ("posts:1.0", "posts:stable") and image.id == result.id
    info = local.inspect(result.id[7:19], home)
    assert info["Config"]["WorkingDir"] == "/app" and info["Config"]["ExposedPorts"] == {"8080/tcp": {}}
    out = local.export("posts:1.0", tmp_path / "oci", "dir", home)
    index = json.loads((out / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":")[1]
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "posts:1.0"
    manifest = json.loads((out / "blobs/sha256" / manifest_digest).read_text())
    layer_names = set()
    for layer in manifest["layers"]:
        with tarfile.open(out / "blobs/sha256" / layer["digest"].split(":")[1]) as tar:
            layer_names |= set(tar.getnames())
    assert "app/server.py" in layer_names and "usr/local/pyvenv.cfg" in layer_names
    local.export("posts:1.0", tmp_path / "oci.tar", "tar", home)
    with tarfile.open(tmp_path / "oci.tar") as tar:
        assert {"index.json", "oci-layout"} <= set(tar.getnames())
    assert local.remove("posts:stable", home=home) == ["Untagged: posts:stable"]
    assert local.remove("posts:1.0", home=home) == ["Untagged: posts:1.0", f"Deleted: {result.id}"]
    assert local.list_images(home) == []
    with pytest.raises(ImageError, match=r"no image posts:1\.0") as caught:
        local.inspect("posts:1.0", home)
    assert "labkit image ls" in caught.value.hint


BAD = [
    ("syntax error", {"Dockerfile": "FROM busybox\nRUN <<EOF\necho\n"}, 2, "no closing EOF line"),
    ("unknown instruction", {"Dockerfile": "FROM busybox\nRUNN echo\n"}, 2, "unknown instruction RUNN"),
    (
        "missing file",
        {"Dockerfile": "FROM busybox\nCOPY nothere.txt /app/\n"},
        2,
        "not found in the build context",
    ),
    ("outside", {"Dockerfile": "FROM busybox\nCOPY ../secret /app/\n"}, 2, "outside the build context"),
    ("failing run", {"Dockerfile": "FROM busybox\nRUN echo about to fail && exit 3\n"}, 2, "exit code 3"),
    ("unknown base", {"Dockerfile": "FROM pyhton:3.12\n"}, 1, "cannot supply the base image pyhton"),
    ("empty", {"Dockerfile": ""}, 1, "the Dockerfile is empty"),
    ("scratch run", {"Dockerfile": "FROM scratch\nRUN echo\n"}, 2, "RUN needs a shell"),
    ("apt-get", {"Dockerfile": "FROM debian\nRUN apt-get update && apt-get install -y curl\n"}, 2, "apt-get"),
    ("add url", {"Dockerfile": "FROM busybox\nADD https://example.com/x /x\n"}, 2, "does not download"),
]


@pytest.mark.parametrize(("case", "files", "line", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_the_line_and_leaves_no_half_written_image(
    tmp_path: Path, home: Path, case: str, files: dict[str, str], line: int, message: str
) -> None:
    ctx = write(tmp_path / "c", files)
    with pytest.raises(BuildError) as caught:
        run_build(ctx, home, "bad:1")
    error = caught.value
    assert error.line == line and f"line {line}" in error.message and message in error.message, error
    assert error.hint
    assert_nothing_half_written(home)


def test_a_failing_run_shows_its_output_and_exit_code(tmp_path: Path, home: Path) -> None:
    ctx = write(
        tmp_path / "c", {"Dockerfile": "FROM busybox\nRUN echo step one\nRUN echo oops >&2; exit 7\n"}
    )
    with pytest.raises(BuildError) as caught:
        run_build(ctx, home, "bad:1")
    assert caught.value.exit_code == 7 and "oops" in caught.value.output and "oops" in caught.value.message
    again = write(tmp_path / "c", {"Dockerfile": "FROM busybox\nRUN echo step one\nRUN true\n"})
    result, _ = run_build(again, home, "fixed:1")
    assert result.cache_hits == 2  # the steps before the failure were kept


def test_an_unknown_base_lists_the_supported_ones_and_suggests_the_nearest(
    tmp_path: Path, home: Path
) -> None:
    with pytest.raises(BaseImageError) as caught:
        run_build(write(tmp_path / "c", {"Dockerfile": "FROM pyhton:3.12\n"}), home, "bad:1")
    assert "did you mean python?" in caught.value.hint and "busybox" in caught.value.hint


def test_a_symlink_out_of_the_context_is_refused(tmp_path: Path, home: Path) -> None:
    ctx = write(tmp_path / "c", {"Dockerfile": "FROM busybox\nCOPY . /app/\n", "ok.txt": "ok"})
    (tmp_path / "secret").write_text("secret")
    os.symlink(tmp_path / "secret", ctx / "link")
    with pytest.raises(BuildError, match="symbolic link") as caught:
        run_build(ctx, home, "bad:1")
    assert caught.value.line == 2 and ".dockerignore" in caught.value.hint
    assert_nothing_half_written(home)
    os.symlink("ok.txt", ctx / "inside")
    (ctx / ".dockerignore").write_text("link\n")
    run_build(ctx, home, "links:1")
    assert os.readlink(DiskImages(home).get("links:1").rootfs / "app/inside") == "ok.txt"


def test_a_huge_context_is_refused_before_anything_is_built(context: Path, home: Path) -> None:
    (context / "big.bin").write_bytes(b"x" * 4096)
    with pytest.raises(BuildError, match="over 0 MB") as caught:
        build(context, "big:1", home=home, context_limit=1024)
    assert ".dockerignore" in caught.value.hint
    assert_nothing_half_written(home)


def test_an_invalid_tag_is_refused(context: Path, home: Path) -> None:
    with pytest.raises(Exception, match="invalid tag"):
        build(context, "Posts:1.0", home=home)
