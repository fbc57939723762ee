"""Service discovery by name with a real daemon: pod A calls ``http://b-srv:8080/`` through the
proxy environment the kubelet gives it, and answers with what B said; the API server's service
proxy reaches A with every kubectl; the traffic records name the pods that served."""

from __future__ import annotations

import json
import textwrap
from typing import Any

from tests.cluster.pods_support import Kube, wait_until
from tests.conftest import KUBECTLS

# A tiny HTTP app: answers JSON on $PORT; with CALL set, it first calls that URL and adds the answer.
APP = textwrap.dedent(
    """
    import http.server, json, os, urllib.request

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            answer = {"pod": os.environ["HOSTNAME"], "b_host": os.environ.get("B_SRV_SERVICE_HOST"),
                      "b_port": os.environ.get("B_SRV_SERVICE_PORT"), "proxy": os.environ.get("HTTP_PROXY")}
            status = 200
            if os.environ.get("CALL"):
                try:
                    answer["called"] = json.load(urllib.request.urlopen(os.environ["CALL"], timeout=5))
                except Exception as e:
                    status, answer["error"] = 502, repr(e)
            body = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
    """
)


def app(name: str, replicas: int, **env: str) -> list[dict[str, Any]]:
    """A Deployment of the app (the stock python image) and Service ``<name>-srv``:8080."""
    labels = {"app": name}
    container = {
        "name": "app",
        "image": "python:3.12",
        "command": ["python3", "-c", APP],
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [{"name": k, "value": v} for k, v in env.items()],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [container]},
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{name}-srv"},
        "spec": {"selector": labels, "ports": [{"port": 8080, "targetPort": "http"}]},
    }
    return [deployment, service]


def ready_addresses(kube: Kube, service: str, count: int) -> list[str]:
    """Wait until the Service's Endpoints list ``count`` ready pods; their names."""
    endpoints = wait_until(
        f"{count} ready endpoints of {service}",
        lambda: kube.get(f"endpoints/{service}"),
        lambda ep: sum(len(s.get("addresses") or []) for s in ep.get("subsets") or []) == count,
        timeout=20,
    )
    return sorted(a["targetRef"]["name"] for s in endpoints["subsets"] for a in s["addresses"])


def test_pod_calls_a_service_by_name_and_the_api_proxy_reaches_it(kube: Kube) -> None:
    kube.apply(*app("b", 2))
    b_pods = ready_addresses(kube, "b-srv", 2)
    kube.apply(*app("a", 1, CALL="http://b-srv:8080/"))  # created after b-srv: it gets B_SRV_* too
    ready_addresses(kube, "a-srv", 1)
    b_ip = kube.get("services/b-srv")["spec"]["clusterIP"]
    path = f"/api/v1/namespaces/{kube.namespace}/services/a-srv:8080/proxy/"
    for version, binary in sorted(KUBECTLS.items()):
        run = Kube(binary, kube.cluster, kube.namespace)
        result = wait_until(
            f"kubectl ({version}) get --raw {path}",
            lambda run=run: run("get", "--raw", path, check=False),  # type: ignore[misc]
            lambda r: r.returncode == 0,
            timeout=20,
        )
        answer = json.loads(result.stdout)
        assert answer["called"]["pod"] in b_pods, answer
        assert (answer["b_host"], answer["b_port"]) == (b_ip, "8080")
        assert answer["proxy"] is None  # the name resolves as with cluster DNS: no proxy needed
        direct = json.loads(
            run("get", "--raw", f"/api/v1/namespaces/{kube.namespace}/services/b-srv/proxy/x").stdout
        )
        assert direct["pod"] in b_pods

    records = "/apis/traffic.labkit.dev/v1/namespaces/{}/services/{}/records"
    b_items = kube.get(records.format(kube.namespace, "b-srv"))["items"]
    by_name = [r for r in b_items if r["via"] == "clusterip" and r["bytes_out"] > 0]  # a's calls (TCP)
    assert by_name and {r["pod"] for r in by_name} <= set(b_pods)
    assert any(r["via"] == "apiserver-proxy" for r in b_items)
    a_items = kube.get(records.format(kube.namespace, "a-srv"))["items"]
    assert a_items and all(r["via"] == "apiserver-proxy" for r in a_items)
    assert {r["pod"] for r in a_items} == set(ready_addresses(kube, "a-srv", 1))
