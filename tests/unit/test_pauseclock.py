"""The node controller's clock leaves out the time the daemon was stalled."""

from __future__ import annotations

from labkit.embedded.pauseclock import STALL, TICK, PauseClock


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_ticks_on_time_leave_the_clock_alone() -> None:
    source = FakeTime()
    clock = PauseClock(source)
    for _ in range(40):
        source.t += TICK
        assert clock.now() == source.t
    assert clock.paused == 0.0


def test_a_long_gap_is_taken_out_of_the_clock() -> None:
    source = FakeTime()
    clock = PauseClock(source)
    source.t += TICK
    before = clock.now()
    source.t += 600.0  # ten minutes suspended
    assert clock.now() - before == TICK
    source.t += TICK
    assert clock.now() - before == 2 * TICK


def test_a_gap_shorter_than_a_stall_still_counts() -> None:
    source = FakeTime()
    clock = PauseClock(source)
    source.t += TICK + STALL / 2
    assert clock.now() == source.t
