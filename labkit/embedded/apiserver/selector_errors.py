"""The error of every selector: :class:`SelectorError`.

Every syntax or validation problem of a label selector, a field selector or a
``metav1.LabelSelector`` raises it; its text is what the API server puts in the 400 BadRequest,
so kubectl prints the message a real cluster would.
"""

from __future__ import annotations


class SelectorError(ValueError):
    """A selector that cannot be parsed or is not valid."""
