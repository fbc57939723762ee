"""Token buckets, as client-go's ``flowcontrol`` rate limiters and the event spam filter use them."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

Clock = Callable[[], float]


class TokenBucket:
    """``qps`` tokens a second, at most ``burst`` saved up; starts full."""

    def __init__(self, qps: float, burst: int, clock: Clock = time.monotonic) -> None:
        self.qps = qps
        self.burst = burst
        self.clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(float(self.burst), self._tokens + max(0.0, now - self._at) * self.qps)
        self._at = now

    def available(self) -> int:
        """Whole tokens that can be taken now."""
        self._refill()
        return int(self._tokens)

    def take(self, count: int = 1) -> bool:
        """Take ``count`` tokens if there are that many."""
        self._refill()
        if self._tokens < count:
            return False
        self._tokens -= count
        return True

    def wait(self) -> float:
        """Seconds until the next whole token."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.qps


class KeyedBuckets:
    """One :class:`TokenBucket` per key, the least recently used dropped beyond ``size`` keys."""

    def __init__(self, qps: float, burst: int, size: int = 4096, clock: Clock = time.monotonic) -> None:
        self.qps, self.burst, self.size, self.clock = qps, burst, size, clock
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def take(self, key: Hashable) -> bool:
        """Take one token of ``key``'s bucket if it has one."""
        bucket = self._buckets.pop(key, None) or TokenBucket(self.qps, self.burst, self.clock)
        self._buckets[key] = bucket
        while len(self._buckets) > self.size:
            self._buckets.popitem(last=False)
        return bucket.take()
