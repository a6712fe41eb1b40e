"""Request parameter shapes of the current API (TypedDicts), under the names 4.2.0 code imports."""

from __future__ import annotations

from typing import Literal, TypedDict

__all__ = ["RawEncoding", "SampleRate", "RawOutputFormatParam"]

#: The four PCM sample encodings the core decodes.
RawEncoding = Literal["pcm_f32le", "pcm_s16le", "pcm_mulaw", "pcm_alaw"]
#: Sample rates the API accepts.
SampleRate = Literal[8000, 16000, 22050, 24000, 44100, 48000]


class RawOutputFormatParam(TypedDict):
    """``output_format`` for raw PCM (the only container on SSE and websockets)."""

    container: Literal["raw"]
    encoding: RawEncoding
    sample_rate: SampleRate
