"""Retry decorators (the cartesia 0.0.5 names and signatures) with jittered backoff."""

import asyncio
import functools
import inspect
import logging
import time
from typing import Any, Callable, Optional

from ._client_retry import RetryPolicy
from .errors import CartesiaConnectionError, CartesiaError

__all__ = ["retry_on_connection_error", "retry_on_connection_error_async"]

_logger = logging.getLogger("cartesia.utils")


def _policy(max_retries: int, backoff_factor: float) -> RetryPolicy:
    return RetryPolicy(max_retries=max(1, int(max_retries)), backoff_factor=backoff_factor)


def _final_error(policy: RetryPolicy, attempt: int, error: BaseException) -> Optional[BaseException]:
    """What to raise after attempt ``attempt`` failed with ``error``, or None to retry."""
    if not policy.retryable(error):
        return error
    if attempt < policy.max_retries:
        return None
    # Our own errors keep their type; a foreign transport error becomes a connection error that
    # carries the 0.0.5 wording.
    if isinstance(error, CartesiaError):
        return error
    return CartesiaConnectionError(f"Exception occurred after {policy.max_retries} tries.")


def _wait(policy: RetryPolicy, log: logging.Logger, attempt: int, error: BaseException) -> float:
    """The delay before the next attempt, logged."""
    delay = policy.delay(attempt, error)
    log.warning(
        "Retrying after %s (attempt %d/%d in %.2f s)",
        type(error).__name__,
        attempt + 1,
        policy.max_retries,
        delay,
    )
    return delay


def retry_on_connection_error(
    max_retries: int = 3, backoff_factor: float = 1, logger: Optional[logging.Logger] = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Retry a function when the connection fails, backing off with jitter between attempts.

    Retried: connection errors of any transport (``ConnectionError``, httpx/aiohttp transport
    errors, ``CartesiaConnectionError``), connect timeouts, HTTP 429 (waiting at least the
    server's ``Retry-After``) and 5xx. Never retried: other 4xx errors (bad input). When the
    function is a generator function, it is retried only while it has yielded nothing, so output
    that already reached the caller is never produced twice.

    Args:
        max_retries: Total attempts (3 = one try and two retries, as in 0.0.5).
        backoff_factor: Attempt ``n`` waits about ``backoff_factor * 2 ** (n - 1)`` seconds.
        logger: Where retries are logged (default: the ``cartesia.utils`` logger).
    """
    policy = _policy(max_retries, backoff_factor)
    log = logger or _logger

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.isgeneratorfunction(func):

            @functools.wraps(func)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Any:
                attempt = 0
                while True:
                    attempt += 1
                    yielded = False
                    try:
                        for item in func(*args, **kwargs):
                            yielded = True
                            yield item
                        return
                    except Exception as error:
                        final = error if yielded else _final_error(policy, attempt, error)
                        if final is error:
                            raise
                        if final is not None:
                            raise final from error
                        time.sleep(_wait(policy, log, attempt, error))

            return gen_wrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            attempt = 0
            while True:
                attempt += 1
                try:
                    return func(*args, **kwargs)
                except Exception as error:
                    final = _final_error(policy, attempt, error)
                    if final is error:
                        raise
                    if final is not None:
                        raise final from error
                    time.sleep(_wait(policy, log, attempt, error))

        return wrapper

    return decorator


def retry_on_connection_error_async(
    max_retries: int = 3, backoff_factor: float = 1, logger: Optional[logging.Logger] = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Async twin of :func:`retry_on_connection_error`.

    Decorates an async generator function (as in 0.0.5: retried only while nothing was yielded)
    or a coroutine function.
    """
    policy = _policy(max_retries, backoff_factor)
    log = logger or _logger

    def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def coro_wrapper(*args: Any, **kwargs: Any) -> Any:
                attempt = 0
                while True:
                    attempt += 1
                    try:
                        return await func(*args, **kwargs)
                    except Exception as error:
                        final = _final_error(policy, attempt, error)
                        if final is error:
                            raise
                        if final is not None:
                            raise final from error
                        await asyncio.sleep(_wait(policy, log, attempt, error))

            return coro_wrapper

        @functools.wraps(func)
        async def agen_wrapper(*args: Any, **kwargs: Any) -> Any:
            attempt = 0
            while True:
                attempt += 1
                yielded = False
                agen = func(*args, **kwargs)
                try:
                    async for item in agen:
                        yielded = True
                        yield item
                    return
                except Exception as error:
                    final = error if yielded else _final_error(policy, attempt, error)
                    if final is error:
                        raise
                    if final is not None:
                        raise final from error
                    await asyncio.sleep(_wait(policy, log, attempt, error))
                finally:
                    await agen.aclose()

        return agen_wrapper

    return decorator
