"""kubectl against the session cluster, each test once per kubectl version (the ``kubectl`` fixture)."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import yaml

from tests.cluster.support import LineReader, deployment
from tests.conftest import KUBECTLS, Cluster

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web"},
    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
}


def _manifest(path: Path, replicas: int = 2, image: str = "nginx:1.27") -> Path:
    path.write_text(yaml.safe_dump_all([deployment("web", replicas, image), SERVICE]))
    return path


def _get(kubectl, namespace: str, what: str) -> dict:
    return json.loads(kubectl("get", what, "-n", namespace, "-o", "json").stdout)


def _rows(output: str) -> list[list[str]]:
    """A table's rows split into cells (cells separated by 2+ spaces), without the header."""
    return [re.split(r"\s{2,}", line.strip()) for line in output.strip().splitlines()[1:]]


# -- reads ----------------------------------------------------------------------------------


def test_get_nodes_shows_three_ready_nodes_with_roles(kubectl) -> None:
    out = kubectl("get", "nodes").stdout
    assert re.split(r"\s{2,}", out.splitlines()[0].strip()) == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    rows = {r[0]: r for r in _rows(out)}
    assert sorted(rows) == ["test-control-plane", "test-worker", "test-worker2"]
    assert [rows[n][1:3] for n in sorted(rows)] == [
        ["Ready", "control-plane"],
        ["Ready", "<none>"],
        ["Ready", "<none>"],
    ]
    assert all(r[4] == "v1.32.0-labkit" for r in rows.values())


def test_api_resources_lists_names_short_names_and_kinds(kubectl) -> None:
    out = kubectl("api-resources").stdout
    rows = {r[0]: r for r in (line.split() for line in out.splitlines()[1:])}
    assert rows["pods"] == ["pods", "po", "v1", "true", "Pod"]
    assert rows["deployments"] == ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    assert rows["services"] == ["services", "svc", "v1", "true", "Service"]
    assert rows["nodes"] == ["nodes", "no", "v1", "false", "Node"]
    assert rows["namespaces"] == ["namespaces", "ns", "v1", "false", "Namespace"]
    assert {"configmaps", "events", "replicasets", "leases", "endpointslices"} <= set(rows)


def test_get_all_across_namespaces_shows_the_kubernetes_service(kubectl) -> None:
    out = kubectl("get", "all", "-A").stdout
    assert re.search(
        r"^default\s+service/kubernetes\s+ClusterIP\s+127\.96\.\d+\.1\s+<none>\s+443/TCP\s", out, re.M
    ), out


def test_get_pod_that_does_not_exist(kubectl, namespace: str) -> None:
    result = kubectl("get", "pod", "nope", "-n", namespace, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    result = kubectl("get", "deploy", "nope", "-n", namespace, check=False)
    assert result.stderr.strip() == 'Error from server (NotFound): deployments.apps "nope" not found'


def test_get_pods_wide_shows_ip_and_node_columns(kubectl, cluster: Cluster, namespace: str) -> None:
    pod = {
        "metadata": {"name": "solo", "labels": {"run": "solo"}},
        "spec": {
            "nodeName": "test-worker",
            "containers": [{"name": "c", "image": "busybox:1.36", "command": ["sh", "-c", "sleep 3600"]}],
        },
    }
    status, body, _ = cluster.request("POST", f"/api/v1/namespaces/{namespace}/pods", pod)
    assert status == 201, body
    kubectl("wait", "--for=condition=Ready", "pod/solo", "-n", namespace, "--timeout=20s")
    out = kubectl("get", "pods", "-o", "wide", "-n", namespace).stdout
    header = re.split(r"\s{2,}", out.splitlines()[0].strip())
    assert header == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ]
    row = _rows(out)[0]
    assert row[:4] == ["solo", "1/1", "Running", "0"]
    assert re.match(r"127\.(24[4-9]|25[01])\.", row[5]) and row[6] == "test-worker"
    assert "solo" in kubectl("get", "po", "--show-labels", "-n", namespace).stdout.split()[0:10]


def test_get_events_shows_the_node_events(kubectl) -> None:
    out = kubectl("get", "events", "-n", "default").stdout
    assert re.split(r"\s{2,}", out.splitlines()[0].strip()) == [
        "LAST SEEN",
        "TYPE",
        "REASON",
        "OBJECT",
        "MESSAGE",
    ]
    assert re.search(
        r"Normal\s+RegisteredNode\s+node/test-worker\s+Node test-worker event: Registered Node "
        r"test-worker in Controller",
        out,
    ), out
    assert re.search(r"Normal\s+Starting\s+node/test-worker2\s+Starting kubelet\.", out), out


def test_describe_node(kubectl) -> None:
    out = kubectl("describe", "node", "test-worker").stdout
    assert re.search(r"^Name:\s+test-worker$", out, re.M)
    assert re.search(r"^Roles:\s+<none>$", out, re.M)
    assert re.search(r"^\s+kubernetes.io/hostname=test-worker$", out, re.M)
    assert re.search(r"^\s+Ready\s+True\s.*KubeletReady\s+kubelet is posting ready status", out, re.M)
    assert re.search(r"^\s+HolderIdentity:\s+test-worker$", out, re.M)  # its Lease was found
    assert re.search(r"^\s+InternalIP:\s+127\.18\.[0-7]\.\d+$", out, re.M)
    assert re.search(r"^\s+pods:\s+110$", out, re.M)
    assert "Non-terminated Pods:" in out and "Failed to get lease" not in out
    assert "-9223372036854775808" not in out  # capacity and allocatable are set
    assert re.search(r"Normal\s+RegisteredNode\s.*Registered Node test-worker in Controller", out)


# -- apply ----------------------------------------------------------------------------------


def test_apply_create_unchanged_configured(kubectl, namespace: str, tmp_path: Path) -> None:
    first = _manifest(tmp_path / "app.yaml")
    out = kubectl("apply", "-n", namespace, "-f", str(first)).stdout
    assert out.splitlines() == ["deployment.apps/web created", "service/web created"]
    created = _get(kubectl, namespace, "deployment/web")
    assert created["metadata"]["generation"] == 1
    assert "kubectl.kubernetes.io/last-applied-configuration" in created["metadata"]["annotations"]
    svc = _get(kubectl, namespace, "service/web")
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["clusterIP"].startswith("127.96.")

    out = kubectl("apply", "-n", namespace, "-f", str(first)).stdout
    assert out.splitlines() == ["deployment.apps/web unchanged", "service/web unchanged"]

    changed = _manifest(tmp_path / "app2.yaml", replicas=3, image="nginx:1.28")
    out = kubectl("apply", "-n", namespace, "-f", str(changed)).stdout
    assert out.splitlines() == ["deployment.apps/web configured", "service/web unchanged"]
    after = _get(kubectl, namespace, "deployment/web")
    assert after["spec"]["replicas"] == 3
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert after["metadata"]["generation"] == 2
    assert after["metadata"]["uid"] == created["metadata"]["uid"]
    assert int(after["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    out = kubectl("delete", "-n", namespace, "-f", str(changed)).stdout
    assert re.match(r'deployment.apps "web" deleted( from \S+ namespace)?\nservice "web" deleted', out), out
    result = kubectl("get", "deployment", "web", "-n", namespace, check=False)
    assert 'deployments.apps "web" not found' in result.stderr


def test_server_side_apply(kubectl, namespace: str, tmp_path: Path) -> None:
    first = _manifest(tmp_path / "app.yaml")
    out = kubectl("apply", "--server-side", "-n", namespace, "-f", str(first)).stdout
    assert out.splitlines() == ["deployment.apps/web serverside-applied", "service/web serverside-applied"]
    created = _get(kubectl, namespace, "deployment/web")
    assert created["metadata"]["generation"] == 1

    kubectl("apply", "--server-side", "-n", namespace, "-f", str(first))
    assert _get(kubectl, namespace, "deployment/web")["metadata"]["generation"] == 1  # nothing changed

    changed = _manifest(tmp_path / "app2.yaml", replicas=4, image="nginx:1.28")
    out = kubectl("apply", "--server-side", "-n", namespace, "-f", str(changed)).stdout
    assert out.splitlines() == ["deployment.apps/web serverside-applied", "service/web serverside-applied"]
    after = _get(kubectl, namespace, "deployment/web")
    assert after["spec"]["replicas"] == 4
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert after["metadata"]["generation"] == 2
    assert after["metadata"]["uid"] == created["metadata"]["uid"]


def test_server_side_apply_create_records_an_apply_manager(
    kubectl, cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    kubectl("apply", "--server-side", "-n", namespace, "-f", str(_manifest(tmp_path / "app.yaml")))
    raw = cluster.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/web")[1]
    managers = [(m["manager"], m["operation"]) for m in raw["metadata"]["managedFields"]]
    assert ("kubectl", "Apply") in managers  # the controller's status writes add their own entry
    assert ("kubectl", "Update") not in managers


def test_get_deploy_watch_streams_changes(kubectl, cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    kubectl("apply", "-n", namespace, "-f", str(_manifest(tmp_path / "app.yaml")))
    binary = KUBECTLS[kubectl.version]
    proc = subprocess.Popen(
        [binary, "get", "deploy", "-w", "-n", namespace],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=cluster.env(),
    )
    try:
        reader = LineReader(proc)
        assert re.split(r"\s{2,}", reader.wait_for(r"^NAME").strip()) == [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
        ]
        reader.wait_for(r"^web\s+0/2\s")
        kubectl("scale", "deployment", "web", "--replicas=7", "-n", namespace)
        reader.wait_for(r"^web\s+0/7\s")
        kubectl("delete", "deployment", "web", "-n", namespace)
        assert proc.poll() is None, "kubectl get -w ended early:\n" + "\n".join(reader.lines)
    finally:
        proc.kill()
        proc.wait(timeout=10)


# -- imperative commands ------------------------------------------------------------------------


def test_create_namespace(kubectl, cluster: Cluster) -> None:
    name = f"x-{uuid.uuid4().hex[:8]}"
    try:
        assert kubectl("create", "namespace", name).stdout.strip() == f"namespace/{name} created"
        status, ns, _ = cluster.request("GET", f"/api/v1/namespaces/{name}")
        assert status == 200 and ns["status"]["phase"] == "Active"
        again = kubectl("create", "namespace", name, check=False)
        assert again.returncode == 1
        assert f'Error from server (AlreadyExists): namespaces "{name}" already exists' in again.stderr
    finally:
        cluster.request("DELETE", f"/api/v1/namespaces/{name}")


def test_create_deployment_then_scale_label_annotate_and_patch(
    kubectl, cluster: Cluster, namespace: str
) -> None:
    def run(*args: str) -> str:
        return kubectl(*args, "-n", namespace).stdout.strip()

    def current() -> dict:
        status, body, _ = cluster.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/web")
        assert status == 200, body
        return body

    assert run("create", "deployment", "web", "--image=busybox") == "deployment.apps/web created"
    made = current()
    assert made["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert made["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox"
    assert made["spec"]["template"]["spec"]["containers"][0]["name"] == "busybox"
    assert made["spec"]["replicas"] == 1 and made["metadata"]["generation"] == 1

    assert run("scale", "deployment", "web", "--replicas=5") == "deployment.apps/web scaled"
    assert current()["spec"]["replicas"] == 5
    assert current()["metadata"]["generation"] == 2

    assert run("label", "deployment", "web", "tier=frontend") == "deployment.apps/web labeled"
    assert run("annotate", "deployment", "web", "note=hello") == "deployment.apps/web annotated"
    meta = current()["metadata"]
    assert meta["labels"] == {"app": "web", "tier": "frontend"}
    assert meta["annotations"]["note"] == "hello"
    assert meta["generation"] == 2  # metadata changes do not bump the generation

    assert (
        run("patch", "deployment", "web", "--type=merge", "-p", '{"spec":{"replicas":2}}')
        == "deployment.apps/web patched"
    )
    assert current()["spec"]["replicas"] == 2
    assert (
        run("patch", "deployment", "web", "--type=merge", "-p", '{"spec":{"replicas":2}}')
        == "deployment.apps/web patched (no change)"
    )
    assert (
        run(
            "patch",
            "deployment",
            "web",
            "--type=json",
            "-p",
            '[{"op":"replace","path":"/spec/template/spec/containers/0/image","value":"busybox:1.36"}]',
        )
        == "deployment.apps/web patched"
    )
    assert current()["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:1.36"
    # strategic merge: containers merge by name, so a new one is added next to the old one
    assert (
        run(
            "patch",
            "deployment",
            "web",
            "--type=strategic",
            "-p",
            '{"spec":{"template":{"spec":{"containers":[{"name":"side","image":"alpine"}]}}}}',
        )
        == "deployment.apps/web patched"
    )
    containers = {c["name"]: c["image"] for c in current()["spec"]["template"]["spec"]["containers"]}
    assert containers == {"busybox": "busybox:1.36", "side": "alpine"}
    assert run("label", "deployment", "web", "tier-") == "deployment.apps/web unlabeled"
    assert current()["metadata"]["labels"] == {"app": "web"}
