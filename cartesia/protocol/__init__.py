"""Sans-I/O protocol layers, one module per API dialect (``v0`` now)."""
