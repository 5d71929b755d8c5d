"""The commented seed of `namespaces:` in config.example.yaml is a valid section as written."""

from __future__ import annotations

from pathlib import Path

from registry.config import load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"


def test_the_commented_namespaces_of_the_example_load_when_uncommented(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    seed = text[text.index("\nnamespaces: []\n") :].splitlines()[2:]
    uncommented = ["namespaces:", *(line.removeprefix("#") for line in seed)]
    config = tmp_path / "seed.yaml"
    config.write_text("\n".join(uncommented) + "\n")
    namespaces = load_config(config).namespaces
    assert [n.pattern for n in namespaces] == [
        "provisioning-test/**",
        "provisioning-platform/**",
        "provisioning-kcl/**",
        "provisioning-extensions/**",
    ]
    test, platform = namespaces[0], namespaces[1]
    assert test.public and test.retention is not None
    assert (test.retention.keep_last, test.retention.keep_days) == (3, 7)
    assert platform.retention is not None and platform.retention.keep_last == 5
    assert platform.immutable_tags == ("v*", "release-*") and not platform.public
