"""Runs a benchmark script and reads back the markdown table it prints (for its tests)."""

from __future__ import annotations

import subprocess


def printed_rows(command: list[str]) -> dict[str, list[float]]:
    """Run *command*; its table's rows, by first cell, with the numbers of the others."""
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=100)
    lines = [line for line in done.stdout.splitlines() if line.startswith("| ")][1:]
    rows = {}
    for line in lines:
        name, *cells = (cell.strip() for cell in line.strip("|").split("|"))
        rows[name] = [float(cell) for cell in cells]
    return rows
