"""The glob patterns operators write for repositories and tags.

Repository patterns (`auth.policy`, `namespaces`): `*` matches within one path component,
`**` across components; everything else is literal. Tag patterns (`immutable_tags`,
`retention.keep_patterns`): `*` matches any run of characters (tags have no components).
Both match the whole name, never a part of it.
"""

from __future__ import annotations

import re

from registry.reference import is_valid_tag

MAX_PATTERN_LENGTH = 512


class PatternError(ValueError):
    pass


def _compiled(glob: str, star: str) -> re.Pattern[str]:
    if not glob:
        raise PatternError("empty pattern")
    if len(glob) > MAX_PATTERN_LENGTH:
        raise PatternError(f"longer than {MAX_PATTERN_LENGTH} characters")
    parts = re.split(r"(\*\*|\*)", glob)
    regex = "".join(
        ".*" if part == "**" else star if part == "*" else re.escape(part) for part in parts
    )
    return re.compile(regex)


def repository_pattern(glob: str) -> re.Pattern[str]:
    """The compiled repository glob (use fullmatch); PatternError when it cannot match any
    repository name."""
    return _compiled(glob, "[^/]*")


def tag_pattern(glob: str) -> re.Pattern[str]:
    """The compiled tag glob (use fullmatch); PatternError when no tag could match it."""
    literal = glob.replace("*", "a")
    if not is_valid_tag(literal) and not is_valid_tag(glob.replace("*", "")):
        raise PatternError(f"{glob!r} cannot match a tag")
    return _compiled(glob, ".*")
