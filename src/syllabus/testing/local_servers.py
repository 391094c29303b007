"""Small servers on 127.0.0.1, each on its own event loop in a thread, for tests of HTTP clients.

    with ThreadedServer(handle) as server:   # handle(reader, writer) serves one connection; server.port
        ...
    with ForwardProxy() as proxy:            # proxy.url: "http://127.0.0.1:<port>"; proxy.requests: how many went through
        ...

ForwardProxy forwards plain http only (requests in absolute form, `POST http://host:port/path
HTTP/1.1`, bodies and responses by Content-Length, as the fault server sends them): enough to test
that clients honour HTTP_PROXY and friends.
"""

from __future__ import annotations

import asyncio
import threading
import urllib.parse
from collections.abc import Awaitable, Callable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class ThreadedServer:
    def __init__(self, handle: Handler):
        self.handle = handle
        started = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._serve(started)), daemon=True)
        self.thread.start()
        started.wait()

    async def _serve(self, started: threading.Event) -> None:
        self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        await self.stop.wait()
        server.close()  # asyncio.run cancels the connections still open

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=10)

    def __enter__(self) -> ThreadedServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def parse_head(head: bytes) -> tuple[str, dict[str, str]]:
    """(start line, headers by lower-case name) of an HTTP/1.1 message head."""
    start, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    fields = (line.partition(":") for line in lines if line)
    return start, {name.strip().lower(): value.strip() for name, _, value in fields}


def _content_length(head: bytes) -> int:
    return int(parse_head(head)[1].get("content-length", 0))


class ForwardProxy(ThreadedServer):
    def __init__(self):
        self.requests = 0
        super().__init__(self._forward)
        self.url = f"http://127.0.0.1:{self.port}"

    async def _forward(self, client: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        """Each request of a kept-alive client connection goes to its origin on a new connection."""
        try:
            while True:
                head = await client.readuntil(b"\r\n\r\n")
                body = await client.readexactly(_content_length(head))
                request_line, rest = head.split(b"\r\n", 1)
                method, target, version = request_line.split(b" ")
                url = urllib.parse.urlsplit(target.decode())
                self.requests += 1
                origin, origin_writer = await asyncio.open_connection(url.hostname, url.port or 80)
                path = url.path + (f"?{url.query}" if url.query else "")
                origin_writer.write(b" ".join([method, path.encode(), version]) + b"\r\n" + rest + body)
                response_head = await origin.readuntil(b"\r\n\r\n")
                response_body = await origin.readexactly(_content_length(response_head))
                origin_writer.close()
                client_writer.write(response_head + response_body)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed its connection
        finally:
            client_writer.close()
