"""Run every bench/bench_*.py module's main(), or only those whose name contains one of the arguments.

python -m bench            # all
python -m bench engine     # bench_engine only
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def modules(filters: list[str]) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    if filters:
        names = [n for n in names if any(f in n for f in filters)]
    return names


def main(argv: list[str]) -> int:
    names = modules(argv)
    if not names:
        print(f"no benchmark matches {' '.join(argv)!r}; known: {', '.join(modules([]))}", file=sys.stderr)
        return 2
    for name in names:
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
