"""Port fields shared by containers, probes and services."""

from __future__ import annotations

from typing import Any

from labkit.embedded.apiserver.validation.coerce import as_int
from labkit.embedded.apiserver.validation.errors import Errors
from labkit.embedded.apiserver.validation.names import port_name, port_number

PROTOCOLS = ("SCTP", "TCP", "UDP")


def validate_port_or_name(errs: Errors, port: Any, path: str) -> None:
    """ValidatePortNumOrName: 1..65535 or an IANA port name."""
    if isinstance(port, str):
        errs.invalid_each(path, port, port_name(port))
    else:
        errs.invalid_each(path, as_int(port), port_number(as_int(port)))
