"""The client resources of the current API (``client.tts``, ``client.voices``)."""
