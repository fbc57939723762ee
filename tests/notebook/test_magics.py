"""The magics as a learner meets them: a real IPython shell, a real embedded cluster.

Cells run through ``shell.run_cell`` as a notebook runs them, so errors go through IPython's
own display (short errors, UsageError) and the checks read what the user would read.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from labkit.config import settings
from tests.conftest import labkit

SERVER = """\
import http.server, os, socket

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"posts from {os.environ.get('HOSTNAME') or socket.gethostname()}\\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

http.server.ThreadingHTTPServer(("", int(os.environ.get("PORT", "8080"))), Hello).serve_forever()
"""

DOCKERFILE = """\
FROM python:3.12-slim
WORKDIR /app
ENV PORT=8080
COPY server.py .
CMD ["python", "server.py"]
"""

APP = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: posts
  labels: {{app: posts}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: posts}}
  template:
    metadata:
      labels: {{app: posts}}
    spec:
      containers:
      - name: posts
        image: {tag}
        ports:
        - containerPort: 8080
        readinessProbe:
          httpGet: {{path: /, port: 8080}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: posts
spec:
  selector:
    app: posts
  ports:
  - port: 80
    targetPort: 8080
"""

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
  - name: main
    image: {tag}
    command: ["sh", "-c", "echo hello from $HOSTNAME; sleep 3600"]
"""


@dataclass
class Ran:
    """What one cell showed: its printed output, its error output, and whether it failed."""

    out: str
    err: str
    failed: bool

    @property
    def text(self) -> str:
        """Everything the user sees, in one string."""
        return self.out + self.err


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """LABKIT_HOME for this module's Lab; its embedded cluster is deleted afterwards."""
    path = tmp_path_factory.mktemp("labkit-magics")
    patch = pytest.MonkeyPatch()
    patch.setenv("LABKIT_HOME", str(path))
    patch.delenv("LABKIT_TARGET", raising=False)
    patch.setenv("JPY_SESSION_NAME", str(path / "workshop.ipynb"))  # as Jupyter tells a kernel
    patch.delenv("LABKIT_SESSION", raising=False)
    yield path
    labkit("cluster", "down", "--name", "labkit", "--delete", home=path, check=False)
    patch.undo()


@pytest.fixture(scope="module")
def shell(home: Path) -> Iterator[InteractiveShell]:
    """A real IPython shell with ``%load_ext labkit`` done."""
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "labkit")
    yield ip
    settings().short_errors = True
    settings().namespace = "default"


def run(shell: InteractiveShell, cell: str) -> Ran:
    """Run a cell as a notebook does; capture what it shows."""
    with capture_output() as captured:
        result = shell.run_cell(textwrap.dedent(cell))
    return Ran(captured.stdout, captured.stderr, not result.success)


def answer(url: str, within: float = 5.0) -> str:
    """The body ``url`` answers with, once its server listens."""
    deadline = time.monotonic() + within
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def no_traceback(ran: Ran) -> None:
    assert "Traceback" not in ran.text and 'File "' not in ran.text, ran.text


@pytest.fixture(scope="module")
def built(shell: InteractiveShell, tmp_path_factory: pytest.TempPathFactory) -> Ran:
    """``%%dockerfile posts:0.0.1`` of a small Python service, built once for the module."""
    context = tmp_path_factory.mktemp("posts")
    (context / "server.py").write_text(SERVER)
    shell.user_ns["posts_dir"] = str(context)
    return run(shell, "%%dockerfile posts:0.0.1 --context {posts_dir}\n" + DOCKERFILE)


def test_lab_shows_the_embedded_cluster(shell: InteractiveShell) -> None:
    ran = run(shell, "%lab")
    assert not ran.failed, ran.text
    assert re.search(r"^target: +embedded$", ran.out, re.M), ran.out
    assert re.search(r"^cluster: +labkit$", ran.out, re.M), ran.out
    assert re.search(r"^nodes: +labkit-control-plane, labkit-worker, labkit-worker2$", ran.out, re.M), ran.out
    assert re.search(r"^namespace: +default$", ran.out, re.M), ran.out
    # how pods are isolated here, as the nodes report it
    assert re.search(r"^runtime: +(bubblewrap|PRoot) \S+ \(.+\)$", ran.out, re.M), ran.out
    assert "widgets:   lab.pods_per_node(), lab.request_distribution(service)" in ran.out, ran.out


def test_the_kernels_lab_draws_pods_per_node_with_a_static_picture(shell: InteractiveShell) -> None:
    ran = run(shell, "import labkit\nw = labkit.connect().pods_per_node()\nb = w._repr_mimebundle_()\n"
                     "print(b['text/plain'], b['image/png'][:8], sorted(w.counts))\nw.close()")  # fmt: skip
    assert not ran.failed, ran.text
    assert "PodsPerNode(namespace='default') iVBORw0K" in ran.out, ran.out
    assert "['labkit-control-plane', 'labkit-worker', 'labkit-worker2']" in ran.out, ran.out


def test_dockerfile_shows_steps_and_a_summary(built: Ran) -> None:
    assert not built.failed, built.text
    assert "[1/5] FROM python:3.12-slim" in built.out
    assert "[4/5] COPY server.py ." in built.out
    summary = built.out.strip().splitlines()[-1]
    assert re.fullmatch(
        r"posts:0\.0\.1 built in \d+\.\d s: 5 steps, [0-4] cached, \d+\.\d (kB|MB)", summary
    ), summary


def test_rebuild_is_all_cached(shell: InteractiveShell, built: Ran) -> None:
    ran = run(shell, "%%dockerfile posts:0.0.1 --context {posts_dir}\n" + DOCKERFILE)
    assert not ran.failed, ran.text
    assert ran.out.count("CACHED") == 5, ran.out
    assert re.search(r"^posts:0\.0\.1 built in \d+\.\d s: 5 steps, all cached, ", ran.out, re.M), ran.out


def test_k8s_applies_expands_and_waits(shell: InteractiveShell, built: Ran) -> None:
    shell.user_ns.update(tag="posts:0.0.1", replicas=2)
    ran = run(shell, "%%k8s\n" + APP)
    assert not ran.failed, ran.text
    lines = ran.out.strip().splitlines()
    assert lines[:2] == ["deployment.apps/posts created", "service/posts created"], ran.out  # as kubectl
    assert 'deployment "posts" successfully rolled out' in ran.out, ran.out  # the wait's progress
    assert 'service "posts" has 2 ready endpoints' in ran.out, ran.out

    again = run(shell, "%%k8s apply\n" + APP)
    assert again.out.strip().splitlines()[:2] == [
        "deployment.apps/posts unchanged",
        "service/posts unchanged",
    ]

    pods = run(shell, "%kubectl get pods -l app=posts")
    assert pods.out.splitlines()[0].split()[:3] == ["NAME", "READY", "STATUS"], pods.out
    rows = [line.split() for line in pods.out.splitlines()[1:]]
    assert len(rows) == 2 and all(r[0].startswith("posts-") and r[1:3] == ["1/1", "Running"] for r in rows)


def test_kubectl_expands_variables(shell: InteractiveShell, built: Ran) -> None:
    shell.user_ns["what"] = "service"
    ran = run(shell, "%kubectl get {what} posts -o name")
    assert ran.out.strip() == "service/posts", ran.text


def test_kubectl_exec_runs_in_a_cell(shell: InteractiveShell, built: Ran) -> None:
    shell.user_ns.update(tag="posts:0.0.1", replicas=2)
    assert not run(shell, "%%k8s\n" + APP).failed
    ran = run(shell, '%kubectl exec deploy/posts -- python -c "print(6 * 7)"')
    assert not ran.failed and ran.out.strip() == "42", ran.text


def test_interactive_kubectl_says_what_to_use_instead(shell: InteractiveShell, built: Ran) -> None:
    for cell, hint in (
        ("%kubectl exec -it deploy/posts -- sh", "lab.exec(pod, command)"),
        ("%kubectl port-forward svc/posts 8080:80", "lab.port_forward("),
        ("%kubectl logs -f deploy/posts", "lab.logs(pod)"),
    ):
        started = time.monotonic()
        ran = run(shell, cell)
        assert ran.failed and hint in ran.text, ran.text
        assert time.monotonic() - started < 5  # refused at once, not after hanging
        assert len(ran.text.strip().splitlines()) <= 2, ran.text  # the message (and a hint), no more
        no_traceback(ran)


def test_lab_exec_and_port_forward_in_python(shell: InteractiveShell, built: Ran) -> None:
    shell.user_ns.update(tag="posts:0.0.1", replicas=2)
    assert not run(shell, "%%k8s\n" + APP).failed
    ran = run(
        shell,
        """
        import urllib.request, labkit
        lab = labkit.connect()
        pod = lab.pods()["name"][0]
        result = lab.exec(pod, ["sh", "-c", "hostname; exit 5"])
        print(result.stdout.strip(), result.exit_code)
        with lab.port_forward("svc/posts", 80) as url:
            bodies = {urllib.request.urlopen(url, timeout=10).read().decode() for _ in range(6)}
        print(len(bodies), sorted(bodies)[0].strip())
        """,
    )
    assert not ran.failed, ran.text
    first, second = ran.out.strip().splitlines()[-2:]
    pod = shell.user_ns["pod"]
    assert first == f"{pod} 5"
    served = second.split()
    assert served[0] == "1", ran.out  # port-forward pins one pod: every request answered by it
    assert served[-1].startswith("posts-")


def test_lab_use_switches_namespace(shell: InteractiveShell) -> None:
    ran = run(shell, "%lab use other")
    assert not ran.failed and ran.out.strip() == "namespace: other", ran.text
    assert re.search(r"^namespace: +other$", run(shell, "%lab").out, re.M)
    run(shell, "%kubectl create configmap only-here --from-literal=a=1")
    assert run(shell, "%kubectl get configmap only-here -o name").out.strip() == "configmap/only-here"
    run(shell, "%lab use default")
    missing = run(shell, "%kubectl get configmap only-here")
    assert missing.failed and 'configmaps "only-here" not found' in missing.text
    no_traceback(missing)


def test_unknown_option_shows_usage_without_traceback(shell: InteractiveShell) -> None:
    ran = run(shell, "%%dockerfile posts:0.0.2 --bogus\nFROM python:3.12-slim\n")
    assert ran.failed
    assert "unrecognized arguments: --bogus" in ran.err
    assert "usage: %%dockerfile [--context DIR]" in ran.err
    no_traceback(ran)
    bad = run(shell, "%%k8s aply\n" + APP)
    assert "argument action: invalid choice: 'aply'" in bad.err and "usage: %%k8s" in bad.err
    no_traceback(bad)


def test_yaml_syntax_error_names_its_line(shell: InteractiveShell) -> None:
    ran = run(shell, "%%k8s\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: {a: 1}\n")
    assert ran.failed
    assert ran.out.startswith("ManifestError: YAML syntax error on line 5"), ran.text
    assert "hint:" in ran.out
    no_traceback(ran)


def test_undefined_variable_is_named(shell: InteractiveShell) -> None:
    ran = run(shell, "%%k8s\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {no_such_name}\n")
    assert ran.failed
    assert "{no_such_name} on line 4" in ran.out, ran.text
    no_traceback(ran)


def test_invalid_manifest_shows_the_fields(shell: InteractiveShell) -> None:
    cell = """\
    %%k8s
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: broken
    spec:
      replicas: -1
      selector:
        matchLabels: {app: broken}
      template:
        metadata:
          labels: {app: other}
        spec:
          containers:
          - name: c
            image: posts:0.0.1
    """
    ran = run(shell, cell)
    assert ran.failed
    assert "spec.replicas" in ran.out and "must be greater than or equal to 0" in ran.out, ran.text
    assert "spec.template.metadata.labels" in ran.out, ran.text
    no_traceback(ran)


def test_missing_image_says_how_to_fix_it(shell: InteractiveShell) -> None:
    ran = run(
        shell, "%%k8s --timeout 5\n" + APP.format(tag="nothere:1.0", replicas=1).replace("posts", "ghost")
    )
    assert ran.failed
    assert "NotReadyError: deployment/ghost was not ready within 5 s" in ran.out, ran.text
    assert re.search(
        r'ghost-\S+ on labkit-\S+: (ErrImagePull|ImagePullBackOff): .*"nothere:1.0" not found', ran.out
    )
    assert "(%%dockerfile / labkit build)" in ran.out, ran.text
    assert "hint: the image is not in the cluster: check the tag, build it" in ran.out, ran.text
    no_traceback(ran)


def test_rollout_timeout_names_the_unready_pods(shell: InteractiveShell, built: Ran) -> None:
    cell = """\
    %%k8s --timeout 3
    apiVersion: v1
    kind: Pod
    metadata:
      name: never-ready
    spec:
      containers:
      - name: c
        image: posts:0.0.1
        readinessProbe:
          httpGet: {path: /, port: 9999}
          periodSeconds: 1
    """
    ran = run(shell, cell)
    assert ran.failed
    assert "NotReadyError: pod/never-ready was not ready within 3 s" in ran.out, ran.text
    assert re.search(r"^  never-ready on labkit-\S+: NotReady: ", ran.out, re.M), ran.text
    assert "last warning: Unhealthy: Readiness probe failed" in ran.out, ran.text
    assert "hint: the readiness probe fails" in ran.out, ran.text
    no_traceback(ran)


def test_short_errors_off_shows_the_traceback(shell: InteractiveShell) -> None:
    run(shell, "%config Lab.short_errors = False")
    try:
        ran = run(shell, "%%k8s\nkind: [\n")
        assert ran.failed
        assert "Traceback" in ran.text and "ManifestError" in ran.text, ran.text
    finally:
        run(shell, "%config Lab.short_errors = True")
    assert "Traceback" not in run(shell, "%%k8s\nkind: [\n").text


def test_config_sets_the_wait_timeout(shell: InteractiveShell) -> None:
    try:
        ran = run(shell, "%config Lab.timeout = 30")
        assert not ran.failed, ran.text
        assert settings().timeout == 30
        run(shell, "%config Lab.timeout = -1")  # refused (IPython logs the reason)
        assert settings().timeout == 30
    finally:
        settings().timeout = 120


def test_dockerfile_run_starts_the_image_once(shell: InteractiveShell, built: Ran) -> None:
    settings().timeout = 15  # a run that never gets ready fails in seconds, not minutes
    try:
        ran = run(shell, "%%dockerfile posts:0.0.1 --context {posts_dir} --run --port 8080\n" + DOCKERFILE)
    finally:
        settings().timeout = 120
    assert not ran.failed, ran.text
    found = re.search(r"^posts:0\.0\.1 is running at (http://\S+)$", ran.out, re.M)
    assert found, ran.out
    assert answer(found.group(1)).startswith("posts from run-posts-0-0-1-")
    shell.magics_manager.registry["LabMagics"].runs.pop("posts:0.0.1").stop()


def test_port_without_run_is_a_usage_error(shell: InteractiveShell) -> None:
    ran = run(shell, "%%dockerfile posts:0.0.1 --port 8080\n" + DOCKERFILE)
    assert ran.failed and "UsageError: --port only applies with --run" in ran.err, ran.text
    no_traceback(ran)


def test_k8s_diff_then_delete(shell: InteractiveShell, built: Ran) -> None:
    shell.user_ns.update(tag="posts:0.0.1", replicas=3)
    diff = run(shell, "%%k8s diff\n" + APP)
    assert not diff.failed, diff.text
    assert "-  replicas: 2" in diff.out and "+  replicas: 3" in diff.out, diff.out
    deleted = run(shell, "%%k8s delete\n" + APP)
    assert deleted.out.strip().splitlines() == ["deployment.apps/posts deleted", "service/posts deleted"]


def test_connect_in_a_cell_is_the_lab_the_magics_use(shell: InteractiveShell, built: Ran) -> None:
    ran = run(
        shell,
        """
        import labkit
        lab = labkit.connect()
        lab.use("team-a")
        print(labkit.connect() is lab)
        """,
    )
    assert not ran.failed and ran.out.strip() == "True", ran.text
    try:
        assert re.search(r"^namespace: +team-a$", run(shell, "%lab").out, re.M)
        pod = POD.format(name="hello-a", tag="posts:0.0.1")
        made = run(shell, "%%k8s\n" + pod)
        assert not made.failed and made.out.splitlines()[0] == "pod/hello-a created", made.text
        where = run(shell, "%kubectl get pod hello-a -n team-a -o jsonpath={.metadata.namespace}")
        assert where.out.strip() == "team-a", where.text  # %%k8s applied where lab.use() pointed
        logs = run(shell, 'print(lab.logs("hello-a").strip())')  # a pod %%k8s made, found by the Lab
        assert not logs.failed and logs.out.strip() == "hello from hello-a", logs.text
        other = run(shell, 'other = labkit.connect(namespace="default"); print(other is lab, lab.namespace)')
        assert other.out.strip() == "True default", other.text  # still one Lab: it switched back
    finally:
        run(shell, "%lab use default")


def test_lab_reset_deletes_what_python_and_the_magics_made(shell: InteractiveShell, built: Ran) -> None:
    run(shell, "%lab reset")
    ran = run(
        shell,
        """
        import labkit
        lab = labkit.connect()
        lab.apply_objects([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "from-python"}}])
        running = lab.run("posts:0.0.1")
        print(running.name)
        """,
    )
    assert not ran.failed, ran.text
    run_pod = ran.out.strip().splitlines()[-1]
    assert not run(shell, "%%k8s\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-magic\n").failed
    labels = run(shell, "%kubectl get configmap from-python --show-labels --no-headers")
    assert "labkit.dev/managed-by=labkit" in labels.out and "labkit.dev/session=" in labels.out, labels.text
    reset = run(shell, "%lab reset")
    deleted = set(reset.out.strip().splitlines())
    expected = {"configmap/from-python deleted", "configmap/from-magic deleted", f"pod/{run_pod} deleted"}
    assert expected <= deleted, reset.out
    left = run(shell, "%kubectl get configmap,pod -l labkit.dev/managed-by=labkit -A -o name")
    assert left.out.strip() in ("", "No resources found"), left.text


def test_a_reset_after_a_kernel_restart_still_finds_what_the_notebook_made(
    shell: InteractiveShell, home: Path
) -> None:
    """Another process of the same notebook session (a kernel before its restart) made an object;
    this kernel's Lab never applied it, and a reset deletes it all the same, by its labels."""
    earlier_kernel = (
        "import labkit; labkit.connect().apply_objects([{'apiVersion': 'v1', 'kind': 'ConfigMap', "
        "'metadata': {'name': 'before-restart'}}])"
    )
    subprocess.run([sys.executable, "-c", earlier_kernel], check=True, timeout=120)
    someone_else = "%kubectl create configmap not-this-notebooks --from-literal=a=1"
    assert not run(shell, someone_else).failed
    try:
        reset = run(shell, "%lab reset")
        assert "configmap/before-restart deleted" in reset.out.splitlines(), reset.text
        assert "not-this-notebooks" not in reset.out  # made by kubectl, not by the Lab: left alone
        gone = run(shell, "%kubectl get configmap before-restart")
        assert gone.failed and "not found" in gone.text, gone.text
    finally:
        run(shell, "%kubectl delete configmap not-this-notebooks")


def test_traffic_reads_as_a_frame_and_shows_a_summary(shell: InteractiveShell, built: Ran) -> None:
    shell.user_ns.update(tag="posts:0.0.1", replicas=2)
    assert not run(shell, "%%k8s\n" + APP).failed
    ran = run(
        shell,
        """
        import labkit
        result = labkit.connect().traffic("posts", 30)
        print(len(result), len(result.head(5)), result["status"].eq(200).sum(), len(result.summary()))
        """,
    )
    assert not ran.failed, ran.text
    assert ran.out.split() == ["30", "5", "30", "2"], ran.text
    shown = run(shell, "result")  # what a notebook shows for the cell's value
    text = re.sub(r"^Out\[\d+\]: ", "", shown.out).strip()
    assert text.startswith("30 requests to service/posts"), text
    assert "share_pct" in text and len(text.splitlines()) < 10, text  # a summary, not 30 samples
    html, _ = shell.display_formatter.format(shell.user_ns["result"])
    assert "<table" in html["text/html"] and html["text/html"].count("<tr>") <= 4, html["text/html"]


def test_lab_reset_deletes_what_the_notebook_made(shell: InteractiveShell) -> None:
    run(shell, "%%k8s\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: leftover\n")
    ran = run(shell, "%lab reset")
    assert not ran.failed, ran.text
    assert "configmap/leftover deleted" in ran.out.splitlines(), ran.out
    assert run(shell, "%lab reset").out.strip() == "nothing to delete: this Lab has applied nothing yet"
