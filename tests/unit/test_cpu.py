"""CPU count: cgroup v1/v2 quotas, affinity and the PYTHON_CPU_COUNT override."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Optional

import pytest

import parmap._cpu
from parmap._cpu import (
    CPU_COUNT_ENV,
    available_cpus,
    cgroup_cpu_limit,
    parse_cfs_quota,
    parse_cpu_max,
)

# --- parse_cpu_max -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("200000 100000", 200000 / 100000),
        ("200000 100000\n", 200000 / 100000),
        ("150000 100000", 150000 / 100000),
        ("50000 100000", 50000 / 100000),
        ("100000 50000", 100000 / 50000),
        ("max 100000", None),
        ("max 100000\n", None),
        ("", None),
        (None, None),
        ("200000", None),
        ("200000 100000 5", None),
        ("0 100000", None),
        ("-1 100000", None),
        ("200000 0", None),
        ("abc 100000", None),
        ("200000 xyz", None),
    ],
)
def test_parse_cpu_max_reads_quota_over_period(
    text: Optional[str], expected: Optional[float]
) -> None:
    """cpu.max "QUOTA PERIOD" gives QUOTA/PERIOD CPUs; "max", malformed or empty gives None."""
    assert parse_cpu_max(text) == expected


# --- parse_cfs_quota -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("quota", "period", "expected"),
    [
        ("200000", "100000", 200000 / 100000),
        ("200000\n", "100000\n", 200000 / 100000),
        ("50000", "100000", 50000 / 100000),
        ("-1", "100000", None),
        ("-1\n", "100000\n", None),
        ("0", "100000", None),
        ("200000", "0", None),
        (None, "100000", None),
        ("200000", None, None),
        (None, None, None),
        ("", "100000", None),
        ("abc", "100000", None),
    ],
)
def test_parse_cfs_quota_reads_v1_quota_and_period(
    quota: Optional[str], period: Optional[str], expected: Optional[float]
) -> None:
    """cfs_quota_us / cfs_period_us gives CPUs; -1, zero, missing or malformed gives None."""
    assert parse_cfs_quota(quota, period) == expected


# --- fake cgroup trees ---------------------------------------------------------------


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _v2_tree(tmp_path: Path, group: str, limits: dict[str, str]) -> tuple[Path, Path]:
    """A cgroup v2 root with ``cpu.max`` files; *limits* maps a group path to its text."""
    root = tmp_path / "cgroup"
    root.mkdir()
    for path, text in limits.items():
        _write(root / path.lstrip("/") / "cpu.max", text)
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(f"0::{group}\n")
    return root, proc


def _v1_files(directory: Path, quota: str, period: str = "100000") -> None:
    _write(directory / "cpu.cfs_quota_us", f"{quota}\n")
    _write(directory / "cpu.cfs_period_us", f"{period}\n")


def _v1_membership(tmp_path: Path, group: str, controllers: str = "cpu,cpuacct") -> Path:
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(
        f"12:memory:{group}\n4:{controllers}:{group}\n2:pids:{group}\n1:name=systemd:{group}\n"
    )
    return proc


def test_v2_limit_of_the_process_group(tmp_path: Path) -> None:
    """The cpu.max of the process's own v2 group is the limit."""
    root, proc = _v2_tree(tmp_path, "/app.slice/job", {"/app.slice/job": "250000 100000\n"})
    assert cgroup_cpu_limit(root, proc) == 250000 / 100000


def test_v2_parent_tighter_than_child_wins(tmp_path: Path) -> None:
    """A parent group with a smaller quota than the child's limits the process."""
    root, proc = _v2_tree(
        tmp_path,
        "/app.slice/job",
        {"/app.slice/job": "400000 100000", "/app.slice": "150000 100000"},
    )
    assert cgroup_cpu_limit(root, proc) == 150000 / 100000


def test_v2_child_tighter_than_parent_wins(tmp_path: Path) -> None:
    """A child group with a smaller quota than its parent's limits the process."""
    root, proc = _v2_tree(
        tmp_path,
        "/app.slice/job",
        {"/app.slice/job": "100000 100000", "/app.slice": "800000 100000"},
    )
    assert cgroup_cpu_limit(root, proc) == 100000 / 100000


def test_v2_limit_on_the_root_group_counts(tmp_path: Path) -> None:
    """The cpu.max at the top of the tree (a container's namespaced root) is an ancestor too."""
    root, proc = _v2_tree(tmp_path, "/", {"/": "300000 100000"})
    assert cgroup_cpu_limit(root, proc) == 300000 / 100000


def test_v2_max_means_unlimited(tmp_path: Path) -> None:
    """ "max" in every cpu.max on the path means no quota at all."""
    root, proc = _v2_tree(
        tmp_path, "/app.slice/job", {"/app.slice/job": "max 100000", "/app.slice": "max 100000"}
    )
    assert cgroup_cpu_limit(root, proc) is None


def test_v2_max_in_child_does_not_hide_parent_limit(tmp_path: Path) -> None:
    """An unlimited child under a limited parent is limited by the parent."""
    root, proc = _v2_tree(
        tmp_path, "/app.slice/job", {"/app.slice/job": "max 100000", "/app.slice": "50000 100000"}
    )
    assert cgroup_cpu_limit(root, proc) == 50000 / 100000


def test_v2_without_cpu_max_files_is_unlimited(tmp_path: Path) -> None:
    """No cpu.max anywhere on the path (controller not enabled) means no quota."""
    root, proc = _v2_tree(tmp_path, "/app.slice/job", {})
    assert cgroup_cpu_limit(root, proc) is None


def test_v2_unreadable_cpu_max_is_skipped(tmp_path: Path) -> None:
    """A cpu.max that cannot be read (a directory, bad bytes) is ignored, not fatal."""
    root, proc = _v2_tree(tmp_path, "/a/b/c", {"/a": "200000 100000"})
    (root / "a" / "b" / "c" / "cpu.max").mkdir(parents=True)  # IsADirectoryError
    (root / "a" / "b" / "cpu.max").write_bytes(b"\xff\xfe\x00 100000")  # UnicodeDecodeError
    assert cgroup_cpu_limit(root, proc) == 200000 / 100000


def test_missing_proc_self_cgroup_means_unlimited(tmp_path: Path) -> None:
    """Without /proc/self/cgroup (not Linux, or a sandbox) there is no quota."""
    root, _ = _v2_tree(tmp_path, "/job", {"/job": "100000 100000"})
    assert cgroup_cpu_limit(root, tmp_path / "does-not-exist") is None


def test_unreadable_proc_self_cgroup_means_unlimited(tmp_path: Path) -> None:
    """A /proc/self/cgroup that cannot be read is treated as no quota."""
    root, _ = _v2_tree(tmp_path, "/job", {"/job": "100000 100000"})
    unreadable = tmp_path / "a-directory"
    unreadable.mkdir()
    assert cgroup_cpu_limit(root, unreadable) is None


def test_v1_limit_of_the_process_group(tmp_path: Path) -> None:
    """The cfs quota of the process's group under the cpu,cpuacct mount is the limit."""
    root = tmp_path / "cgroup"
    _v1_files(root / "cpu,cpuacct" / "docker" / "abc", "200000")
    proc = _v1_membership(tmp_path, "/docker/abc")
    assert cgroup_cpu_limit(root, proc) == 200000 / 100000


def test_v1_cpu_only_mount(tmp_path: Path) -> None:
    """A v1 hierarchy mounted as plain "cpu" is found too."""
    root = tmp_path / "cgroup"
    _v1_files(root / "cpu" / "grp", "300000")
    proc = _v1_membership(tmp_path, "/grp", controllers="cpu")
    assert cgroup_cpu_limit(root, proc) == 300000 / 100000


def test_v1_falls_back_to_the_mount_root(tmp_path: Path) -> None:
    """In a container the group path is not under the mount; the mount root's quota counts."""
    root = tmp_path / "cgroup"
    _v1_files(root / "cpu,cpuacct", "150000")
    proc = _v1_membership(tmp_path, "/docker/abc")
    assert cgroup_cpu_limit(root, proc) == 150000 / 100000


def test_v1_parent_tighter_than_child_wins(tmp_path: Path) -> None:
    """A v1 quota on an ancestor group caps the child's looser one."""
    root = tmp_path / "cgroup"
    _v1_files(root / "cpu,cpuacct" / "docker" / "abc", "400000")
    _v1_files(root / "cpu,cpuacct" / "docker", "100000")
    proc = _v1_membership(tmp_path, "/docker/abc")
    assert cgroup_cpu_limit(root, proc) == 1.0


def test_v1_mount_root_tighter_than_group_wins(tmp_path: Path) -> None:
    """A v1 quota on the mount root caps a looser one on the process's group."""
    root = tmp_path / "cgroup"
    _v1_files(root / "cpu,cpuacct" / "docker" / "abc", "400000")
    _v1_files(root / "cpu,cpuacct", "100000")
    proc = _v1_membership(tmp_path, "/docker/abc")
    assert cgroup_cpu_limit(root, proc) == 1.0


def test_v1_quota_minus_one_means_unlimited(tmp_path: Path) -> None:
    """A v1 quota of -1 on the group and the mount root means no quota."""
    root = tmp_path / "cgroup"
    _v1_files(root / "cpu,cpuacct" / "docker" / "abc", "-1")
    _v1_files(root / "cpu,cpuacct", "-1")
    proc = _v1_membership(tmp_path, "/docker/abc")
    assert cgroup_cpu_limit(root, proc) is None


def test_v1_unreadable_quota_is_skipped(tmp_path: Path) -> None:
    """An unreadable cfs_quota_us on the group falls through to the mount root's quota."""
    root = tmp_path / "cgroup"
    group = root / "cpu,cpuacct" / "docker" / "abc"
    (group / "cpu.cfs_quota_us").mkdir(parents=True)
    _write(group / "cpu.cfs_period_us", "100000\n")
    _v1_files(root / "cpu,cpuacct", "250000")
    proc = _v1_membership(tmp_path, "/docker/abc")
    assert cgroup_cpu_limit(root, proc) == 250000 / 100000


def test_v1_without_cpu_controller_is_unlimited(tmp_path: Path) -> None:
    """Membership lines without a cpu controller give no quota even if files exist."""
    root = tmp_path / "cgroup"
    _v1_files(root / "cpu,cpuacct" / "grp", "100000")
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text("12:memory:/grp\n4:cpuacct:/grp\n")
    assert cgroup_cpu_limit(root, proc) is None


def test_hybrid_v1_and_v2_takes_the_smaller(tmp_path: Path) -> None:
    """On a hybrid host the smaller of the v2 and v1 quotas is the limit."""
    root = tmp_path / "cgroup"
    _write(root / "grp" / "cpu.max", "400000 100000")
    _v1_files(root / "cpu,cpuacct" / "grp", "150000")
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text("4:cpu,cpuacct:/grp\n0::/grp\n")
    assert cgroup_cpu_limit(root, proc) == min(400000 / 100000, 150000 / 100000)


# --- available_cpus ------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "3", "64", " 5 "])
def test_env_override_wins(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """PYTHON_CPU_COUNT set to a positive integer is the count, whatever the host has."""
    monkeypatch.setenv(CPU_COUNT_ENV, value)
    assert available_cpus() == int(value)


@pytest.mark.parametrize("value", ["0", "-2", "abc", "1.5", ""])
def test_invalid_env_override_is_ignored(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """PYTHON_CPU_COUNT that is not a positive integer falls back to detection."""
    monkeypatch.delenv(CPU_COUNT_ENV, raising=False)
    detected = available_cpus()
    monkeypatch.setenv(CPU_COUNT_ENV, value)
    assert available_cpus() == detected


def test_available_cpus_is_at_least_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The count is never below 1."""
    monkeypatch.delenv(CPU_COUNT_ENV, raising=False)
    assert available_cpus() >= 1


def test_tiny_quota_still_gives_one_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """A quota of a fraction of a CPU rounds up to 1, never 0."""
    monkeypatch.delenv(CPU_COUNT_ENV, raising=False)
    monkeypatch.setattr(parmap._cpu, "_process_cgroup_limit", lambda: 0.01)
    assert available_cpus() == 1


def test_zero_affinity_still_gives_one_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even if the platform reports no CPUs at all, the count is 1."""
    monkeypatch.delenv(CPU_COUNT_ENV, raising=False)
    monkeypatch.setattr(parmap._cpu, "_affinity_count", lambda: 0)
    monkeypatch.setattr(parmap._cpu, "_process_cgroup_limit", lambda: None)
    assert available_cpus() == 1


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="needs os.sched_getaffinity")
def test_available_cpus_respects_affinity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an override, the count never exceeds the CPUs this process is pinned to."""
    monkeypatch.delenv(CPU_COUNT_ENV, raising=False)
    assert available_cpus() <= len(os.sched_getaffinity(0))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="affinity is Linux-only")
@pytest.mark.parametrize("quota", [0.5, 1.0, 1.5, 2.0, 1000.0])
def test_quota_caps_affinity_rounded_up(monkeypatch: pytest.MonkeyPatch, quota: float) -> None:
    """A cgroup quota caps the affinity count, rounded up to whole CPUs."""
    monkeypatch.delenv(CPU_COUNT_ENV, raising=False)
    monkeypatch.setattr(parmap._cpu, "_process_cgroup_limit", lambda: quota)
    expected = min(len(os.sched_getaffinity(0)), max(1, math.ceil(quota)))
    assert available_cpus() == expected
