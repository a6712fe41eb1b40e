"""Retry decorators (the cartesia 0.0.5 names and signatures) on the client's one retry rule."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from typing import Any, Callable, NoReturn, Optional

from ._client.retry import Attempts, RetryPolicy
from .errors import CartesiaConnectionError, CartesiaError

__all__ = ["retry_on_connection_error", "retry_on_connection_error_async"]

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def _policy(max_retries: int, backoff_factor: float) -> RetryPolicy:
    return RetryPolicy(max_retries=max(1, int(max_retries)), backoff_factor=backoff_factor)


def _give_up(attempts: Attempts, error: BaseException, yielded: bool) -> NoReturn:
    """Raise what ends the call: the error itself, or for a foreign transport error that used up
    the attempts, a connection error in the 0.0.5 wording."""
    if yielded or not attempts.policy.retryable(error) or isinstance(error, CartesiaError):
        raise error
    raise CartesiaConnectionError(
        f"Exception occurred after {attempts.policy.max_retries} tries."
    ) from error


def retry_on_connection_error(
    max_retries: int = 3, backoff_factor: float = 1, logger: Optional[logging.Logger] = None
) -> Decorator:
    """Retry a function when the connection fails, backing off with jitter between attempts.

    Retried: connection errors of any transport (``ConnectionError``, httpx/aiohttp transport
    errors, ``CartesiaConnectionError``), connect timeouts, HTTP 429 (waiting at least the
    server's ``Retry-After``) and 5xx. Never retried: other 4xx errors (bad input). When the
    function is a generator function, it is retried only while it has yielded nothing, so output
    that already reached the caller is never produced twice.

    Args:
        max_retries: Total attempts (3 = one try and two retries, as in 0.0.5).
        backoff_factor: Attempt ``n`` waits about ``backoff_factor * 2 ** (n - 1)`` seconds.
        logger: Where retries are logged (default: the ``cartesia.retry`` logger).
    """
    policy = _policy(max_retries, backoff_factor)

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        what = getattr(func, "__qualname__", "call")
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                attempts = Attempts(policy, what, logger=logger)
                while True:
                    attempts.begin()
                    yielded = False
                    try:
                        for item in func(*args, **kwargs):
                            yielded = True
                            yield item
                        return
                    except Exception as error:
                        delay = attempts.after(error, delivered=yielded)
                        if delay is None:
                            _give_up(attempts, error, yielded)
                        time.sleep(delay)

            return gen_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            attempts = Attempts(policy, what, logger=logger)
            while True:
                attempts.begin()
                try:
                    return func(*args, **kwargs)
                except Exception as error:
                    delay = attempts.after(error)
                    if delay is None:
                        _give_up(attempts, error, False)
                    time.sleep(delay)

        return wrapper

    return decorator


def retry_on_connection_error_async(
    max_retries: int = 3, backoff_factor: float = 1, logger: Optional[logging.Logger] = None
) -> Decorator:
    """Async twin of :func:`retry_on_connection_error`.

    Decorates an async generator function (as in 0.0.5: retried only while nothing was yielded)
    or a coroutine function.
    """
    policy = _policy(max_retries, backoff_factor)

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        what = getattr(func, "__qualname__", "call")
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def coro_wrapper(*args: Any, **kwargs: Any) -> Any:
                attempts = Attempts(policy, what, logger=logger)
                while True:
                    attempts.begin()
                    try:
                        return await func(*args, **kwargs)
                    except Exception as error:
                        delay = attempts.after(error)
                        if delay is None:
                            _give_up(attempts, error, False)
                        await asyncio.sleep(delay)

            return coro_wrapper

        @functools.wraps(func)
        async def agen_wrapper(*args: Any, **kwargs: Any) -> Any:
            attempts = Attempts(policy, what, logger=logger)
            while True:
                attempts.begin()
                yielded = False
                agen = func(*args, **kwargs)
                try:
                    async for item in agen:
                        yielded = True
                        yield item
                    return
                except Exception as error:
                    delay = attempts.after(error, delivered=yielded)
                    if delay is None:
                        _give_up(attempts, error, yielded)
                    await asyncio.sleep(delay)
                finally:
                    await agen.aclose()

        return agen_wrapper

    return decorator
