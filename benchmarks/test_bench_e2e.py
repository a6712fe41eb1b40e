"""End to end: our client vs the official 0.0.5 against the local server, each in its own process.

The timed value is the whole worker process (start-up included) and means little; the numbers
that matter (client CPU per audio-second, time to first audio, peak memory) are in ``extra_info``
and in ``python -m benchmarks.report``. Select the matrix with ``--e2e full|quick|off``.
"""

from __future__ import annotations

from dataclasses import asdict

import pytest

from . import e2e

CASES = {
    "full": {c.key: c for c in e2e.matrix(quick=False)},
    "quick": {c.key: c for c in e2e.matrix(quick=True)},
}


@pytest.fixture(scope="session")
def endpoints(e2e_mode):
    if e2e_mode == "off":
        pytest.skip("--e2e off")
    e2e.seed_python()  # install the official client once, before any timing
    e2e.RAW_DIR.mkdir(parents=True, exist_ok=True)
    with e2e.Endpoints(log=e2e.RAW_DIR / "server.log") as endpoints:
        yield endpoints


@pytest.mark.parametrize("impl", e2e.IMPLS)
@pytest.mark.parametrize("key", list(CASES["full"]))
def test_e2e(benchmark, impl, key, e2e_mode, endpoints):
    """One worker process: concurrent streams, reused-websocket TTFA, or a 10-minute generation."""
    case = CASES[e2e_mode].get(key)
    if case is None:
        pytest.skip(f"{key} is not in the {e2e_mode} matrix")
    if impl not in case.impls:
        pytest.skip(f"{key} is ours only")
    benchmark.group = f"e2e {key}"
    result = benchmark.pedantic(e2e.run_worker, args=(impl, case, endpoints.url(case.rtt_ms)), rounds=1, iterations=1)
    benchmark.extra_info.update(kind="e2e", impl=impl, e2e=asdict(result))
    assert not result.problems, result.problems
