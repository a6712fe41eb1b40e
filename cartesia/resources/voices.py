"""``client.voices`` of the current API: list (cursor pages), get, clone, update, delete, localize."""

from __future__ import annotations

import os
from typing import IO, Any, Awaitable, Callable, Dict, Generic, Mapping, Optional, Sequence, Tuple, TypeVar, Union, cast

import httpx

from .._current.config import DEFAULT
from .._current.http import AsyncHttp, SyncHttp
from ..errors import InvalidInputError
from ..protocol import v1
from ..types.voices import Voice, VoiceMetadata
from .pages import AsyncCursorIDPage, SyncCursorIDPage, page_parts

__all__ = ["Voices", "AsyncVoices"]

Clip = Union[bytes, IO[bytes], "os.PathLike[str]", Tuple[str, Any], Tuple[str, Any, str]]


def _clip(clip: Any) -> Tuple[str, bytes, Optional[str]]:
    """``(filename, bytes, content type)`` of what 4.2.0 accepts as a file."""
    if isinstance(clip, tuple):
        name, content = clip[0], clip[1]
        ctype = clip[2] if len(clip) > 2 else None
        return str(name), _clip(content)[1], ctype
    if isinstance(clip, (bytes, bytearray)):
        return "clip", bytes(clip), None
    if isinstance(clip, os.PathLike):
        with open(clip, "rb") as f:
            return os.path.basename(os.fspath(clip)), f.read(), None
    read = getattr(clip, "read", None)
    if callable(read):
        data = read()
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidInputError("`clip` must be opened in binary mode", field="clip")
        return os.path.basename(str(getattr(clip, "name", "clip"))), bytes(data), None
    raise InvalidInputError(
        f"`clip` must be bytes, a binary file, a path or a (name, content) tuple, not {type(clip).__name__}",
        field="clip",
    )


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


#: "Not given" for the fields ``update`` may set to None (``null`` clears them on the server).
OMIT: Any = _Omit()


def _given(**fields: Any) -> Dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not OMIT}


def _merge(fields: Mapping[str, Any], extra_body: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    out = dict(fields)
    out.update(extra_body or {})
    return out


def _json(response: httpx.Response) -> Any:
    return response.json() if response.content else None


#: What each call returns: the value (sync) or an awaitable of it (async).
V = TypeVar("V")  # a Voice
M = TypeVar("M")  # a VoiceMetadata
N = TypeVar("N")  # None
P = TypeVar("P")  # a page of voices
#: ``(extra_headers, extra_query, timeout)`` of one call.
Options = Tuple[Any, Any, Any]


class _VoicesBase(Generic[V, M, N, P]):
    """Every ``client.voices`` call, written once: each builds its request (lazily, so that an
    async call checks its arguments when awaited, as before) and how to read the answer; the
    sync and async classes only run them (``_run``)."""

    _page_class: Callable[..., Any]

    def __init__(self, http: Any) -> None:
        self._http = http

    def _run(self, build: Callable[[], v1.HttpRequest], parse: Callable[[Any], Any], options: Options) -> Any:
        """``parse`` of the JSON answer to ``build()`` (the sync class) or a coroutine of it."""
        raise NotImplementedError

    def list(
        self,
        *,
        ending_before: Optional[str] = None,
        expand: Optional[Sequence[str]] = None,
        gender: Optional[str] = None,
        is_owner: Optional[bool] = None,
        limit: Optional[int] = None,
        q: Optional[str] = None,
        starting_after: Optional[str] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
    ) -> P:
        """``GET /voices``: one page; ``get_next_page()`` or iteration walks the rest."""
        params = dict(
            ending_before=ending_before,
            expand=expand,
            gender=gender,
            is_owner=None if is_owner is None else str(bool(is_owner)).lower(),
            limit=limit,
            q=q,
            starting_after=starting_after,
        )
        options = (extra_headers, extra_query, timeout)

        def fetch(**page_params: Any) -> Any:
            def page(answer: Any) -> Any:
                data, has_more = page_parts(answer)
                return self._page_class([Voice.from_dict(v) for v in data], has_more, page_params, fetch)

            return self._run(lambda: v1.voices_list_request(**page_params), page, options)

        return cast(P, fetch(**params))

    def get(
        self,
        id: str,
        *,
        expand: Optional[Sequence[str]] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
    ) -> V:
        """``GET /voices/{id}`` (``NotFoundError`` for an unknown id)."""
        return cast(
            V,
            self._run(lambda: v1.voice_get_request(id, expand), Voice.from_dict, (extra_headers, extra_query, timeout)),
        )

    def clone(
        self,
        *,
        clip: Clip,
        language: str,
        name: str,
        accent: Optional[str] = None,
        base_voice_id: Optional[str] = None,
        description: Optional[str] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
    ) -> M:
        """Multipart ``POST /voices/clone`` from an audio clip (a file object is read when the
        request is made)."""
        fields = _merge(dict(accent=accent, base_voice_id=base_voice_id, description=description), extra_body)
        return cast(
            M,
            self._run(
                lambda: v1.voice_clone_request(clip=_clip(clip), name=name, language=language, **fields),
                VoiceMetadata.from_dict,
                (extra_headers, extra_query, timeout),
            ),
        )

    def update(
        self,
        id: str,
        *,
        accent: Optional[str] = OMIT,
        description: Optional[str] = OMIT,
        gender: Optional[str] = OMIT,
        name: Optional[str] = OMIT,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
    ) -> V:
        """``PATCH /voices/{id}`` with the fields given (``None`` clears one)."""
        fields = _merge(_given(accent=accent, description=description, gender=gender, name=name), extra_body)
        return cast(
            V,
            self._run(
                lambda: v1.voice_update_request(id, **fields), Voice.from_dict, (extra_headers, extra_query, timeout)
            ),
        )

    def delete(
        self,
        id: str,
        *,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
    ) -> N:
        """``DELETE /voices/{id}``."""
        return cast(
            N, self._run(lambda: v1.voice_delete_request(id), _nothing, (extra_headers, extra_query, timeout))
        )

    def localize(
        self,
        *,
        accent: str,
        name: str,
        voice_id: str,
        description: Optional[str] = None,
        dialect: Optional[str] = None,
        language: Optional[str] = None,
        original_speaker_gender: Optional[str] = None,
        tagline: Optional[str] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
    ) -> V:
        """``POST /voices/localize``: a voice speaking with another accent."""
        fields = _merge(
            dict(
                accent=accent,
                name=name,
                voice_id=voice_id,
                description=description,
                dialect=dialect,
                language=language,
                original_speaker_gender=original_speaker_gender,
                tagline=tagline,
            ),
            extra_body,
        )
        return cast(
            V,
            self._run(
                lambda: v1.voice_localize_request(**fields), Voice.from_dict, (extra_headers, extra_query, timeout)
            ),
        )


def _nothing(answer: Any) -> None:
    return None


class Voices(_VoicesBase[Voice, VoiceMetadata, None, SyncCursorIDPage[Voice]]):
    """Voices of the current API (sync)."""

    _page_class = SyncCursorIDPage
    _http: SyncHttp

    def _run(self, build: Callable[[], v1.HttpRequest], parse: Callable[[Any], Any], options: Options) -> Any:
        extra_headers, extra_query, timeout = options
        response = self._http.send(build(), extra_headers=extra_headers, extra_query=extra_query, timeout=timeout)
        return parse(_json(response))


class AsyncVoices(
    _VoicesBase[Awaitable[Voice], Awaitable[VoiceMetadata], Awaitable[None], Awaitable[AsyncCursorIDPage[Voice]]]
):
    """As :class:`Voices`, for :class:`~cartesia.AsyncCartesia` (every call is awaited)."""

    _page_class = AsyncCursorIDPage
    _http: AsyncHttp

    def _run(self, build: Callable[[], v1.HttpRequest], parse: Callable[[Any], Any], options: Options) -> Any:
        async def run() -> Any:
            extra_headers, extra_query, timeout = options
            response = await self._http.send(
                build(), extra_headers=extra_headers, extra_query=extra_query, timeout=timeout
            )
            return parse(_json(response))

        return run()
