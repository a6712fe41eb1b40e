"""Benchmarks of the streaming core and the clients against the official cartesia 0.0.5."""
