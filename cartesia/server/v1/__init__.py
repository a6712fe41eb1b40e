"""The current, versioned Cartesia API (``Cartesia-Version`` 2024-06-10 … 2026-08-14) of the local server."""
