"""Summarise py-spy collapsed stacks (``--format raw``): where the samples are, by function."""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path
from typing import List, Optional


def top(path: Path, n: int = 15, inclusive: bool = False) -> List[str]:
    self_counts: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        c = int(count)
        total += c
        frames = stack.split(";")
        self_counts[frames[-1]] += c
        for fr in set(frames):
            incl[fr] += c
    counter = incl if inclusive else self_counts
    out = [f"{path.name}: {total} samples ({'inclusive' if inclusive else 'self'})"]
    for fr, c in counter.most_common(n):
        out.append(f"  {100 * c / max(total, 1):5.1f}%  {fr}")
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("-n", type=int, default=15)
    ap.add_argument("--inclusive", action="store_true")
    args = ap.parse_args(argv)
    for f in args.files:
        print("\n".join(top(f, args.n, args.inclusive)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
