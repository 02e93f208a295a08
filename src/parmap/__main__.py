"""Command line: ``python -m parmap bench [--scale S] [--workers N]``."""

from __future__ import annotations

import sys
from typing import Optional, Sequence

USAGE = "usage: python -m parmap bench [--scale S] [--workers N] [--start-method M]"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        print("  bench   time the origin example serially and with parallel_map")
        return 0 if args else 2
    if args[0] == "bench":
        from ._bench import bench

        return bench(args[1:])
    print(f"unknown command {args[0]!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
