"""Shared by ``cartesia`` and ``cartesia serve``: exit codes, one-line usage errors, option value checks."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any, NoReturn, Optional

__all__ = [
    "CommandError",
    "OneLineParser",
    "port_number",
    "positive_int",
    "positive_seconds",
    "non_negative_seconds",
]

# The exit codes of ``cartesia`` (the table is in ``cartesia.cli``'s docstring and the README).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_CONNECTION = 4
EXIT_API = 5
EXIT_TIMEOUT = 6
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe


class CommandError(Exception):
    """A failure the command reports as one line on stderr and exits with ``code``.

    Args:
        code: The exit code.
        message: The line, without the ``cartesia: error:`` prefix.
    """

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line that points at the command's own ``--help``.

    argparse's default prints the whole usage block before the message; every other error of the
    command line is one line, so usage errors are too.

    Args:
        error_prefix: What starts the error line (default: the parser's ``prog``), e.g. ``cartesia``.
        **kwargs: Passed to ``argparse.ArgumentParser``.
    """

    def __init__(self, *args: Any, error_prefix: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_prefix = error_prefix

    def error(self, message: str) -> NoReturn:
        prefix = self.error_prefix or self.prog
        print(f"{prefix}: error: {message} (see: {self.prog} --help)", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_USAGE)


def positive_int(text: str) -> int:
    """An ``argparse`` type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def port_number(text: str) -> int:
    """An ``argparse`` type: a TCP port, 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be 0 (any free port) to 65535")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds")
    return value


def positive_seconds(text: str) -> float:
    """An ``argparse`` type: a finite number of seconds greater than 0."""
    value = _seconds(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0 seconds")
    return value


def non_negative_seconds(text: str) -> float:
    """An ``argparse`` type: a finite number of seconds, 0 or more."""
    value = _seconds(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 seconds or more")
    return value
