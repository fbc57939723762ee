"""``labkit demo``: the workshop's core in a terminal, for a quick look and for smoke tests.

It builds a small Posts service, deploys two replicas behind a Service, prints the pods per
node as a text table, sends 300 requests and prints how they spread, then deletes what it
made (unless ``--keep``). Every step goes through the same Lab API the notebooks use.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from labkit.widgets.node_layout import NodeLayout, layout

APP = '''\
import json, os, socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POD = os.environ.get("HOSTNAME") or socket.gethostname()

class Posts(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"pod": POD, "posts": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("", 4000), Posts).serve_forever()
'''
DOCKERFILE = 'FROM python:3-slim\nWORKDIR /app\nCOPY app.py .\nEXPOSE 4000\nCMD ["python", "app.py"]\n'
MANIFESTS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: demo-posts}
spec:
  replicas: 2
  selector: {matchLabels: {app: demo-posts}}
  template:
    metadata: {labels: {app: demo-posts}}
    spec:
      containers:
        - name: posts
          image: demo-posts:0.0.1
          ports: [{containerPort: 4000}]
          readinessProbe: {tcpSocket: {port: 4000}, periodSeconds: 1}
---
apiVersion: v1
kind: Service
metadata: {name: demo-posts}
spec:
  selector: {app: demo-posts}
  ports: [{port: 4000, targetPort: 4000}]
"""


def node_table(picture: NodeLayout) -> str:
    """Pods per node as text: one line per node with its condition, count and pods."""
    width = max([len("NODE"), *(len(b.name) for b in picture.boxes)])
    lines = [f"{'NODE':<{width}}  {'CONDITION':<10} {'PODS':>4}  NAMES"]
    for box in picture.boxes:
        names = ", ".join(p.name for p in box.pods) or "-"
        lines.append(f"{box.name:<{width}}  {box.condition:<10} {len(box.pods):>4}  {names}")
    if picture.unscheduled:
        names = ", ".join(p.name for p in picture.unscheduled)
        lines.append(f"{'(no node)':<{width}}  {'pending':<10} {len(picture.unscheduled):>4}  {names}")
    return "\n".join(lines)


def _step(text: str) -> float:
    print(f"==> {text}", flush=True)
    return time.monotonic()


def _done(started: float, text: str = "") -> None:
    print(f"    done in {time.monotonic() - started:.1f} s{': ' + text if text else ''}", flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    """``labkit demo``: build, deploy, look, send traffic, clean up."""
    from labkit.kernel import connect
    from labkit.kube import listing

    started = _step(f"connecting to the {args.target} cluster")
    lab = connect(args.target)
    _done(started, f"{len(lab.status().nodes)} nodes, namespace {lab.namespace}")
    started = _step("building demo-posts:0.0.1 (a small Python web service on port 4000)")
    with tempfile.TemporaryDirectory(prefix="labkit-demo-") as context:
        (Path(context) / "app.py").write_text(APP)
        built = lab.build(DOCKERFILE, "demo-posts:0.0.1", context)
    _done(started, f"{built.steps} steps, {built.cache_hits} cached")
    try:
        started = _step("deploying 2 replicas behind Service demo-posts")
        for applied in lab.apply(MANIFESTS):
            print(f"    {applied}", flush=True)
        _done(started)
        nodes, pods = listing.nodes(lab.api, lab.namespace), listing.pods(lab.api, lab.namespace)
        print(f"\npods per node:\n{node_table(layout(nodes, pods))}\n", flush=True)
        started = _step(f"sending {args.requests} requests to service/demo-posts")
        mode = "round-robin" if lab.target == "embedded" else None  # elsewhere: as the cluster balances
        result = lab.traffic("demo-posts", args.requests, mode=mode)
        _done(started)
        print(result)
    finally:
        if not args.keep:
            started = _step("deleting what the demo made")
            lab.reset()
            _done(started)
    return 0


def add_demo_command(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``labkit demo`` in the parser."""
    demo = sub.add_parser(
        "demo",
        help="the workshop's core in a terminal: build, deploy 2 replicas, pods per node, traffic",
        description="Build a small Posts service, deploy 2 replicas behind a Service, print the pods "
        "per node and how 300 requests spread over the replicas, then delete it all (--keep keeps it).",
    )
    demo.add_argument("--target", default="embedded", choices=("embedded", "kind", "kubeconfig"),
                      help="where to run it (default: the embedded cluster)")  # fmt: skip
    demo.add_argument("--requests", type=int, default=300, help="how many requests to send (default 300)")
    demo.add_argument("--keep", action="store_true", help="keep the Deployment and Service afterwards")
    demo.set_defaults(func=cmd_demo)
