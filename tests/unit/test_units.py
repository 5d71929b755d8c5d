"""Durations and sizes as operators write them."""

from __future__ import annotations

import pytest

from registry.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("24h", 86400),
        ("1h30m", 5400),
        ("1h0m10s", 3610),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        (".5m", 30),
        ("0", 0),
        ("300", 300),
        ("2.5", 2.5),
        (45, 45),
        (1.25, 1.25),
    ],
)
def test_durations_are_go_style_or_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "7d", "1h 30m", "m", "10M", "-5s", "1h-5m", True, "x1s"])
def test_malformed_durations_are_refused(text: str | bool) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512KiB", 512 << 10),
        ("16MiB", 16 << 20),
        ("50GiB", 50 << 30),
        ("1TiB", 1 << 40),
        ("1.5MiB", 3 << 19),
        ("100B", 100),
        ("4096", 4096),
        (5242880, 5242880),
    ],
)
def test_sizes_are_iec_units_or_bytes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "5MB", "5 mib", "1.5B", "-1", "MiB", "1e6", False])
def test_malformed_sizes_are_refused(text: str | bool) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(604800, "168h"), (5400, "1h30m"), (300, "5m"), (0, "0s"), (1.5, "1.5s")]
)
def test_durations_are_printed_as_they_are_written(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text and parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("size", "text"), [(16 << 20, "16MiB"), (1536 << 10, "1536KiB"), (100, "100")]
)
def test_sizes_are_printed_in_the_largest_exact_unit(size: int, text: str) -> None:
    assert format_size(size) == text and parse_size(text) == size
