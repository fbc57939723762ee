"""Loading YAML bodies as kube-apiserver's YAML-to-JSON step reads them, with bounded work.

Two differences from ``yaml.safe_load``:

* aliases are counted while the document is composed, before any Python object is built: a
  document whose aliases expand to more than :data:`MAX_EXPANDED` values is refused, as the
  Go YAML decoder refuses "excessive aliasing" (a 1 KB "billion laughs" body used to block
  the daemon for a minute);
* timestamps stay strings (``2024-01-01`` is text to Kubernetes, not a date).
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from labkit.embedded.apiserver import shape

MAX_EXPANDED = 300_000  # the same bound as shape.MAX_NODES: values after expanding aliases

_Fast: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class AliasBomb(yaml.YAMLError):
    """Aliases that would expand beyond :data:`MAX_EXPANDED` values."""


def _without_timestamps(loader: type) -> None:
    loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in loader.yaml_implicit_resolvers.items()
    }


class _FastLoader(_Fast):  # type: ignore[misc, valid-type]
    """libyaml's parser when it is there; used for documents without anchors."""


class _CountingLoader(yaml.SafeLoader):
    """The pure-Python composer, counting each node's expanded size as it is composed."""

    def __init__(self, stream: bytes) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}

    def _size(self, node: Node) -> int:
        return self._sizes.get(id(node), 1)

    def _measure(self, node: Node, children: list[Node]) -> Node:
        size = 1 + sum(self._size(child) for child in children)
        if size > MAX_EXPANDED:
            raise AliasBomb(
                f"document contains excessive aliasing: it expands to more than {MAX_EXPANDED} "
                "values; write the repeated parts out, or use fewer aliases"
            )
        self._sizes[id(node)] = size
        return node

    def compose_sequence_node(self, anchor: str | None) -> SequenceNode:
        node = super().compose_sequence_node(anchor)
        return self._measure(node, list(node.value))  # type: ignore[return-value]

    def compose_mapping_node(self, anchor: str | None) -> MappingNode:
        node = super().compose_mapping_node(anchor)
        return self._measure(node, [n for pair in node.value for n in pair])  # type: ignore[return-value]


def _int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """A YAML integer; one too long to be a field stays text (``shape`` refuses it, naming the field)."""
    text = str(loader.construct_scalar(node)).replace("_", "")
    if len(text.lstrip("+-")) > shape.MAX_DIGITS:
        return shape.BigNumber(text)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


for _loader in (_FastLoader, _CountingLoader):
    _without_timestamps(_loader)
    _loader.add_constructor("tag:yaml.org,2002:int", _int)


def load(body: bytes) -> Any:
    """One YAML document (or None when empty); raises ``yaml.YAMLError`` (or :class:`AliasBomb`)."""
    loader = _CountingLoader if b"&" in body else _FastLoader
    return yaml.load(body, Loader=loader)  # both loaders are safe loaders
