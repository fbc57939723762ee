"""The Lab side's pure parts: manifest parsing and its errors, apply actions, rollout wording,
pod problems, target choice and configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from traitlets import TraitError
from traitlets.config import Config

from labkit.clusters.detect import configured_target, detect
from labkit.clusters.kind import is_latest
from labkit.clusters.kubeconfig import registry_of
from labkit.config import LabConfig, settings
from labkit.errors import ManifestError, TargetError, UsageError
from labkit.kube.apply import Manifest, action_of, invalid_message, parse_manifests
from labkit.kube.wait import parse_target, pod_problem, rollout_status

TWO_DOCS = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: one
---
# a comment
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
"""


def test_documents_are_parsed_with_their_starting_lines() -> None:
    found = parse_manifests(TWO_DOCS)
    assert [(m.kind, m.name, m.document, m.line) for m in found] == [
        ("ConfigMap", "one", 1, 1),
        ("Deployment", "web", 3, 8),
    ]


def test_a_list_is_expanded() -> None:
    pod = '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}}'
    text = '{"apiVersion": "v1", "kind": "List", "items": [' + pod + "]}"
    assert [m.name for m in parse_manifests(text)] == ["a"]


def test_a_yaml_syntax_error_names_its_line() -> None:
    text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n   labels: {a: b}\n"
    with pytest.raises(ManifestError) as err:
        parse_manifests(text)
    assert err.value.line == 5
    assert str(err.value).startswith("YAML syntax error on line 5, column")
    assert "indentation" in err.value.hint


def test_a_tab_is_a_syntax_error_with_its_line() -> None:
    with pytest.raises(ManifestError, match="line 3") as err:
        parse_manifests("apiVersion: v1\nkind: Pod\n\tmetadata: {}\n")
    assert err.value.line == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Pod\nmetadata: {name: a}\n", "Pod in document 1, line 1 has no apiVersion"),
        ("apiVersion: v1\nkind: Pod\n", "Pod in document 1, line 1 has no metadata.name"),
        ("apiVersion: v1\nmetadata: {name: a}\n", "the object in document 1, line 1 has no kind"),
        ("---\n- a\n- b\n", "document 1 (line 2) is not an object but list"),
        ("# nothing\n", "the manifest has no objects"),
    ],
)
def test_documents_that_are_not_objects_are_named(text: str, message: str) -> None:
    with pytest.raises(ManifestError) as err:
        parse_manifests(text)
    assert err.value.message.startswith(message), err.value.message


@pytest.mark.parametrize(
    ("before", "after", "action"),
    [(None, "7", "created"), ("7", "7", "unchanged"), ("7", "9", "configured")],
)
def test_the_action_is_what_kubectl_prints(before: str | None, after: str, action: str) -> None:
    assert action_of(before, after) == action


def test_an_invalid_status_lists_the_fields() -> None:
    manifest = Manifest({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}, 2, 9)
    status = {
        "kind": "Status",
        "reason": "Invalid",
        "message": 'Deployment.apps "web" is invalid: ...',
        "details": {
            "causes": [
                {
                    "field": "spec.replicas",
                    "message": "Invalid value: -1: must be greater than or equal to 0",
                },
                {"field": "spec.template.spec.containers[0].image", "message": "Required value"},
            ]
        },
    }
    err = invalid_message(status, manifest)
    assert err.message == (
        'Deployment "web" is invalid (document 2, line 9):\n'
        "  spec.replicas: Invalid value: -1: must be greater than or equal to 0\n"
        "  spec.template.spec.containers[0].image: Required value"
    )
    assert err.line == 9


def _deployment(generation: int = 1, **status: int) -> dict:
    return {
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 1, **status},
    }


@pytest.mark.parametrize(
    ("dep", "done", "message"),
    [
        (_deployment(generation=2), False, "Waiting for deployment spec update to be observed..."),
        (
            _deployment(updatedReplicas=1, replicas=1),
            False,
            'Waiting for deployment "web" rollout to finish: 1 out of 2 new replicas have been updated...',
        ),
        (
            _deployment(updatedReplicas=2, replicas=3, availableReplicas=2),
            False,
            'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...',
        ),
        (
            _deployment(updatedReplicas=2, replicas=2, availableReplicas=1),
            False,
            'Waiting for deployment "web" rollout to finish: 1 of 2 updated replicas are available...',
        ),
        (
            _deployment(updatedReplicas=2, replicas=2, availableReplicas=2),
            True,
            'deployment "web" successfully rolled out',
        ),
    ],
)
def test_rollout_status_reads_as_kubectl(dep: dict, done: bool, message: str) -> None:
    assert rollout_status(dep) == (done, message)


def test_a_pods_problem_is_its_waiting_reason_or_why_it_is_unscheduled() -> None:
    waiting = {
        "status": {"containerStatuses": [{"state": {"waiting": {"reason": "ErrImagePull", "message": "no"}}}]}
    }
    assert pod_problem(waiting) == ("ErrImagePull", "no")
    condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}
    unscheduled = {"status": {"phase": "Pending", "conditions": [condition]}}
    assert pod_problem(unscheduled) == ("Unschedulable", "0/3 nodes")
    assert pod_problem({"status": {"phase": "Running"}})[0] == "NotReady"


def test_wait_targets_are_kind_slash_name() -> None:
    assert parse_target("deploy/web") == ("Deployment", "web")
    assert parse_target("svc/web") == ("Service", "web")
    with pytest.raises(UsageError, match="cannot wait for 'web'"):
        parse_target("web")
    with pytest.raises(UsageError):
        parse_target("configmap/x")


@pytest.mark.parametrize(
    ("tag", "latest"),
    [("posts", True), ("posts:latest", True), ("posts:1.0", False), ("localhost:5000/posts", True),
     ("localhost:5000/posts:2", False), ("posts@sha256:" + "a" * 64, False)],
)  # fmt: skip
def test_latest_is_said_or_implied(tag: str, latest: bool) -> None:
    assert is_latest(tag) is latest


@pytest.mark.parametrize(
    ("tag", "registry"),
    [("posts:1.0", None), ("me/posts:1.0", None), ("ghcr.io/me/posts:1", "ghcr.io"),
     ("localhost:5000/posts", "localhost:5000"), ("localhost/posts", "localhost")],
)  # fmt: skip
def test_the_registry_of_a_tag(tag: str, registry: str | None) -> None:
    assert registry_of(tag) == registry


def test_config_lines_named_lab_configure_the_settings() -> None:
    config = LabConfig()
    assert LabConfig.__name__ == "Lab"  # so that `%config Lab.timeout = 30` matches it
    config.update_config(Config({"Lab": {"timeout": 30.0, "namespace": "demo", "balancing": "round-robin"}}))
    assert (config.timeout, config.namespace, config.balancing) == (30.0, "demo", "round-robin")
    with pytest.raises(TraitError, match="more than 0 seconds"):
        config.timeout = 0
    with pytest.raises(TraitError):
        config.balancing = "fastest"


def test_auto_means_the_configured_target_else_the_environment_else_embedded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LABKIT_TARGET", raising=False)
    monkeypatch.setattr(settings(), "target", "auto")
    assert configured_target() == "embedded"
    monkeypatch.setenv("LABKIT_TARGET", "kind")
    assert configured_target() == "kind"
    assert detect("auto").name == "kind"
    monkeypatch.setattr(settings(), "target", "kubeconfig")
    assert configured_target() == "kubeconfig"
    monkeypatch.setattr(settings(), "target", "auto")
    monkeypatch.setenv("LABKIT_TARGET", "minikube")
    with pytest.raises(UsageError, match="LABKIT_TARGET='minikube' is not a target"):
        configured_target()
    with pytest.raises(UsageError, match="unknown target 'docker'"):
        detect("docker")


KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: c1, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u1, user: {token: t}}]
contexts:
- {name: one, context: {cluster: c1, user: u1, namespace: dev}}
- {name: two, context: {cluster: c1, user: u1}}
"""


def test_a_kubeconfig_context_is_read_with_the_official_loader(tmp_path: Path) -> None:
    from labkit.clusters.kubeconfig import KubeconfigBackend

    path = tmp_path / "config"
    path.write_text(KUBECONFIG + "current-context: two\n")
    info = KubeconfigBackend(kubeconfig=path).describe()
    assert (info.cluster, info.context, info.kubeconfig) == ("c1", "two", path)
    assert KubeconfigBackend("one", kubeconfig=path).describe().context == "one"


@pytest.mark.parametrize(
    ("text", "context", "error", "words"),
    [
        (None, None, "TargetError", "no kubeconfig at"),
        ("clusters: [\n", None, "TargetError", "is not valid YAML"),
        ("", None, "TargetError", "cannot read the kubeconfig"),
        (KUBECONFIG, None, "UsageError", "has no current context"),
        (KUBECONFIG + "current-context: two\n", "three", "UsageError", 'has no context "three"'),
    ],
)
def test_a_bad_kubeconfig_says_what_is_wrong(
    tmp_path: Path, text: str | None, context: str | None, error: str, words: str
) -> None:
    from labkit.clusters.kubeconfig import KubeconfigBackend

    path = tmp_path / "config"
    if text is not None:
        path.write_text(text)
    with pytest.raises(UsageError if error == "UsageError" else TargetError) as err:
        KubeconfigBackend(context, kubeconfig=path).ensure_running()
    assert words in str(err.value) and str(path) in str(err.value)
    if error == "UsageError":
        assert "one, two" in (err.value.hint or "")
