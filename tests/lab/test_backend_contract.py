"""The same checks against every backend that can run here: the embedded target, a kubeconfig
context that points at an embedded cluster, and the kind target with a fake `kind` whose
cluster is an embedded one (kind itself cannot run on these machines: the one mock boundary).

What a Lab promises does not depend on the backend: applying waits for readiness, the models
read the same, scaling and killing work, a reset deletes what the Lab made, errors name what
is missing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.clusters.embedded import EmbeddedBackend
from labkit.clusters.kind import KindBackend
from labkit.clusters.kubeconfig import KubeconfigBackend
from labkit.errors import TargetError, UsageError
from labkit.lab import Lab
from tests.conftest import Cluster
from tests.docker.conftest import docker_client  # noqa: F401 - a fixture
from tests.lab.test_kind_backend import install_fake_kind

APP = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {greeting: hello}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {labkit.dev/runtime: simulated}  # no image needed: the contract, not a runtime
    spec:
      containers: [{name: web, image: web:1.0}]
"""


@pytest.fixture(
    params=["embedded", "kubeconfig", pytest.param("kind", marks=pytest.mark.docker)],
)
def lab(
    request: pytest.FixtureRequest, cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Lab]:
    """A Lab on the session's embedded cluster through one backend, in a namespace of its own."""
    if request.param == "embedded":
        monkeypatch.setenv("LABKIT_HOME", str(cluster.home))
        backend: EmbeddedBackend | KubeconfigBackend | KindBackend = EmbeddedBackend(cluster.name)
    elif request.param == "kubeconfig":
        monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
        backend = KubeconfigBackend()
    else:
        request.getfixturevalue("docker_client")  # the kind target needs a Docker Engine
        install_fake_kind(tmp_path, cluster, monkeypatch, created=True)  # the kind cluster exists
        backend = KindBackend()
    made = Lab(backend, session=f"contract-{uuid.uuid4().hex[:6]}")
    made.use(f"c-{request.param}-{uuid.uuid4().hex[:6]}")
    yield made
    made.reset()


def test_every_backend_keeps_the_labs_promises(lab: Lab) -> None:
    status = lab.status()
    assert status.target == lab.backend.name and len(status.nodes) == 3
    assert status.namespace == lab.namespace

    applied = lab.apply(APP)
    assert [str(a) for a in applied] == ["configmap/settings created", "deployment.apps/web created"]
    assert applied[1].ready  # waited for: the rollout finished

    pods = lab.pods()
    assert len(pods) == 2 and set(pods["status"]) == {"Running"} and set(pods["ready"]) == {"1/1"}
    assert lab.kubectl("get configmap settings -o jsonpath={.data.greeting}") == "hello"
    counts = lab.nodes().set_index("name")["pods"]
    assert counts.sum() == 2

    lab.scale("web", 1)
    lab.wait_ready("deployment/web", timeout=30)
    with pytest.raises(UsageError, match=f'pod "nope" not found in namespace {lab.namespace}'):
        lab.kill("nope")

    namespace = lab.namespace
    deleted = lab.reset()
    assert deleted[:2] == ["deployment.apps/web", "configmap/settings"], deleted  # newest first
    assert f"namespace/{namespace}" in deleted
    lab.use("default")
    assert namespace not in lab.kubectl("get namespaces -o name")


BUILDER_OF = {"embedded": "embedded", "kubeconfig": "docker", "kind": "docker"}


def test_every_backend_pairs_with_a_builder_whose_images_its_nodes_run(lab: Lab) -> None:
    """The backend only names its builder; the Lab builds with it and shows it in status()."""
    assert lab.status().builder == lab.images.name == BUILDER_OF[lab.backend.name]
    if lab.backend.name == "kubeconfig":  # a remote cluster cannot see this machine's images
        with pytest.raises(TargetError, match=r'image "web:1\.0" names no registry'):
            lab.build("NOT A DOCKERFILE\n", "web:1.0")  # refused before any build starts
    elif lab.backend.name == "embedded":
        result = lab.build("FROM busybox\nENV GREETING=hello\n", "contract:1.0")
        assert (result.builder, result.tag) == ("embedded", "contract:1.0")
        ran = lab.run("contract:1.0")  # the embedded builder runs nothing itself: a pod
        assert ran.name in set(lab.pods()["name"])
        ran.stop()
