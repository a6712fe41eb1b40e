"""The resources of the current-API clients (``client.tts``, ``client.voices``)."""
