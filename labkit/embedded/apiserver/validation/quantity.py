"""Resource quantities (``100m``, ``1Gi``): parsing as the API server's decoder does, and printing."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from fractions import Fraction

QUANTITY_FORMAT_ERROR = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {e: s for s, e in _DECIMAL.items()}


@dataclass(frozen=True)
class Quantity:
    """A resource quantity (``100m``, ``1Gi``, ``0.5``, ``1e3``): exact value plus its format."""

    value: Fraction
    format: str  # "DecimalSI", "BinarySI" or "DecimalExponent"

    def __str__(self) -> str:
        """The canonical form upstream prints (``1536Mi`` for ``1.5Gi``, ``500m`` for ``0.5``)."""
        if self.value == 0:
            return "0"
        if self.format == "BinarySI" and abs(self.value) >= 1024 and self.value.denominator == 1:
            number, power = int(self.value), 0
            while power < 6 and number % 1024 == 0:
                number //= 1024
                power += 1
            return f"{number}{['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'][power]}"
        nanos = -((-abs(self.value) * 10**9) // 1)  # upstream rounds up to nano units
        exponent = -9
        while nanos % 1000 == 0 and exponent < 18:
            nanos //= 1000
            exponent += 3
        sign = "-" if self.value < 0 else ""
        if self.format == "DecimalExponent":
            return f"{sign}{nanos}" + (f"e{exponent}" if exponent else "")
        return f"{sign}{nanos}{_DECIMAL_SUFFIX[exponent]}"


def parse_quantity(text: str | float) -> Quantity:
    """Parse a quantity as the API server's decoder does; ValueError carries upstream's message."""
    raw = str(text).strip() if isinstance(text, str) else json.dumps(text)
    match = _QUANTITY.match(raw)
    if not match or not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", match.group(1)):
        raise ValueError(QUANTITY_FORMAT_ERROR)
    number, suffix = Fraction(match.group(1)), match.group(2)
    if suffix in _BINARY:
        return Quantity(number * 2 ** _BINARY[suffix], "BinarySI")
    if suffix in _DECIMAL:
        return Quantity(number * Fraction(10) ** _DECIMAL[suffix], "DecimalSI")
    exp = re.fullmatch(r"[eE]([-+]?\d+)", suffix)
    if exp:
        return Quantity(number * Fraction(10) ** int(exp.group(1)), "DecimalExponent")
    raise ValueError("unable to parse quantity's suffix")
