"""Runs several functions of an official 4.2.0 example file in one process, each in its own directory.

Usage: ``python official_420_runner.py EXAMPLES_FILE OUT_DIR FUNCTION...``. Each function gets a
client made as the file's own ``__main__`` makes it (``Cartesia(api_key=$CARTESIA_API_KEY)``, or
``async with AsyncCartesia(...)`` for the async file) and runs with ``OUT_DIR/FUNCTION`` as its working
directory, where its audio files land. ``OUT_DIR/results.json`` records, per function, ``null`` when
it returned and the exception's text when it raised, and under ``"cartesia"`` where the imported
package lives (which client ran); each function's stdout goes to ``OUT_DIR/FUNCTION.out``.

Standalone on purpose: it runs under the official client's interpreter as well as ours, and
imports nothing from the test suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import importlib.util
import inspect
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Dict, Optional

#: Seconds one function may take before the whole run is stopped with every thread's traceback.
LIMIT = 120


def _load(path: Path):
    # Not "__main__": the file's own command-line block must not run.
    spec = importlib.util.spec_from_file_location(f"example_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(module, name: str) -> None:
    func = getattr(module, name)
    key = os.environ["CARTESIA_API_KEY"]
    if inspect.iscoroutinefunction(func):

        async def main() -> None:
            async with module.AsyncCartesia(api_key=key) as client:
                await asyncio.wait_for(func(client), LIMIT)

        asyncio.run(main())
        return
    client = module.Cartesia(api_key=key)
    try:
        func(client)
    finally:
        client.close()


def main(argv) -> int:
    examples, out = Path(argv[1]).resolve(), Path(argv[2]).resolve()
    module = _load(examples)
    results: Dict[str, Optional[str]] = {}
    for name in argv[3:]:
        where = out / name
        where.mkdir(parents=True)
        os.chdir(where)
        faulthandler.dump_traceback_later(LIMIT + 30, exit=True)
        with open(out / f"{name}.out", "w") as log, contextlib.redirect_stdout(log):
            try:
                _run(module, name)
                results[name] = None
            except Exception as exc:  # reported per function; the next one still runs
                traceback.print_exc(file=log)
                results[name] = f"{type(exc).__name__}: {exc}"
        faulthandler.cancel_dump_traceback_later()
    import cartesia

    (out / "results.json").write_text(json.dumps({"cartesia": cartesia.__file__, "functions": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
