"""Shared test setup: the c/py streaming-core facade and the local-server fixtures."""

import argparse
import asyncio
import dataclasses
import faulthandler
import functools
import importlib
import sys
from types import ModuleType

import pytest

from cartesia._compat import NO_EXTENSIONS, env_flag

# Fixtures that start the real local server on an ephemeral loopback port.
pytest_plugins = ["server_fixtures"]


@dataclasses.dataclass(frozen=True)
class StreamImplementation:
    """One twin of the streaming core, loaded by name so a missing C module fails loudly."""

    tag: str  # "c" or "py"

    @property
    def is_pure_python(self) -> bool:
        return self.tag == "py"

    @functools.cached_property
    def module(self) -> ModuleType:
        # No try/except: if the compiled twin is expected but missing, every C test errors.
        return importlib.import_module(f"cartesia._stream_{self.tag}")

    def __str__(self) -> str:
        return self.tag


C_IMPL = StreamImplementation("c")
PY_IMPL = StreamImplementation("py")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--c-extensions",
        action=argparse.BooleanOptionalAction,
        default=not NO_EXTENSIONS,
        help="run the tests of the compiled core (default: on unless CARTESIA_NO_EXTENSIONS=1)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if sys.version_info < (3, 14):
        # Before 3.14, asyncio.get_event_loop() in the main thread with no loop set silently
        # creates one that nobody closes. pytest-asyncio 1.2 (the last release for 3.9) calls it
        # around every async test; once an asyncio.run() drops that loop, its "unclosed event
        # loop" ResourceWarning fails whatever test runs at the next garbage collection. Saying
        # "no current loop" up front turns that implicit creation off, as 3.14 does.
        asyncio.set_event_loop(None)
    if env_flag("CARTESIA_REQUIRE_EXTENSIONS"):
        import cartesia._stream

        assert cartesia._stream.IMPLEMENTATION == "c", "compiled core required but not in use"


#: How long the interpreter may take to exit after the session: far more than joining the
#: client's and server's threads takes.
EXIT_GRACE_SECONDS = 120


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # A thread that never ends keeps the interpreter from exiting after the summary, which CI only
    # sees as its own time limit. faulthandler's watchdog (a C thread, alive during shutdown) prints
    # every thread's stack instead and exits non-zero, so such a hang is a red run with a cause.
    faulthandler.dump_traceback_later(EXIT_GRACE_SECONDS, exit=True, file=sys.__stderr__)


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    if config.getoption("--c-extensions"):
        return
    skip_c = [item for item in items if item.get_closest_marker("c_extension")]
    if skip_c:
        config.hook.pytest_deselected(items=skip_c)
        items[:] = [item for item in items if not item.get_closest_marker("c_extension")]


@pytest.fixture(
    scope="session",
    params=[pytest.param(C_IMPL, marks=pytest.mark.c_extension), PY_IMPL],
    ids=str,
)
def stream_impl(request: pytest.FixtureRequest) -> StreamImplementation:
    """Each twin of the streaming core in turn (C first)."""
    return request.param


@pytest.fixture(scope="session")
def stream_mod(stream_impl: StreamImplementation) -> ModuleType:
    """The module of the twin under test (``cartesia._stream_c`` or ``cartesia._stream_py``)."""
    return stream_impl.module


@pytest.fixture(scope="session")
def both_twins(request: pytest.FixtureRequest) -> list:
    """Both twin modules (only the Python one when the compiled core is deselected)."""
    impls = [C_IMPL, PY_IMPL] if request.config.getoption("--c-extensions") else [PY_IMPL]
    return [impl.module for impl in impls]
