"""Semantic versions as releases compare them, and the staged rollout's stable hash."""

from __future__ import annotations

import pytest

from lucky_server.releases.versions import parse_version, rollout_bucket, version_key

# Each row: lower < higher (semver.org, section 11).
ORDER = [
    ("1.9.0", "1.10.0"),
    ("1.0.9", "1.0.10"),
    ("0.9.9", "1.0.0"),
    ("1.0.0-rc.1", "1.0.0"),
    ("1.0.0-alpha", "1.0.0-alpha.1"),
    ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
    ("1.0.0-alpha.beta", "1.0.0-beta"),
    ("1.0.0-beta", "1.0.0-beta.2"),
    ("1.0.0-beta.2", "1.0.0-beta.11"),  # numeric identifiers compare as numbers
    ("1.0.0-beta.11", "1.0.0-rc.1"),
    ("1.0.0-2", "1.0.0-10"),
    ("1.0.0-10", "1.0.0-a"),  # numeric identifiers are below alphanumeric ones
    ("2.0.0-rc.1", "2.0.0"),
    ("1.99.99", "2.0.0-alpha"),
]


@pytest.mark.parametrize("lower, higher", ORDER)
def test_versions_compare_as_semantic_versions(lower: str, higher: str) -> None:
    low, high = parse_version(lower), parse_version(higher)
    assert low is not None and high is not None
    assert low < high and high > low and low != high


def test_the_whole_chain_sorts_in_order() -> None:
    chain = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
             "1.0.0-rc.1", "1.0.0", "1.9.0", "1.10.0"]
    parsed = [parse_version(v) for v in reversed(chain)]
    assert [str(v) for v in sorted(p for p in parsed if p is not None)] == chain


def test_build_metadata_is_ignored() -> None:
    a, b = parse_version("1.2.0+build.1"), parse_version("1.2.0+build.2")
    assert a is not None and b is not None
    assert a == b and not a < b and not b < a
    assert version_key(a) == version_key(b) == "1.2.0"
    assert str(a) == "1.2.0+build.1"  # kept as given


def test_a_leading_v_is_accepted_as_tauri_accepts_it() -> None:
    assert str(parse_version("v1.4.0")) == "1.4.0"


@pytest.mark.parametrize("text", ["", "1", "1.0", "1.0.0.0", "01.0.0", "1.0.0-01", "1.0.0-", "1.0.0+", " 1.0.0",
                                  "1.0.0 ", "latest", "1.0.0\n", "１.0.0", "1." * 100 + "0", "vv1.0.0"])
def test_what_is_not_a_semantic_version(text: str) -> None:
    assert parse_version(text) is None


def test_rollout_buckets_are_stable_and_spread_evenly() -> None:
    assert rollout_bucket(42, "device-a") == rollout_bucket(42, "device-a")
    buckets = [rollout_bucket(42, f"device-{n}") for n in range(10_000)]
    assert all(0 <= b < 100 for b in buckets)
    share = sum(b < 30 for b in buckets) / len(buckets)
    assert 0.27 < share < 0.33
    # another release samples other devices
    other = [rollout_bucket(43, f"device-{n}") for n in range(10_000)]
    assert sum(a == b for a, b in zip(buckets, other)) < 300
