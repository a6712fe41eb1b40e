"""``Cartesia`` and ``AsyncCartesia``: the current-API clients, with the official 4.2.0 constructor."""

from __future__ import annotations

from typing import Any, Mapping, Optional

from ..resources.tts import TTS, AsyncTTS
from ..resources.voices import AsyncVoices, Voices
from .config import DEFAULT, CurrentConfig
from .http import AsyncHttp, SyncHttp

__all__ = ["Cartesia", "AsyncCartesia"]


class _Base:
    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        token: Optional[str] = None,
        base_url: Optional[str] = None,
        websocket_base_url: Optional[str] = None,
        timeout: Any = DEFAULT,
        max_retries: int = 2,
        default_headers: Optional[Mapping[str, str]] = None,
        default_query: Optional[Mapping[str, Any]] = None,
        **_ignored: Any,
    ) -> None:
        unknown = set(_ignored) - {"http_client", "_strict_response_validation"}
        if unknown:
            raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
        self.config = CurrentConfig.resolve(
            api_key=api_key,
            token=token,
            base_url=base_url,
            websocket_base_url=websocket_base_url,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=default_headers,
            default_query=default_query,
        )

    @property
    def api_key(self) -> Optional[str]:
        return self.config.api_key

    @property
    def base_url(self) -> str:
        return self.config.base_url

    @property
    def websocket_base_url(self) -> str:
        return self.config.websocket_base_url

    @property
    def max_retries(self) -> int:
        return self.config.retry.max_retries - 1

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, api_key={'***' if self.api_key else None})"


class Cartesia(_Base):
    """The sync client of the current Cartesia API (a drop-in for 4.2.0's ``Cartesia``).

    Args:
        api_key: Sent as ``Authorization: Bearer``; defaults to ``CARTESIA_API_KEY``.
        token: An access token (used when no ``api_key``).
        base_url: Defaults to ``CARTESIA_BASE_URL``, then ``https://api.cartesia.ai``.
        websocket_base_url: Defaults to ``CARTESIA_WEBSOCKET_BASE_URL``, then ``base_url`` with
            ``ws``/``wss``.
        timeout: Seconds or an ``httpx.Timeout`` (default 60 s, 5 s to connect); None: no limit.
        max_retries: Retries after a failed attempt (default 2; 0 turns them off).
        default_headers: Sent with every request (a ``Cartesia-Version`` here overrides ours);
            they override the ``CARTESIA_CUSTOM_HEADERS`` ones (``Name: value`` lines).
        default_query: Added to every request's query.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._http = SyncHttp(self.config)
        self.tts = TTS(self._http, self)
        self.voices = Voices(self._http)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Cartesia:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class AsyncCartesia(_Base):
    """The async client (a drop-in for 4.2.0's ``AsyncCartesia``); nothing blocks its loop."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._http = AsyncHttp(self.config)
        self.tts = AsyncTTS(self._http, self)
        self.voices = AsyncVoices(self._http)

    async def close(self) -> None:
        await self._http.close()

    async def __aenter__(self) -> AsyncCartesia:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
