"""A loopback TCP proxy that adds a fixed network delay each way, to give connections a real cost.

Over plain loopback a new connection costs well under a millisecond, so reusing a websocket hardly
shows. Through this proxy every byte takes ``rtt/2`` to reach the other side, so a websocket
upgrade costs one round trip and a generation request one more, as on a real network. The first
bytes of a new connection wait ``--connect-rtts`` more round trips (default 1: the TCP handshake,
which the kernel completes locally); TLS, one or two more round trips on a real network, is not
simulated. Run it in its own process so its CPU is not counted::

    python -m benchmarks.latency_proxy --upstream localhost:8787 --rtt-ms 20

It prints ``listening on localhost:<port>`` as its first line.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import socket
import sys
from typing import List, Optional


async def _pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, first_extra: float = 0.0
) -> None:
    loop = asyncio.get_running_loop()
    queue: collections.deque[tuple] = collections.deque()
    ready = asyncio.Event()

    async def deliver() -> None:
        while True:
            while not queue:
                ready.clear()
                await ready.wait()
            due, data = queue.popleft()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                try:
                    writer.write_eof()
                except OSError:
                    pass
                return
            writer.write(data)
            await writer.drain()

    task = asyncio.ensure_future(deliver())
    try:
        while True:
            data = await reader.read(256 * 1024)
            queue.append((loop.time() + delay + first_extra, data or None))
            first_extra = 0.0
            ready.set()
            if not data:
                break
        await task
    except (ConnectionError, OSError):
        task.cancel()
    finally:
        writer.close()


async def serve(
    upstream_host: str, upstream_port: int, rtt: float, connect_rtts: float = 1.0, host: str = "127.0.0.1"
) -> None:
    one_way = rtt / 2

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            up_reader, up_writer = await asyncio.open_connection(upstream_host, upstream_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            # A new connection's first bytes also wait for the TCP handshake the kernel skipped.
            _pipe(reader, up_writer, one_way, connect_rtts * rtt),
            _pipe(up_reader, writer, one_way),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, host, 0)
    port = server.sockets[0].getsockname()[1]
    servers = [server]
    try:
        # Also on ::1, same port: "localhost" may resolve there first.
        servers.append(await asyncio.start_server(handle, "::1", port))
    except OSError:
        pass
    print(f"listening on localhost:{port}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True, help="host:port to forward to")
    ap.add_argument("--rtt-ms", type=float, default=20.0, help="round-trip time to add (default 20)")
    ap.add_argument(
        "--connect-rtts",
        type=float,
        default=1.0,
        help="extra round trips before a new connection's first bytes arrive (TCP handshake; default 1)",
    )
    args = ap.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    try:
        asyncio.run(serve(host, int(port), args.rtt_ms / 1000.0, args.connect_rtts))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
