"""Label and field selectors: what ``-l`` / ``--field-selector`` select, and the errors for bad ones."""

from __future__ import annotations

import pytest

from labkit.embedded.apiserver.field_selectors import field_value, parse_field_selector
from labkit.embedded.apiserver.label_parser import parse_label_selector
from labkit.embedded.apiserver.metav1_selector import label_selector_matches, selector_to_string
from labkit.embedded.apiserver.selector_errors import SelectorError

WEB = {"app": "web", "tier": "frontend", "version": "3"}


# --- label selector text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web", True),
        ("app=db", False),
        ("app!=db", True),
        ("app!=web", False),
        ("missing!=x", True),  # != also holds when the label is absent
        ("tier in (frontend,backend)", True),
        ("tier in (backend)", False),
        ("tier notin (backend)", True),
        ("tier notin (frontend)", False),
        ("missing notin (a)", True),
        ("missing in (a)", False),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("version>2", True),
        ("version<3", False),
        ("app>1", False),  # a non-numeric label never satisfies gt/lt
        ("app=web,tier=frontend", True),
        ("app=web,tier=backend", False),
        ("  app = web ,\ttier in ( frontend , backend ) , !canary ", True),
        ("app=", False),  # '=' with nothing after it means the empty value
        ("example.com/team=x", False),
    ],
)
def test_label_selector_text_selects_like_kubectl_get_l(text: str, expected: bool) -> None:
    assert parse_label_selector(text)(WEB) is expected


def test_empty_values_and_keywords_as_values() -> None:
    assert parse_label_selector("x=")({"x": ""})
    assert parse_label_selector("x in (a,,b)")({"x": ""})
    assert parse_label_selector("x in ()")({"x": ""})
    assert not parse_label_selector("x in (a,b)")({"x": ""})
    # 'in' and 'notin' are ordinary values where a value is expected.
    assert parse_label_selector("mode in (in,notin)")({"mode": "notin"})
    assert parse_label_selector("mode=in")({"mode": "in"})


def test_a_selector_accepts_missing_labels() -> None:
    assert parse_label_selector("!app")(None)  # type: ignore[arg-type]
    assert not parse_label_selector("app")({})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app in (a", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("=x", "found '=', expected: !, identifier, or 'end of string'"),
        ("a!b", "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt"),
        ("app web", "unable to parse requirement: found 'web', expected: in, notin, =, ==, !=, gt, lt"),
        ("app=web,", "found '', expected: identifier after ','"),
        ("app=web,,x", "found ',', expected: identifier after ','"),
        ("app=web tier=x", "found 'tier', expected: ',' or 'end of string'"),
        ("app in web", "unable to parse requirement: found 'web' expected: '('"),
        ("app in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
        ("app in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("!app=web", "found '=', expected: ',' or 'end of string'"),
        ("!=x", "found '!=', expected: !, identifier, or 'end of string'"),
        ("!,x", "unable to parse requirement: found ',', expected: identifier"),
        (
            "version>x",
            "unable to parse requirement: key version: "
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        ("app=a=b", "found '=', expected: ',' or 'end of string'"),
        ("(app)", "found '(', expected: !, identifier, or 'end of string'"),
    ],
)
def test_bad_label_selectors_get_upstreams_parse_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse_label_selector(text)
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("-app=web", 'invalid label key "-app": name part must consist of alphanumeric characters'),
        (
            "Example.com/app=web",
            'invalid label key "Example.com/app": prefix part must be a lowercase RFC 1123',
        ),
        ("a/b/c=x", 'invalid label key "a/b/c": a qualified name must consist of'),
        ("/app=x", 'invalid label key "/app": prefix part must be non-empty'),
        ("app=web!", "found '!', expected: ',' or 'end of string'"),
        ("app=-web", 'invalid label value "-web" for key "app": a label value must be empty or consist of'),
        ("app=" + "v" * 64, 'for key "app": must be no more than 63 characters'),
        ("k" * 64 + "=v", "name part must be no more than 63 characters"),
    ],
)
def test_invalid_label_keys_and_values_name_the_culprit(text: str, fragment: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse_label_selector(text)
    assert fragment in str(err.value)


def test_selector_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="expected"):
        parse_label_selector("app in (a")


# --- structured metav1.LabelSelector --------------------------------------------------------------


DEPLOY_SELECTOR = {
    "matchLabels": {"app": "web"},
    "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["frontend", "edge"]},
        {"key": "canary", "operator": "DoesNotExist"},
        {"key": "version", "operator": "Exists"},
        {"key": "zone", "operator": "NotIn", "values": ["b"]},
    ],
}


def test_label_selector_matches_all_terms() -> None:
    assert label_selector_matches(DEPLOY_SELECTOR, WEB)
    assert not label_selector_matches(DEPLOY_SELECTOR, {**WEB, "canary": "1"})
    assert not label_selector_matches(DEPLOY_SELECTOR, {**WEB, "tier": "backend"})
    assert not label_selector_matches(DEPLOY_SELECTOR, {"app": "web", "tier": "frontend"})
    assert not label_selector_matches(DEPLOY_SELECTOR, {**WEB, "zone": "b"})
    assert not label_selector_matches({"matchLabels": {"app": "web"}}, None)


def test_none_selector_matches_nothing_and_empty_selector_everything() -> None:
    assert not label_selector_matches(None, WEB)
    assert label_selector_matches({}, WEB)
    assert label_selector_matches({"matchLabels": {}, "matchExpressions": []}, {})
    assert label_selector_matches({"matchLabels": None}, None)


@pytest.mark.parametrize(
    ("selector", "fragment"),
    [
        ({"app": "web"}, 'unknown field "app" in label selector'),
        (
            {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
            '"Equals" is not a valid',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]},
            "matchExpressions[0].operator",
        ),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}, "values set can't be empty"),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            "must be empty for exists",
        ),
        ({"matchLabels": {"bad key": "x"}}, 'invalid label key "bad key"'),
        ({"matchLabels": {"app": "no spaces"}}, 'invalid label value "no spaces"'),
    ],
)
def test_invalid_structured_selectors_raise(selector: dict, fragment: str) -> None:
    with pytest.raises(SelectorError) as err:
        label_selector_matches(selector, WEB)
    assert fragment in str(err.value)
    with pytest.raises(SelectorError):
        selector_to_string(selector)


def test_selector_to_string_is_sorted_by_key_with_sorted_values() -> None:
    assert selector_to_string(DEPLOY_SELECTOR) == (
        "app=web,!canary,tier in (edge,frontend),version,zone notin (b)"
    )
    assert selector_to_string({"matchLabels": {"pod-template-hash": "7c5d", "app": "web"}}) == (
        "app=web,pod-template-hash=7c5d"
    )
    assert selector_to_string(None) == ""
    assert selector_to_string({}) == ""


def test_selector_string_round_trips_through_the_parser() -> None:
    text = selector_to_string(DEPLOY_SELECTOR)
    for labels in (WEB, {**WEB, "canary": "1"}, {"app": "web"}):
        assert parse_label_selector(text)(labels) == label_selector_matches(DEPLOY_SELECTOR, labels)


# --- field selectors ------------------------------------------------------------------------------


POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "node-1", "restartPolicy": "Always", "hostNetwork": True},
    "status": {"phase": "Running", "podIP": "10.0.0.5"},
}
NODE = {"metadata": {"name": "node-1"}, "spec": {}}
EVENT = {
    "metadata": {"name": "web-1.17f", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "uid": "u-1"},
    "type": "Warning",
    "reason": "BackOff",
    "count": 3,
    "source": {"component": "kubelet"},
}


@pytest.mark.parametrize(
    ("text", "obj", "expected"),
    [
        ("", POD, True),
        ("metadata.name=web-1", POD, True),
        ("metadata.name==web-1", POD, True),
        ("metadata.name=web-2", POD, False),
        ("metadata.name!=web-2", POD, True),
        ("spec.nodeName=node-1,status.phase!=Succeeded,status.phase!=Failed", POD, True),
        ("spec.nodeName=node-1,status.phase!=Running", POD, False),
        ("spec.nodeName=", {"spec": {}}, True),  # a missing field compares as ""
        ("spec.hostNetwork=true", POD, True),
        ("spec.hostNetwork=false", {"spec": {}}, True),
        ("spec.unschedulable=false", NODE, True),
        ("spec.unschedulable=true", {"spec": {"unschedulable": True}}, True),
        ("metadata.namespace=", NODE, True),
        (
            "involvedObject.name=web-1,involvedObject.namespace=default,involvedObject.uid=u-1,"
            "involvedObject.kind=Pod",
            EVENT,
            True,
        ),
        ("involvedObject.uid=other", EVENT, False),
        ("type=Warning,reason=BackOff", EVENT, True),
        ("count=3", EVENT, True),
        ("source=kubelet", EVENT, True),
        ("source=scheduler", {"reportingComponent": "scheduler"}, True),
        ("metadata.name=a\\,b", {"metadata": {"name": "a,b"}}, True),
        ("metadata.name=a\\=b\\\\c", {"metadata": {"name": "a=b\\c"}}, True),
        ("metadata.name=!x", {"metadata": {"name": "!x"}}, True),  # the leftmost operator splits
        (" metadata.name =web-1", POD, True),  # whitespace is trimmed from the path...
        ("metadata.name= web-1", POD, False),  # ...but a value is compared exactly
    ],
)
def test_field_selector_selects_like_kubectl(text: str, obj: dict, expected: bool) -> None:
    assert parse_field_selector(text)(obj) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        (
            "status.phase=Running,dirty",
            "invalid selector: 'status.phase=Running,dirty'; can't understand 'dirty'",
        ),
        ("metadata.name=a=b", "invalid field selector: unescaped character in value: ="),
        ("metadata.name!==x", "invalid field selector: unescaped character in value: ="),
        ("metadata.name=a\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
        ("=x", "field label not supported: \"\" (in '=x')"),
    ],
)
def test_bad_field_selectors_raise_with_upstreams_message(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse_field_selector(text)
    assert str(err.value) == message


def test_field_value_formats_scalars_and_defaults() -> None:
    assert field_value(POD, "spec.hostNetwork") == "true"
    assert field_value(EVENT, "count") == "3"
    assert field_value(POD, "status.nothing.deeper") == ""
    assert field_value(POD, "metadata") == ""  # objects are not comparable values
    assert field_value(NODE, "spec.unschedulable") == "false"
