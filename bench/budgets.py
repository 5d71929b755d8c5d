"""The absolute budgets our registry is judged against (not against Distribution's Go binary):
peak and idle memory of its process tree, and cold start."""

from __future__ import annotations

RSS_LIMIT_MIB = 200  # peak while pushing 2 GiB
IDLE_RSS_LIMIT_MIB = 100
COLD_START_LIMIT_SECONDS = 1.5


def verdict(value: float, limit: float) -> str:
    return "within" if value < limit else "**over**"


def budget_note(peak_rss: list[float], idle_rss: list[float], cold_starts: list[float]) -> str:
    peak, idle = max(peak_rss, default=0.0), max(idle_rss, default=0.0)
    start = max(cold_starts, default=0.0)
    return (
        f"- Budgets, ours: peak RSS {peak:.1f} MiB, {verdict(peak, RSS_LIMIT_MIB)} the"
        f" {RSS_LIMIT_MIB} MiB budget; idle RSS at most {idle:.1f} MiB,"
        f" {verdict(idle, IDLE_RSS_LIMIT_MIB)} {IDLE_RSS_LIMIT_MIB} MiB; slowest cold start"
        f" {start:.2f} s, {verdict(start, COLD_START_LIMIT_SECONDS)}"
        f" {COLD_START_LIMIT_SECONDS} s (whole process tree; one server process). Memory and"
        " cold start are judged against these budgets, not against Distribution's Go binary."
    )
