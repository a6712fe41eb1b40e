"""The clients of the current Cartesia API (``Cartesia``, ``AsyncCartesia``) and their plumbing."""
