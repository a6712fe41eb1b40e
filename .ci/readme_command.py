"""Prints the N-th command of the first fenced block under README's '## Quickstart' heading."""

import re
import sys


def quickstart_commands(text: str) -> list:
    """Return the non-empty, non-comment lines of the Quickstart section's first code block."""
    section = text.split("## Quickstart", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.S)
    if block is None:
        raise SystemExit("README.md: no code block under '## Quickstart'")
    lines = [line.strip() for line in block.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


if __name__ == "__main__":
    path, index = sys.argv[1], int(sys.argv[2])
    with open(path, encoding="utf-8") as handle:
        print(quickstart_commands(handle.read())[index - 1])
