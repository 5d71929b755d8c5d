"""`registry retention plan|run` against a running registry's storage, on the filesystem and
on S3: the plan lists exactly what the run deletes, and the run deletes nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import yaml

from testkit.commands import registry_command
from testkit.oci import digest_of
from testkit.registry import RunningRegistry
from tests.retention.conftest import (
    age_tag,
    operator_config,
    push_image,
    push_index,
    retention,
    retention_json,
    tags_of,
)

LINE = re.compile(
    r"(?P<repository>[^: ]+):(?P<tag>\S+) (?P<digest>sha256:[0-9a-f]{64}) "
    r"pushed (?P<pushed>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ): (?P<reason>.+)"
)


def test_plan_lists_exactly_what_run_deletes(server: RunningRegistry) -> None:
    repo, other = "team/app", "elsewhere/app"
    config = operator_config(
        server,
        [
            {
                "pattern": "team/**",
                "retention": {"keep_last": 3, "keep_patterns": ["latest", "multi"]},
                "immutable_tags": ["v*"],
            }
        ],
    )
    with httpx.Client(base_url=server.url, timeout=60) as c:
        latest = push_image(c, repo, "latest", 9)
        v1 = push_image(c, repo, "v1", 10)  # immutable
        child = push_image(c, repo, "multi-amd64", 11)  # named by the kept index below
        push_index(c, repo, "multi", [child])
        signature = f"sha256-{digest_of(v1).split(':')[1]}.sig"
        push_image(c, repo, signature, 12)  # a digest tag
        # Pushed last, newest last, and their names in the opposite order: sorted the same by
        # push time and by name, so the ties of a coarse clock (S3: seconds) change nothing.
        # keep_last 3 keeps a1, a2, a3 (immutable and digest tags use up no slot).
        names = ["a5", "a4", "a3", "a2", "a1"]
        manifests = {tag: push_image(c, repo, tag, n) for n, tag in enumerate(names)}
        assert c.get(f"/v2/{repo}/manifests/latest").content == latest
        push_image(c, other, "old", 16)  # no retention there
        before = tags_of(c, repo)

        planned = retention_json("plan", config=config)
        assert [t["tag"] for t in planned["tags"]] == ["a4", "a5"]
        assert {t["repository"] for t in planned["tags"]} == {repo}
        for entry in planned["tags"]:
            assert entry["digest"] == digest_of(manifests[entry["tag"]])
            assert entry["reason"] == (
                "not among the 3 most recently pushed; matches no keep pattern"
            )
            assert entry["pulled"] is None and re.fullmatch(r"\d{4}-.*Z", entry["pushed"])
        assert planned["repositories"] == 1 and planned["tags_examined"] == len(before)
        assert tags_of(c, repo) == before  # the plan changed nothing

        ran = retention_json("run", config=config)
        assert ran["deleted"] == planned["tags"] and ran["changed_meanwhile"] == []
        assert tags_of(c, repo) == sorted(set(before) - {"a4", "a5"})
        assert tags_of(c, other) == ["old"]
        for tag in ("a4", "a5"):  # untagged, not deleted: that is garbage collection's
            assert c.get(f"/v2/{repo}/manifests/{tag}").status_code == 404
            assert c.get(f"/v2/{repo}/manifests/{digest_of(manifests[tag])}").status_code == 200
        assert retention_json("plan", config=config)["tags"] == []


def test_plan_and_run_print_one_line_per_tag_and_a_summary(server: RunningRegistry) -> None:
    repo = "text/app"
    config = operator_config(server, [{"pattern": "text/*", "retention": {"keep_last": 1}}])
    with httpx.Client(base_url=server.url, timeout=60) as c:
        for n, tag in enumerate(["c", "b", "a"]):
            push_image(c, repo, tag, 20 + n)
    plan = retention("plan", config=config)
    lines = plan.stdout.splitlines()
    assert [LINE.fullmatch(line)["tag"] for line in lines] == ["b", "c"]  # type: ignore[index]
    assert all(
        LINE.fullmatch(line)["reason"] == "not among the 1 most recently pushed"  # type: ignore[index]
        for line in lines
    )
    assert plan.stderr.splitlines()[-1] == (
        "retention plan: 2 of 3 tags in 1 repositories would be deleted; nothing was changed"
    )
    run = retention("run", config=config)
    assert run.stdout.splitlines() == lines
    assert run.stderr.splitlines()[-1] == (
        "retention: deleted 2 of 3 tags in 1 repositories; their manifests go with garbage"
        " collection"
    )
    assert retention("plan", config=config).stdout == ""


def test_keep_days_and_a_kept_index_on_the_filesystem(server: RunningRegistry) -> None:
    if server.backend.name != "filesystem":
        return  # push times are set through the files' modification times
    repo = "days/app"
    config = operator_config(
        server,
        [{"pattern": "days/**", "retention": {"keep_days": 7, "keep_patterns": ["release"]}}],
    )
    with httpx.Client(base_url=server.url, timeout=60) as c:
        child = push_image(c, repo, "arm64-build", 30)
        push_index(c, repo, "release", [child])
        push_image(c, repo, "fresh", 31)
        push_image(c, repo, "stale", 32)
    for tag, days in (("arm64-build", 30), ("release", 60), ("stale", 12.5)):
        age_tag(server, repo, tag, days)
    planned = retention_json("plan", config=config)
    assert [(t["tag"], t["reason"]) for t in planned["tags"]] == [
        ("stale", "pushed 12 days ago (keep_days 7); matches no keep pattern")
    ]
    assert retention_json("run", config=config)["deleted"] == planned["tags"]


def test_run_refuses_in_read_only_mode(tmp_path: Path) -> None:
    config = tmp_path / "operator.yaml"  # a storage of its own: no server shares the flag
    document = {
        "storage": {"filesystem": {"root": str(tmp_path / "storage")}},
        "namespaces": [{"pattern": "ro/*", "retention": {"keep_last": 1}}],
    }
    config.write_text(yaml.safe_dump(document))
    assert registry_command("maintenance", "on", config=config).returncode == 0
    refused = registry_command("retention", "run", config=config)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("registry: UNSUPPORTED: "), refused.stderr
    assert retention("plan", config=config).returncode == 0  # a plan changes nothing
