"""The kind target with a fake `kind` on PATH (no real kind can run on these machines).

The fake records its arguments and answers as kind does; its "kind-labkit" kubeconfig points at
a real embedded API server, and the machine's Docker Engine builds the images.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from labkit import connect
from labkit.errors import ClusterError, LabWarning, TargetError
from tests.conftest import Cluster
from tests.docker.conftest import base_image, builder, docker_client, new_tag  # noqa: F401 - fixtures

FAKE_KIND = """\
#!{python}
import json, pathlib, sys
state = pathlib.Path({state!r})
args = sys.argv[1:]
with open(state / "calls.log", "a") as log:
    log.write(json.dumps(args) + "\\n")
if args[:2] == ["get", "clusters"]:
    if (state / "created").exists():
        print("labkit")
    else:
        print("No kind clusters found.", file=sys.stderr)
elif args[:2] == ["create", "cluster"]:
    (state / "config.yaml").write_text(pathlib.Path(args[args.index("--config") + 1]).read_text())
    (state / "created").touch()
    print('Creating cluster "labkit" ...', file=sys.stderr)
    print(" ✓ Ensuring node image (kindest/node:v1.32.2) 🖼", file=sys.stderr)
elif args[:2] == ["get", "kubeconfig"]:
    print((state / "kubeconfig").read_text())
elif args[:2] == ["load", "docker-image"]:
    print(f'Image: "{{args[2]}}" with ID "sha256:0" not yet present on node "labkit-worker", loading...',
          file=sys.stderr)
else:
    print(f"ERROR: unknown command {{args}}", file=sys.stderr)
    sys.exit(1)
"""
DOCKERFILE = 'FROM {base}\nRUN echo built > /built.txt\nCMD ["cat", "/built.txt"]\n'


@pytest.fixture
def fake_kind(tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fake kind on PATH (its state dir is returned) and a LABKIT_HOME of its own."""
    yield install_fake_kind(tmp_path, cluster, monkeypatch)


def install_fake_kind(
    tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch, *, created: bool = False
) -> Path:
    """Put a fake kind on PATH whose "kind-labkit" cluster is ``cluster`` (already made when
    ``created``), with a LABKIT_HOME of its own; returns the fake's state directory."""
    state, bin_dir = tmp_path / "kind-state", tmp_path / "bin"
    state.mkdir()
    bin_dir.mkdir()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["contexts"][0]["name"] = config["current-context"] = "kind-labkit"
    (state / "kubeconfig").write_text(yaml.safe_dump(config))
    kind = bin_dir / "kind"
    kind.write_text(FAKE_KIND.format(python=sys.executable, state=str(state)))
    kind.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(sys.executable).parent}:/usr/bin:/bin")
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    if created:
        (state / "created").touch()
    return state


def calls(state: Path) -> list[list[str]]:
    """The argument lists the fake kind was called with, in order."""
    log = state / "calls.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_kind_creates_a_three_node_cluster_then_reuses_it_and_loads_built_images(
    fake_kind: Path,
    base_image: str,  # noqa: F811 - the fixture imported above
    new_tag: object,  # noqa: F811
    docker_client: object,  # noqa: F811
    namespace: str,
) -> None:
    lab = connect("kind", namespace=namespace)
    config_file = str(Path(lab.kubeconfig).parent / "labkit.yaml")
    assert calls(fake_kind) == [
        ["get", "clusters"],
        [
            "create",
            "cluster",
            "--name",
            "labkit",
            "--config",
            config_file,
            "--kubeconfig",
            str(lab.kubeconfig),
        ],
        ["get", "kubeconfig", "--name", "labkit"],
    ]
    roles = [n["role"] for n in yaml.safe_load((fake_kind / "config.yaml").read_text())["nodes"]]
    assert roles == ["control-plane", "worker", "worker"]
    status = lab.status()
    assert (status.target, status.context, status.builder) == ("kind", "kind-labkit", "docker")
    assert status.nodes == ["test-control-plane", "test-worker", "test-worker2"]  # the embedded server's

    tag = new_tag()  # type: ignore[operator]
    result = lab.build(DOCKERFILE.format(base=base_image), tag)
    assert result.builder == "docker" and result.tag == tag
    assert calls(fake_kind)[-1] == ["load", "docker-image", tag, "--name", "labkit"]

    latest = tag.replace(":1", ":latest")
    with pytest.warns(LabWarning, match=r"is :latest: Kubernetes then pulls it") as warned:
        lab.build(DOCKERFILE.format(base=base_image), latest)
    assert "Tag it with a version" in str(warned[0].message)
    assert calls(fake_kind)[-1] == ["load", "docker-image", latest, "--name", "labkit"]
    docker_client.images.remove(latest, force=True)  # type: ignore[attr-defined]

    connect("kind", namespace=namespace)  # kind lists it now: no second create
    assert [c[:2] for c in calls(fake_kind)[-2:]] == [["get", "clusters"], ["get", "kubeconfig"]]


@pytest.mark.usefixtures("docker_client")
def test_a_load_balancer_stays_pending_on_kind(fake_kind: Path, namespace: str) -> None:
    lab = connect("kind", namespace=namespace)
    service = (
        "apiVersion: v1\nkind: Service\nmetadata: {name: front}\n"
        "spec: {type: LoadBalancer, selector: {app: front}, ports: [{port: 80}]}\n"
    )
    with pytest.warns(
        LabWarning, match=r"service/front is type LoadBalancer: on kind its EXTERNAL-IP stays <pending>"
    ):
        applied = lab.apply(service)
    assert [str(a) for a in applied] == ["service/front created"] and applied[0].ready is None
    with pytest.raises(ClusterError, match="stays <pending>: no load balancer runs there") as err:
        lab.wait_ready("service/front")
    assert "NodePort" in err.value.hint


def test_kind_without_a_docker_engine_says_so(
    fake_kind: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = tmp_path / "closed.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{closed}")
    with pytest.raises(TargetError) as err:
        connect("kind")
    assert err.value.message.startswith(
        "kind runs its nodes as Docker containers, but no Docker Engine answers."
    )
    assert f"unix://{closed}" in err.value.message
    assert "Start Docker".lower() in err.value.hint.lower() and "labkit.connect('embedded')" in err.value.hint
    assert calls(fake_kind) == []


@pytest.mark.usefixtures("docker_client")
def test_docker_without_kind_says_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    with pytest.raises(TargetError) as err:
        connect("kind")
    assert err.value.message == "Docker is running, but the kind command is not installed (no `kind` on PATH)"
    assert "kind.sigs.k8s.io" in err.value.hint and "labkit.connect('embedded')" in err.value.hint


def test_a_kubeconfig_target_refuses_a_tag_without_a_registry(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    lab = connect("kubeconfig")
    assert lab.status().target == "kubeconfig" and lab.context == f"labkit-{cluster.name}"
    with pytest.raises(TargetError, match=r'image "posts:1\.0" names no registry') as err:
        lab.build("FROM scratch\n", "posts:1.0")
    assert "registry.example.com/you/posts:1.0" in err.value.hint
