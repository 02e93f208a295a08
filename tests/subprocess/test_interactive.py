"""Functions typed into a REPL or a Jupyter cell run in workers under every start method."""

from __future__ import annotations

import pytest

from support import run_interactive


def test_function_typed_into_the_repl_works(start_method: str) -> None:
    """The origin notes' problem: a function defined at the >>> prompt, mapped in workers."""
    screen = run_interactive(
        [
            "from parmap import parallel_map",
            "def triple(x):",
            "    return 3 * x",
            "",
            f"out = parallel_map(triple, range(30), 2, start_method={start_method!r},"
            " serial_fallback=False)",
            "print('RESULT', out == [3 * x for x in range(30)])",
        ]
    )
    assert "RESULT True" in screen, screen
    assert "Traceback" not in screen, screen


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_function_defined_in_a_jupyter_cell_works_under_spawn() -> None:
    """A real Jupyter kernel: a cell defines cpu_bound and maps it with spawn, within a limit."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(startup_timeout=60)
    outputs: list[str] = []

    def collect(message: dict[str, object]) -> None:
        content = message.get("content")
        if isinstance(content, dict):
            outputs.append(str(content.get("text", "")) + str(content.get("evalue", "")))

    try:
        reply = client.execute_interactive(
            "from parmap import parallel_map\n"
            "def cpu_bound(number):\n"
            "    return sum(i * i for i in range(number))\n"
            "numbers = [50_000 + x for x in range(20)]\n"
            "result = parallel_map(cpu_bound, numbers, start_method='spawn',\n"
            "                      serial_fallback=False)\n"
            "print('RESULT', result == [cpu_bound(n) for n in numbers])\n",
            timeout=60,
            output_hook=collect,
        )
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert reply["content"]["status"] == "ok", outputs
    assert "RESULT True" in "".join(outputs), outputs
