"""``client.voices`` of the current API: list (cursor pages), get, clone, update, delete, localize."""

from __future__ import annotations

import os
from typing import IO, Any, Dict, Mapping, Optional, Sequence, Tuple, Union

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


class Voices:
    """Voices of the current API (sync)."""

    def __init__(self, http: SyncHttp) -> None:
        self._http = http

    def _call(self, request: v1.HttpRequest, extra_headers: Any, extra_query: Any, timeout: Any) -> Any:
        response = self._http.send(request, extra_headers=extra_headers, extra_query=extra_query, timeout=timeout)
        return _json(response)

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
    ) -> SyncCursorIDPage[Voice]:
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

        def fetch(**page_params: Any) -> SyncCursorIDPage[Voice]:
            answer = self._call(v1.voices_list_request(**page_params), extra_headers, extra_query, timeout)
            data, has_more = page_parts(answer)
            return SyncCursorIDPage([Voice.from_dict(v) for v in data], has_more, page_params, fetch)

        return fetch(**params)

    def get(
        self,
        id: str,
        *,
        expand: Optional[Sequence[str]] = None,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
    ) -> Voice:
        """``GET /voices/{id}`` (``NotFoundError`` for an unknown id)."""
        return Voice.from_dict(self._call(v1.voice_get_request(id, expand), extra_headers, extra_query, timeout))

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
    ) -> VoiceMetadata:
        """Multipart ``POST /voices/clone`` from an audio clip."""
        fields = _merge(dict(accent=accent, base_voice_id=base_voice_id, description=description), extra_body)
        request = v1.voice_clone_request(clip=_clip(clip), name=name, language=language, **fields)
        return VoiceMetadata.from_dict(self._call(request, extra_headers, extra_query, timeout))

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
    ) -> Voice:
        """``PATCH /voices/{id}`` with the fields given."""
        fields = _merge(_given(accent=accent, description=description, gender=gender, name=name), extra_body)
        request = v1.voice_update_request(id, **fields)
        return Voice.from_dict(self._call(request, extra_headers, extra_query, timeout))

    def delete(
        self,
        id: str,
        *,
        extra_headers: Optional[Mapping[str, str]] = None,
        extra_query: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
    ) -> None:
        """``DELETE /voices/{id}``."""
        self._call(v1.voice_delete_request(id), extra_headers, extra_query, timeout)

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
    ) -> Voice:
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
        return Voice.from_dict(self._call(v1.voice_localize_request(**fields), extra_headers, extra_query, timeout))


class AsyncVoices:
    """As :class:`Voices`, for :class:`~cartesia.AsyncCartesia` (every call is awaited)."""

    def __init__(self, http: AsyncHttp) -> None:
        self._http = http

    async def _call(self, request: v1.HttpRequest, extra_headers: Any, extra_query: Any, timeout: Any) -> Any:
        response = await self._http.send(request, extra_headers=extra_headers, extra_query=extra_query, timeout=timeout)
        return _json(response)

    async def list(
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
    ) -> AsyncCursorIDPage[Voice]:
        """As :meth:`Voices.list`."""
        params = dict(
            ending_before=ending_before,
            expand=expand,
            gender=gender,
            is_owner=None if is_owner is None else str(bool(is_owner)).lower(),
            limit=limit,
            q=q,
            starting_after=starting_after,
        )

        async def fetch(**page_params: Any) -> AsyncCursorIDPage[Voice]:
            answer = await self._call(v1.voices_list_request(**page_params), extra_headers, extra_query, timeout)
            data, has_more = page_parts(answer)
            return AsyncCursorIDPage([Voice.from_dict(v) for v in data], has_more, page_params, fetch)

        return await fetch(**params)

    async def get(
        self,
        id: str,
        *,
        expand: Optional[Sequence[str]] = None,
        extra_headers: Any = None,
        extra_query: Any = None,
        timeout: Any = DEFAULT,
    ) -> Voice:
        """As :meth:`Voices.get`."""
        return Voice.from_dict(await self._call(v1.voice_get_request(id, expand), extra_headers, extra_query, timeout))

    async def clone(
        self,
        *,
        clip: Clip,
        language: str,
        name: str,
        accent: Optional[str] = None,
        base_voice_id: Optional[str] = None,
        description: Optional[str] = None,
        extra_headers: Any = None,
        extra_query: Any = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
    ) -> VoiceMetadata:
        """As :meth:`Voices.clone` (a file object is read before the request)."""
        fields = _merge(dict(accent=accent, base_voice_id=base_voice_id, description=description), extra_body)
        request = v1.voice_clone_request(clip=_clip(clip), name=name, language=language, **fields)
        return VoiceMetadata.from_dict(await self._call(request, extra_headers, extra_query, timeout))

    async def update(
        self,
        id: str,
        *,
        accent: Optional[str] = OMIT,
        description: Optional[str] = OMIT,
        gender: Optional[str] = OMIT,
        name: Optional[str] = OMIT,
        extra_headers: Any = None,
        extra_query: Any = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
    ) -> Voice:
        """As :meth:`Voices.update`."""
        fields = _merge(_given(accent=accent, description=description, gender=gender, name=name), extra_body)
        return Voice.from_dict(
            await self._call(v1.voice_update_request(id, **fields), extra_headers, extra_query, timeout)
        )

    async def delete(
        self, id: str, *, extra_headers: Any = None, extra_query: Any = None, timeout: Any = DEFAULT
    ) -> None:
        """As :meth:`Voices.delete`."""
        await self._call(v1.voice_delete_request(id), extra_headers, extra_query, timeout)

    async def localize(
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
        extra_headers: Any = None,
        extra_query: Any = None,
        extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Any = DEFAULT,
    ) -> Voice:
        """As :meth:`Voices.localize`."""
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
        return Voice.from_dict(
            await self._call(v1.voice_localize_request(**fields), extra_headers, extra_query, timeout)
        )
