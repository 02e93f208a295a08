"""benchmarks/compare.py itself, run end to end on a tiny input so that it cannot rot.

The timings of so small a run mean nothing; what is checked is that the script measures
in fresh interpreters, saves every round and writes a table in which every ratio and
round count follows from the saved times.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.timeout(120)
def test_compare_writes_a_table_that_follows_from_its_rounds(tmp_path: Path) -> None:
    page, saved = tmp_path / "performance.md", tmp_path / "latest.json"
    page.write_text("# P\n\n<!-- comparison:start -->\nPLACEHOLDER\n<!-- comparison:end -->\nend\n")
    command = [sys.executable, str(HERE / "compare.py"), "--only", "trivial_1m", "--scale", "0.01"]
    command += ["--repeat", "3", "--contenders", "map,parmap", "--out", str(page)]
    command += ["--json", str(saved)]
    subprocess.run(command, check=True, capture_output=True, timeout=100)

    results = json.loads(saved.read_text())
    runs = results["rows"][0]["runs"]
    assert set(runs) == {"map", "parmap"}
    assert all(len(rounds) == 3 for rounds in runs.values())
    times = {name: [r["seconds"][0] for r in rounds] for name, rounds in runs.items()}
    led = sum(ours <= theirs for ours, theirs in zip(times["parmap"], times["map"]))

    text = page.read_text()
    assert "PLACEHOLDER" not in text, "the marked block is replaced"
    assert text.endswith("<!-- comparison:end -->\nend\n"), "and only that block"
    row = next(line for line in text.splitlines() if line.startswith("| 1,000,000 trivial"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    median = sorted(times["parmap"])[1] / sorted(times["map"])[1]
    assert cells[5] == f"**{median:.2f}x**"
    assert cells[6] == f"{led} of 3"
    paired = sorted(ours / theirs for ours, theirs in zip(times["parmap"], times["map"]))[1]
    assert cells[7] == f"{paired:.3f}"
    low, high = min(times["map"]), max(times["map"])
    spread = (high - low) / sorted(times["map"])[1]
    steadiness = next(line for line in text.splitlines() if line.startswith("Steadiness"))
    assert f"on the 1,000,000 trivial items from round to round, {spread:.1%} of" in steadiness
    assert (tmp_path / "img" / "comparison.svg").read_text().startswith("<svg")
    floors = [line for line in text.splitlines() if line.startswith("| trivial_1m: ≤ 1.10x")]
    holds = "yes" if median <= 1.10 else "**no**"
    assert floors == [f"| trivial_1m: ≤ 1.10x `map` | {median:.3f}x | {holds} |"]


@pytest.mark.timeout(120)
def test_a_chosen_few_contenders_still_give_every_row_its_parmap(tmp_path: Path) -> None:
    """`--contenders map` on the thread row runs its own parmap, "parmap threads (32)",
    too: the table divides by it (the script stopped there with a KeyError)."""
    page, saved = tmp_path / "performance.md", tmp_path / "latest.json"
    page.write_text("<!-- comparison:start -->\n<!-- comparison:end -->\n")
    command = [sys.executable, str(HERE / "compare.py"), "--only", "io_threads", "--scale", "0.01"]
    command += ["--repeat", "1", "--contenders", "map", "--out", str(page), "--json", str(saved)]
    subprocess.run(command, check=True, capture_output=True, timeout=100)

    assert set(json.loads(saved.read_text())["rows"][0]["runs"]) == {"map", "parmap threads (32)"}
    assert any(line.startswith("| 200 I/O waits") for line in page.read_text().splitlines())
