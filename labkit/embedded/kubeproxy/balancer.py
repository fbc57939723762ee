"""Choosing one endpoint of a Service port for a connection or a request.

The modes mirror real clusters: ``random`` picks uniformly for each connection (kube-proxy's
iptables mode, and kube-apiserver's service proxy for each request); ``round-robin`` takes the
endpoints in turn (IPVS's ``rr``). ``sessionAffinity: ClientIP`` pins a client address to the
endpoint it got first until it has not been seen for ``timeoutSeconds``. With a seed, each
Service port draws from its own generator seeded with (seed, namespace, name, port), so the
same sequence of picks comes out on every run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

RANDOM = "random"
ROUND_ROBIN = "round-robin"
MODES = (RANDOM, ROUND_ROBIN)
CLIENT_IP = "client-ip"  # what records call a pick made under ClientIP session affinity

PortKey = tuple[str, str, str]  # (namespace, service, port name)


@dataclass(frozen=True)
class Endpoint:
    """One ready endpoint of a Service port: what a real cluster shows (pod IP and target
    port) and where its process really listens (``host``:``real_port``)."""

    ip: str
    port: int
    host: str
    real_port: int
    pod: str | None = None
    node: str | None = None

    @property
    def address(self) -> tuple[str, int]:
        """Where to connect."""
        return self.host, self.real_port


@dataclass(frozen=True)
class Policy:
    """How one Service balances: its mode, its ClientIP affinity timeout (None without
    affinity) and its seed (None for an unseeded generator)."""

    mode: str = RANDOM
    affinity_timeout: float | None = None
    seed: int | None = None


@dataclass
class _PortState:
    rng: random.Random
    seed: int | None
    turn: int = 0
    pinned: dict[str, tuple[Endpoint, float]] = field(default_factory=dict)  # client → (endpoint, expiry)


class Balancer:
    """Picks endpoints; keeps the round-robin turn, the affinity table and the generator of
    each Service port."""

    sweep_every = 1024  # affinity entries past their timeout are dropped after this many new pins

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._ports: dict[PortKey, _PortState] = {}
        self._new_pins = 0

    def pick(
        self,
        key: PortKey,
        endpoints: Sequence[Endpoint],
        client_ip: str,
        policy: Policy,
        mode: str | None = None,
    ) -> tuple[Endpoint | None, str]:
        """One of ``endpoints`` (None if there are none) and the mode that chose it. ``mode``
        overrides the Service's mode and ignores its affinity (the API server's service proxy
        picks at random for each request)."""
        state = self._state(key, policy.seed)
        pinned = mode is None and policy.affinity_timeout is not None
        used = CLIENT_IP if pinned else mode or policy.mode
        if not endpoints:
            return None, used
        if pinned:
            return self._pinned(state, endpoints, client_ip, policy), used
        return self._choose(state, endpoints, used), used

    def forget(self, namespace: str, service: str) -> None:
        """Drop the state of a Service that is gone (its turns, pins and generators)."""
        for key in [k for k in self._ports if k[:2] == (namespace, service)]:
            del self._ports[key]

    def _state(self, key: PortKey, seed: int | None) -> _PortState:
        state = self._ports.get(key)
        if state is None or state.seed != seed:
            rng = random.Random(f"{seed}/{'/'.join(key)}") if seed is not None else random.Random()
            state = self._ports[key] = _PortState(rng, seed)
        return state

    @staticmethod
    def _choose(state: _PortState, endpoints: Sequence[Endpoint], mode: str) -> Endpoint:
        if mode == ROUND_ROBIN:
            endpoint = endpoints[state.turn % len(endpoints)]
            state.turn += 1
            return endpoint
        return endpoints[state.rng.randrange(len(endpoints))]

    def _pinned(
        self, state: _PortState, endpoints: Sequence[Endpoint], client_ip: str, policy: Policy
    ) -> Endpoint:
        assert policy.affinity_timeout is not None
        now = self.clock()
        held = state.pinned.get(client_ip)
        if held is not None and now < held[1] and held[0] in endpoints:
            endpoint = held[0]
        else:
            endpoint = self._choose(state, endpoints, policy.mode)
            self._new_pins += 1
            if self._new_pins % self.sweep_every == 0:
                self._sweep(now)
        state.pinned[client_ip] = (endpoint, now + policy.affinity_timeout)
        return endpoint

    def _sweep(self, now: float) -> None:
        for state in self._ports.values():
            for client, (_, expires) in list(state.pinned.items()):
                if expires <= now:
                    del state.pinned[client]
