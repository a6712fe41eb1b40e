"""pytest-benchmark setup: the implementations under test (c, py, seed, ceiling) and shared options."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

from cartesia._compat import NO_EXTENSIONS

from .seed import load_seed_functions

# Order matters: pytest-benchmark lists a group's rows in this order when sorted by name.
IMPLEMENTATIONS = ("c", "py", "seed", "ceiling")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cartesia benchmarks")
    group.addoption(
        "--e2e",
        choices=("full", "quick", "off"),
        default=os.environ.get("CARTESIA_BENCH_E2E", "full"),
        help="end-to-end benchmarks: full matrix, quick subset, or off (default: full)",
    )


@pytest.fixture(scope="session")
def twin_loader():
    """Load ``cartesia._stream_<tag>``; a missing compiled twin fails loudly unless NO_EXTENSIONS is set."""
    cache = {}

    def load(tag: str) -> ModuleType:
        if tag not in cache:
            if tag == "c" and NO_EXTENSIONS:
                pytest.skip("CARTESIA_NO_EXTENSIONS is set")
            try:
                cache[tag] = importlib.import_module(f"cartesia._stream_{tag}")
            except ImportError as exc:
                pytest.fail(
                    f"cannot import cartesia._stream_{tag} ({exc}); build it with "
                    "`python setup.py build_ext --inplace` or set CARTESIA_NO_EXTENSIONS=1"
                )
        return cache[tag]

    return load


@pytest.fixture(scope="session")
def seed_tts() -> ModuleType:
    """``update_buffer``/``convert_response`` of the official cartesia 0.0.5 (pip-installed, cached)."""
    return load_seed_functions()


@pytest.fixture(scope="session")
def e2e_mode(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--e2e")


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record CPU model, numpy, base64 kernels and the streaming core in the JSON output."""
    from .machine import machine_info as describe

    machine_info["cartesia"] = describe()
