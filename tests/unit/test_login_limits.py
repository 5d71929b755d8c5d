"""The failed-login table: per (address, user), exponential lockout, bounded memory."""

from __future__ import annotations

from registry.auth.login_limits import FailedLogins


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def limits(clock: Clock, **overrides: float) -> FailedLogins:
    settings: dict[str, float] = {
        "free_failures": 3,
        "first_lockout": 1.0,
        "max_lockout": 60.0,
        "forget_after": 600.0,
    }
    return FailedLogins(**(settings | overrides), clock=clock)  # type: ignore[arg-type]


def test_the_first_failures_are_free_then_each_one_doubles_the_lockout_up_to_the_cap() -> None:
    clock = Clock()
    table = limits(clock)
    lockouts = []
    for _ in range(12):
        assert table.retry_after("10.0.0.1", "alice") == 0
        lockouts.append(table.record_failure("10.0.0.1", "alice"))
        clock.now += lockouts[-1]  # wait the lockout out, then fail again
    assert lockouts == [0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]


def test_a_locked_out_user_waits_whole_seconds_rounded_up() -> None:
    clock = Clock()
    table = limits(clock, free_failures=1, first_lockout=4.0)
    table.record_failure("10.0.0.1", "alice")
    assert table.retry_after("10.0.0.1", "alice") == 4
    clock.now += 3.5
    assert table.retry_after("10.0.0.1", "alice") == 1
    clock.now += 0.5
    assert table.retry_after("10.0.0.1", "alice") == 0


def test_other_users_and_other_addresses_are_never_held_back() -> None:
    clock = Clock()
    table = limits(clock)
    for _ in range(10):
        table.record_failure("10.0.0.1", "alice")
    assert table.retry_after("10.0.0.1", "alice") > 0
    assert table.retry_after("10.0.0.1", "bob") == 0
    assert table.retry_after("10.0.0.2", "alice") == 0


def test_a_correct_password_clears_the_count() -> None:
    clock = Clock()
    table = limits(clock)
    table.record_failure("10.0.0.1", "alice")
    table.record_failure("10.0.0.1", "alice")
    table.record_success("10.0.0.1", "alice")
    assert table.record_failure("10.0.0.1", "alice") == 0  # free again
    assert len(table) == 1


def test_the_count_is_forgotten_after_a_quiet_period() -> None:
    clock = Clock()
    table = limits(clock)
    for _ in range(4):
        table.record_failure("10.0.0.1", "alice")  # locked 2 s
    clock.now += 2 + 599
    assert len(table) == 1 and table.retry_after("10.0.0.1", "alice") == 0
    clock.now += 1
    table.retry_after("10.0.0.1", "bob")
    assert len(table) == 0
    assert table.record_failure("10.0.0.1", "alice") == 0


def test_a_spray_of_user_names_stays_within_the_capacity_evicting_the_oldest() -> None:
    clock = Clock()
    table = FailedLogins(capacity=100, free_failures=2, clock=clock)
    for n in range(10_000):
        clock.now += 0.001
        table.record_failure("10.0.0.1", f"user{n}")
    assert len(table) == 100
    assert table.record_failure("10.0.0.1", "user9999") == 1  # still there: its 2nd failure
    assert table.record_failure("10.0.0.1", "user0") == 0  # evicted long ago: its 1st again
    assert len(table) == 100
