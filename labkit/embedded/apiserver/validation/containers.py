"""Containers of a pod spec: names, images, ports, env, mounts, resources, probes and hooks."""

from __future__ import annotations

from typing import Any

from labkit.embedded.apiserver.validation.coerce import Obj, as_dict, as_dicts, as_int
from labkit.embedded.apiserver.validation.errors import Errors
from labkit.embedded.apiserver.validation.names import (
    dns1123_label,
    env_var_name,
    port_name,
    port_number,
    qualified_name,
)
from labkit.embedded.apiserver.validation.ports import PROTOCOLS, validate_port_or_name
from labkit.embedded.apiserver.validation.quantity import Quantity, parse_quantity


def validate_enum(errs: Errors, value: Any, allowed: tuple[str, ...], path: str) -> None:
    """A required enum field: ``Required value`` when empty, ``Unsupported value`` when unknown."""
    if not value:
        errs.required(path)
    elif value not in allowed:
        errs.not_supported(path, value, allowed)


def validate_container(errs: Errors, ctr: Obj, volumes: set[str], names: set[str], path: str) -> None:
    """One container or init container; ``names`` collects container names to find duplicates."""
    name = ctr.get("name")
    if not name:
        errs.required(f"{path}.name")
    else:
        errs.invalid_each(f"{path}.name", name, dns1123_label(str(name)))
    if not ctr.get("image"):
        errs.required(f"{path}.image")
    validate_enum(
        errs,
        ctr.get("terminationMessagePolicy"),
        ("File", "FallbackToLogsOnError"),
        f"{path}.terminationMessagePolicy",
    )
    _container_ports(errs, ctr.get("ports"), f"{path}.ports")
    for i, env in enumerate(as_dicts(ctr.get("env"))):
        if not env.get("name"):
            errs.required(f"{path}.env[{i}].name")
        errs.invalid_each(
            f"{path}.env[{i}].name", env.get("name", ""), env_var_name(str(env.get("name", "")))
        )
    _volume_mounts(errs, ctr.get("volumeMounts"), volumes, f"{path}.volumeMounts")
    validate_enum(
        errs, ctr.get("imagePullPolicy"), ("Always", "IfNotPresent", "Never"), f"{path}.imagePullPolicy"
    )
    _resources(errs, as_dict(ctr.get("resources")), f"{path}.resources")
    if name in names:
        errs.duplicate(f"{path}.name", name)
    elif name:
        names.add(str(name))
    for hook in ("postStart", "preStop"):
        handler = as_dict(ctr.get("lifecycle")).get(hook)
        if handler is not None:
            _handler(
                errs, as_dict(handler), ("exec", "httpGet", "tcpSocket", "sleep"), f"{path}.lifecycle.{hook}"
            )
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if ctr.get(probe) is not None:
            _probe(errs, as_dict(ctr[probe]), probe, f"{path}.{probe}")


def _container_ports(errs: Errors, ports: Any, path: str) -> None:
    seen: set[str] = set()
    for i, port in enumerate(as_dicts(ports)):
        at = f"{path}[{i}]"
        name = port.get("name")
        if name:
            problems = port_name(str(name))
            if problems:
                errs.invalid_each(f"{at}.name", name, problems)
            elif name in seen:
                errs.duplicate(f"{at}.name", name)
            seen.add(str(name))
        number, host = as_int(port.get("containerPort")), as_int(port.get("hostPort"))
        if not number:
            errs.required(f"{at}.containerPort")
        else:
            errs.invalid_each(f"{at}.containerPort", number, port_number(number))
        if host:
            errs.invalid_each(f"{at}.hostPort", host, port_number(host))
        if not port.get("protocol"):
            errs.required(f"{at}.protocol")
        elif port["protocol"] not in PROTOCOLS:
            errs.not_supported(f"{at}.protocol", port["protocol"], PROTOCOLS)


def _volume_mounts(errs: Errors, mounts: Any, volumes: set[str], path: str) -> None:
    paths: set[str] = set()
    for i, mount in enumerate(as_dicts(mounts)):
        name, target = mount.get("name"), mount.get("mountPath")
        if not name:
            errs.required(f"{path}[{i}].name")
        elif name not in volumes:
            errs.not_found(f"{path}[{i}].name", name)
        if not target:
            errs.required(f"{path}[{i}].mountPath")
        elif target in paths:
            errs.invalid(f"{path}[{i}].mountPath", target, "must be unique")
        paths.add(str(target))
        sub = mount.get("subPath")
        if isinstance(sub, str) and sub:
            if sub.startswith("/"):
                errs.invalid(f"{path}[{i}].subPath", sub, "must be a relative path")
            elif ".." in sub.split("/"):
                errs.invalid(f"{path}[{i}].subPath", sub, "must not contain '..'")


def _overcommit(name: str) -> bool:
    """Native resources but hugepages may have requests below limits."""
    native = "/" not in name or "kubernetes.io/" in name
    return native and not name.startswith("hugepages-")


def _resources(errs: Errors, resources: Obj, path: str) -> None:
    limits: dict[str, Quantity] = {}
    for kind in ("limits", "requests"):
        for name, raw in as_dict(resources.get(kind)).items():
            at = f"{path}.{kind}[{name}]"
            _resource_name(errs, name, at)
            try:
                quantity = parse_quantity(raw)
            except ValueError:
                continue  # reported by check_fields at decode time
            if quantity.value < 0:
                errs.invalid(at, str(quantity), "must be greater than or equal to 0")
            if "/" in name and "kubernetes.io/" not in name and quantity.value.denominator != 1:
                errs.invalid(at, str(quantity), "must be an integer")
            if kind == "limits":
                limits[name] = quantity
            elif name in limits:
                _request_within_limit(errs, name, quantity, limits[name], f"{path}.requests")
            elif not _overcommit(name):
                errs.required(f"{path}.limits", "Limit must be set for non overcommitable resources")


def _request_within_limit(errs: Errors, name: str, request: Quantity, limit: Quantity, path: str) -> None:
    if not _overcommit(name) and request.value != limit.value:
        errs.invalid(path, str(request), f"must be equal to {name} limit of {limit}")
    elif request.value > limit.value:
        errs.invalid(path, str(request), f"must be less than or equal to {name} limit of {limit}")


def _resource_name(errs: Errors, name: str, path: str) -> None:
    problems = qualified_name(name)
    errs.invalid_each(path, name, problems)
    standard = name in ("cpu", "memory", "ephemeral-storage") or name.startswith("hugepages-")
    if not problems and "/" not in name and not standard:
        errs.invalid(path, name, "must be a standard resource for containers")


def _probe(errs: Errors, probe: Obj, kind: str, path: str) -> None:
    _handler(errs, probe, ("exec", "httpGet", "tcpSocket", "grpc"), path)
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        errs.nonnegative(f"{path}.{key}", probe.get(key))
    grace = probe.get("terminationGracePeriodSeconds")
    if kind == "readinessProbe" and grace is not None:
        errs.invalid(f"{path}.terminationGracePeriodSeconds", grace, "must not be set for readinessProbes")
    elif isinstance(grace, int) and grace <= 0:
        errs.invalid(f"{path}.terminationGracePeriodSeconds", grace, "must be greater than 0")
    if kind != "readinessProbe" and probe.get("successThreshold", 1) != 1:
        errs.invalid(f"{path}.successThreshold", probe.get("successThreshold"), "must be 1")


def _handler(errs: Errors, handler: Obj, types: tuple[str, ...], path: str) -> None:
    """Exactly one handler type (``validateHandler``), each checked."""
    found = 0
    for kind in types:
        if handler.get(kind) is None:
            continue
        if found:
            errs.forbidden(f"{path}.{kind}", "may not specify more than 1 handler type")
            continue
        found += 1
        action, at = as_dict(handler[kind]), f"{path}.{kind}"
        if kind == "exec" and not action.get("command"):
            errs.required(f"{at}.command")
        elif kind in ("httpGet", "tcpSocket"):
            if kind == "httpGet" and not action.get("path"):
                errs.required(f"{at}.path")
            validate_port_or_name(errs, action.get("port"), f"{at}.port")
            if kind == "httpGet" and action.get("scheme") not in ("HTTP", "HTTPS"):
                errs.not_supported(f"{at}.scheme", action.get("scheme", ""), ("HTTP", "HTTPS"))
        elif kind == "grpc":
            errs.invalid_each(
                f"{at}.port", as_int(action.get("port")), port_number(as_int(action.get("port")))
            )
    if not found:
        errs.required(path, "must specify a handler type")
