"""A TCP proxy that adds a fixed delay to every byte, for lab links with a WAN's round trip.

This kernel has no netem qdisc, so latency is injected in user space: each chunk read
from one side is written to the other `delay/2` later, in order, in both directions, so
a round trip gains `delay` and throughput is kept (chunks are pipelined, not held one
by one). One process serves many routes (a listen address per lab host).

    python -m lab.latency_proxy --delay-ms 30 198.18.15.129:2222=198.18.15.130:22 ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import socket
import time

CHUNK = 1 << 16


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, one_way: float) -> None:
    """Copy reader to writer, each chunk delivered `one_way` seconds after it was read."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, data = await queue.get()
            if not data:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        with contextlib.suppress(OSError):
            writer.write_eof()

    sender = asyncio.create_task(deliver())
    try:
        while data := await reader.read(CHUNK):
            queue.put_nowait((time.monotonic() + one_way, data))
    except (OSError, asyncio.CancelledError):
        sender.cancel()
        return
    queue.put_nowait((0.0, b""))
    with contextlib.suppress(OSError):
        await sender


async def _serve(listen: tuple[str, int], target: tuple[str, int], one_way: float) -> asyncio.Server:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*target)
        except OSError:
            client_writer.close()
            return
        await asyncio.sleep(one_way * 2)  # the handshake's round trip
        for stream in (client_writer, server_writer):
            sock = stream.get_extra_info("socket")
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # the delay is ours, not Nagle's
        await asyncio.gather(
            _pump(client_reader, server_writer, one_way),
            _pump(server_reader, client_writer, one_way),
            return_exceptions=True,
        )
        for stream in (client_writer, server_writer):
            stream.close()

    return await asyncio.start_server(handle, *listen, reuse_address=True)


def parse_route(text: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """'LISTEN_ADDR:PORT=TARGET_ADDR:PORT'."""
    listen, _, target = text.partition("=")
    listen_addr, _, listen_port = listen.rpartition(":")
    target_addr, _, target_port = target.rpartition(":")
    return (listen_addr, int(listen_port)), (target_addr, int(target_port))


async def serve_forever(routes: list[str], delay_ms: float) -> None:
    one_way = delay_ms / 2000
    servers = [await _serve(*parse_route(route), one_way) for route in routes]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"latency proxy: {len(servers)} routes, +{delay_ms:g} ms round trip", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    """Runs until SIGTERM or SIGINT; connections still open then are dropped."""
    parser = argparse.ArgumentParser(prog="python -m lab.latency_proxy", description=__doc__)
    parser.add_argument("--delay-ms", type=float, default=30, help="added to each round trip")
    parser.add_argument("routes", nargs="+", metavar="LISTEN=TARGET")
    args = parser.parse_args()
    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
        asyncio.run(serve_forever(args.routes, args.delay_ms))


if __name__ == "__main__":
    main()
