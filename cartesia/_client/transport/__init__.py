"""Small I/O adapters, one per library: sync/async HTTP and sync/async websocket."""
