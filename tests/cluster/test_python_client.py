"""The official ``kubernetes`` Python client against the session cluster, as a notebook would use it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config, utils, watch
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

from tests.cluster.support import deployment
from tests.conftest import Cluster


@pytest.fixture(scope="module")
def api(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.ApiClient]:
    """A client configured from the cluster's kubeconfig file, as ``config.load_kube_config`` does it."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
    with client.ApiClient(configuration) as api_client:
        yield api_client


def _body(e: ApiException) -> dict:
    import json

    return json.loads(e.body)


def test_load_kube_config_reads_server_ca_and_token(cluster: Cluster, api: client.ApiClient) -> None:
    assert api.configuration.host == cluster.server
    assert api.configuration.ssl_ca_cert  # verifies the server with the cluster's CA
    nodes = client.CoreV1Api(api).list_node()
    assert sorted(n.metadata.name for n in nodes.items) == [
        "test-control-plane",
        "test-worker",
        "test-worker2",
    ]


def test_version_api(api: client.ApiClient) -> None:
    assert client.VersionApi(api).get_code().git_version.startswith("v1.32.")


def test_the_default_load_kube_config_works_too(cluster: Cluster) -> None:
    config.load_kube_config(config_file=str(cluster.kubeconfig))
    names = [n.metadata.name for n in client.CoreV1Api().list_node().items]
    assert "test-worker" in names


def test_typed_crud_of_a_deployment(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    created = apps.create_namespaced_deployment(namespace, deployment("web", replicas=2))
    assert created.metadata.uid and created.metadata.generation == 1
    assert created.spec.strategy.type == "RollingUpdate"  # defaulted by the server
    apps.create_namespaced_deployment(namespace, deployment("other", replicas=1))

    read = apps.read_namespaced_deployment("web", namespace)
    assert read.spec.replicas == 2 and read.metadata.uid == created.metadata.uid

    read.spec.replicas = 4
    read.metadata.resource_version = None  # unconditional: the controller may have written status since
    replaced = apps.replace_namespaced_deployment("web", namespace, read)
    assert replaced.spec.replicas == 4 and replaced.metadata.generation == 2

    patched = apps.patch_namespaced_deployment(
        "web",
        namespace,
        {
            "metadata": {"labels": {"tier": "front"}},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.28"}]}}},
        },
    )
    assert patched.metadata.labels == {"app": "web", "tier": "front"}
    assert [c.image for c in patched.spec.template.spec.containers] == ["nginx:1.28"]

    selected = apps.list_namespaced_deployment(namespace, label_selector="tier=front")
    assert [d.metadata.name for d in selected.items] == ["web"]
    both = apps.list_namespaced_deployment(namespace, label_selector="app in (web,other)")
    assert sorted(d.metadata.name for d in both.items) == ["other", "web"]
    assert (
        apps.list_namespaced_deployment(namespace, label_selector="app!=web").items[0].metadata.name
        == "other"
    )

    scaled = apps.patch_namespaced_deployment_scale("web", namespace, {"spec": {"replicas": 1}})
    assert scaled.spec.replicas == 1 and scaled.status.selector == "app=web"

    status = apps.delete_namespaced_deployment("web", namespace)  # a dict in client v37, a V1Status before
    assert (status if isinstance(status, dict) else status.to_dict())["status"] == "Success"
    with pytest.raises(ApiException) as info:
        apps.read_namespaced_deployment("web", namespace)
    assert info.value.status == 404 and info.value.reason == "Not Found"
    assert _body(info.value)["message"] == 'deployments.apps "web" not found'


def test_stale_replace_raises_a_conflict(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    made = core.create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    made.data = {"a": "2"}
    core.replace_namespaced_config_map("cm", namespace, made)
    made.data = {"a": "3"}
    with pytest.raises(ApiException) as info:
        core.replace_namespaced_config_map("cm", namespace, made)
    assert info.value.status == 409 and info.value.reason == "Conflict"
    assert _body(info.value)["reason"] == "Conflict"


def test_create_from_yaml(api: client.ApiClient, namespace: str, tmp_path: Path) -> None:
    manifest = tmp_path / "app.yaml"
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]},
    }
    manifest.write_text(yaml.safe_dump_all([deployment("web"), service]))
    created = utils.create_from_yaml(api, str(manifest), namespace=namespace)
    kinds = sorted(
        type(obj).__name__ for group in created for obj in (group if isinstance(group, list) else [group])
    )
    assert kinds == ["V1Deployment", "V1Service"]
    svc = client.CoreV1Api(api).read_namespaced_service("web", namespace)
    assert svc.spec.cluster_ip.startswith("127.96.") and svc.spec.ports[0].target_port == 80

    with pytest.raises(utils.FailToCreateError) as info:
        utils.create_from_yaml(api, str(manifest), namespace=namespace)
    assert sorted(e.status for e in info.value.api_exceptions) == [409, 409]
    messages = sorted(_body(e)["message"] for e in info.value.api_exceptions)
    assert messages == ['deployments.apps "web" already exists', 'services "web" already exists']


def test_watch_stream_sees_added_modified_deleted(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "before"}})

    def churn() -> None:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "w"}, "data": {"v": "1"}})
        core.patch_namespaced_config_map("w", namespace, {"data": {"v": "2"}})
        core.delete_namespaced_config_map("w", namespace)

    worker = threading.Thread(target=churn)  # started once the stream has shown the existing object
    seen: list[tuple[str, str, dict | None]] = []
    w = watch.Watch()
    try:
        for event in w.stream(core.list_namespaced_config_map, namespace, timeout_seconds=10):
            seen.append((event["type"], event["object"].metadata.name, event["object"].data))
            if len(seen) == 1:
                worker.start()
            if event["type"] == "DELETED":
                w.stop()
    finally:
        if worker.is_alive():
            worker.join(timeout=10)
    assert seen == [
        ("ADDED", "before", None),
        ("ADDED", "w", {"v": "1"}),
        ("MODIFIED", "w", {"v": "2"}),
        ("DELETED", "w", {"v": "2"}),
    ]


def test_watch_stream_ends_at_timeout_seconds(api: client.ApiClient, namespace: str) -> None:
    start = time.monotonic()
    events = list(
        watch.Watch().stream(client.CoreV1Api(api).list_namespaced_config_map, namespace, timeout_seconds=1)
    )
    assert events == []
    assert time.monotonic() - start < 5


def test_dynamic_client(api: client.ApiClient, namespace: str) -> None:
    dyn = DynamicClient(api)
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    assert deployments.namespaced and deployments.name == "deployments"

    created = deployments.create(body=deployment("dyn", replicas=1), namespace=namespace)
    assert created.metadata.name == "dyn" and created.metadata.generation == 1
    got = deployments.get(name="dyn", namespace=namespace)
    assert got.spec.replicas == 1

    patched = deployments.patch(
        body={"spec": {"replicas": 3}},
        name="dyn",
        namespace=namespace,
        content_type="application/merge-patch+json",
    )
    assert patched.spec.replicas == 3 and patched.metadata.generation == 2

    desired = deployment("dyn", replicas=5, image="nginx:1.28")
    applied = deployments.server_side_apply(
        body=desired, name="dyn", namespace=namespace, field_manager="notebook"
    )
    assert applied.spec.replicas == 5
    assert applied.spec.template.spec.containers[0].image == "nginx:1.28"

    fresh = deployments.server_side_apply(
        body=deployment("ssa-new", replicas=1), name="ssa-new", namespace=namespace, field_manager="notebook"
    )
    assert fresh.metadata.uid  # apply creates an absent object

    listed = deployments.get(namespace=namespace, label_selector="app=dyn")
    assert [d.metadata.name for d in listed.items] == ["dyn"]


def test_every_namespace_gets_a_default_service_account(api: client.ApiClient, namespace: str) -> None:
    """As upstream's service account controller: made with the namespace, made again if deleted."""
    core = client.CoreV1Api(api)

    def default_account() -> client.V1ServiceAccount | None:
        try:
            return core.read_namespaced_service_account("default", namespace)
        except ApiException as e:
            assert e.status == 404
            return None

    deadline = time.monotonic() + 10
    while (first := default_account()) is None:
        assert time.monotonic() < deadline, "no default ServiceAccount in a new namespace"
        time.sleep(0.05)
    core.delete_namespaced_service_account("default", namespace)
    deadline = time.monotonic() + 10
    while (again := default_account()) is None or again.metadata.uid == first.metadata.uid:
        assert time.monotonic() < deadline, "the default ServiceAccount did not come back"
        time.sleep(0.05)
