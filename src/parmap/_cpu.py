"""How many CPUs this process may really use.

``os.cpu_count()`` counts the host's CPUs. Inside a container limited by a cgroup CPU
quota, or a process pinned to some cores, that overstates what can run in parallel and
every extra worker only adds memory and contention. This module imports nothing from
``multiprocessing`` so that it stays cheap and testable without processes.
"""

from __future__ import annotations

import functools
import math
import os

#: Environment variable that overrides the detected count (the name Python 3.13 uses
#: for ``os.process_cpu_count``).
CPU_COUNT_ENV = "PYTHON_CPU_COUNT"

CGROUP_ROOT = "/sys/fs/cgroup"
PROC_SELF_CGROUP = "/proc/self/cgroup"


def available_cpus() -> int:
    """CPUs this process may use: affinity, cgroup quota and override; never below 1."""
    override = _env_override()
    if override is not None:
        return override
    count = _affinity_count()
    quota = _process_cgroup_limit()
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


def _env_override() -> int | None:
    value = os.environ.get(CPU_COUNT_ENV, "").strip()
    if value.isdigit() and int(value) >= 1:
        return int(value)
    return None


def _affinity_count() -> int:
    sched_getaffinity = getattr(os, "sched_getaffinity", None)
    if sched_getaffinity is not None:
        try:
            return len(sched_getaffinity(0))
        except OSError:  # pragma: no cover - some sandboxes refuse the call
            pass
    return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def _process_cgroup_limit() -> float | None:
    """Read once per process: a quota changes only if the container is reconfigured."""
    return cgroup_cpu_limit()


def cgroup_cpu_limit(
    root: str = CGROUP_ROOT, proc_self_cgroup: str = PROC_SELF_CGROUP
) -> float | None:
    """The CPU quota of this process's cgroup (v2 or v1) in CPUs, or None if unlimited."""
    membership = _read(proc_self_cgroup)
    if membership is None:
        return None
    limits = [*_cgroup_v2_limits(root, membership), *_cgroup_v1_limits(root, membership)]
    return min(limits) if limits else None


def _cgroup_v2_limits(root: str, membership: str) -> list[float]:
    """Quotas from ``cpu.max`` of the process's v2 cgroup and each of its ancestors."""
    limits = []
    for line in membership.splitlines():
        hierarchy, _, path = line.partition("::")
        if hierarchy != "0" or not path:
            continue
        group = path.strip().strip("/")
        while True:
            limit = parse_cpu_max(_read(os.path.join(root, group, "cpu.max")))
            if limit is not None:
                limits.append(limit)
            if not group:
                break
            group = os.path.dirname(group)
    return limits


def _cgroup_v1_limits(root: str, membership: str) -> list[float]:
    """The quota of the v1 ``cpu`` controller, if the process is in one."""
    for line in membership.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or "cpu" not in parts[1].split(","):
            continue
        for mount in ("cpu,cpuacct", "cpu"):
            group = parts[2].strip().strip("/")
            limits = []
            while True:  # the group and each ancestor up to the mount: the smallest wins
                directory = os.path.join(root, mount, group)
                limit = parse_cfs_quota(
                    _read(os.path.join(directory, "cpu.cfs_quota_us")),
                    _read(os.path.join(directory, "cpu.cfs_period_us")),
                )
                if limit is not None:
                    limits.append(limit)
                if not group:
                    break
                group = os.path.dirname(group)
            if limits:
                return [min(limits)]
    return []


def parse_cpu_max(text: str | None) -> float | None:
    """``"200000 100000"`` -> 2.0; ``"max 100000"`` or unreadable -> None."""
    if not text:
        return None
    fields = text.split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def parse_cfs_quota(quota: str | None, period: str | None) -> float | None:
    """cgroup v1 ``cfs_quota_us`` / ``cfs_period_us``; a quota of -1 means unlimited."""
    if quota is None or period is None:
        return None
    return _ratio(quota.strip(), period.strip())


def _ratio(quota: str, period: str) -> float | None:
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    if quota_us <= 0 or period_us <= 0:
        return None
    return quota_us / period_us


def _read(path: str) -> str | None:
    # Bytes, decoded here: a text file with encoding="ascii" imports that codec first,
    # 0.26 ms of the first call, which reads these files.
    try:
        with open(path, "rb") as file:
            return file.read().decode("ascii")
    except (OSError, ValueError):
        return None
