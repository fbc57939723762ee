"""Name and value rules of k8s.io/apimachinery ``util/validation``, with upstream's messages.

Each rule takes a string and returns the list of problems with it (empty when valid), the
``[]string`` the Go functions return; callers turn each into an ``Invalid value`` cause.
"""

from __future__ import annotations

import re

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + r"(\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(" + _QUALIFIED + ")?"
_CONFIG_KEY = "[-._a-zA-Z0-9]+"


def _full(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + pattern + "$")


_RE = {
    name: _full(p)
    for name, p in {
        "label": _DNS1123_LABEL,
        "subdomain": _DNS1123_SUBDOMAIN,
        "dns1035": _DNS1035_LABEL,
        "qualified": _QUALIFIED,
        "value": _LABEL_VALUE,
        "key": _CONFIG_KEY,
    }.items()
}


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery's RegexError, double spaces included."""
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def dns1123_label(value: str) -> list[str]:
    """IsDNS1123Label: problems with ``value`` as an RFC 1123 label (empty list when valid)."""
    errs = [_max_len(63)] if len(value) > 63 else []
    if not _RE["label"].match(value):
        if _RE["subdomain"].match(value):
            errs.append("must not contain dots")
        else:
            errs.append(
                regex_error(
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                    "and must start and end with an alphanumeric character",
                    _DNS1123_LABEL,
                    "my-name",
                    "123-abc",
                )
            )
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    """IsDNS1123Subdomain: problems with ``value`` as an RFC 1123 subdomain."""
    errs = [_max_len(253)] if len(value) > 253 else []
    if not _RE["subdomain"].match(value):
        errs.append(
            regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                "'-' or '.', and must start and end with an alphanumeric character",
                _DNS1123_SUBDOMAIN,
                "example.com",
            )
        )
    return errs


def dns1035_label(value: str) -> list[str]:
    """IsDNS1035Label: problems with ``value`` as a DNS-1035 label (Service names)."""
    errs = [_max_len(63)] if len(value) > 63 else []
    if not _RE["dns1035"].match(value):
        errs.append(
            regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character",
                _DNS1035_LABEL,
                "my-name",
                "abc-123",
            )
        )
    return errs


_QUALIFIED_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
    "an alphanumeric character"
)


def qualified_name(value: str) -> list[str]:
    """IsQualifiedName: a label or annotation key, ``[prefix/]name``."""
    parts = value.split("/")
    errs: list[str] = []
    if len(parts) > 2:
        return [
            "a qualified name "
            + regex_error(_QUALIFIED_MSG, _QUALIFIED, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + m for m in dns1123_subdomain(prefix)]
    name = parts[-1]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _RE["qualified"].match(name):
        errs.append("name part " + regex_error(_QUALIFIED_MSG, _QUALIFIED, "MyName", "my.name", "123-abc"))
    return errs


def label_value(value: str) -> list[str]:
    """IsValidLabelValue: at most 63 characters of the qualified-name alphabet, or empty."""
    errs = [_max_len(63)] if len(value) > 63 else []
    if not _RE["value"].match(value):
        errs.append(
            regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, "
                "'-', '_' or '.', and must start and end with an alphanumeric character",
                _LABEL_VALUE,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errs


def config_key(value: str) -> list[str]:
    """IsConfigMapKey: a ConfigMap or Secret data key."""
    errs = [_max_len(253)] if len(value) > 253 else []
    if not _RE["key"].match(value):
        errs.append(
            regex_error(
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                _CONFIG_KEY,
                "key.name",
                "KEY_NAME",
                "key-name",
            )
        )
    if value == ".":
        errs.append("must not be '.'")
    elif value == "..":
        errs.append("must not be '..'")
    elif value.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def port_name(value: str) -> list[str]:
    """IsValidPortName: an IANA service name, at most 15 characters, with a letter."""
    errs = [_max_len(15)] if len(value) > 15 else []
    if not re.match(r"^[-a-z0-9]+$", value):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", value):
        errs.append("must contain at least one letter (a-z)")
    if "--" in value:
        errs.append("must not contain consecutive hyphens")
    if value and (value[0] == "-" or value[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def port_number(value: int) -> list[str]:
    """IsValidPortNum: 1..65535."""
    return [] if 1 <= value <= 65535 else ["must be between 1 and 65535, inclusive"]


def env_var_name(value: str) -> list[str]:
    """IsRelaxedEnvVarName (on by default since v1.32): printable ASCII except '='."""
    errs = ["environment variable name must be non-empty"] if not value else []
    if any(ord(c) > 126 or ord(c) < 32 or c == "=" for c in value):
        errs.append(
            "a valid environment variable name must consist only of printable ASCII characters other than '='"
        )
    return errs


def mask_trailing_dash(name: str) -> str:
    """What upstream validates for a generateName prefix ending in '-'."""
    return name[:-2] + "a" if len(name) > 1 and name.endswith("-") else name
