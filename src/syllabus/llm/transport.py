"""The hand-written HTTP/1.1 transport that carries requests to OpenAI-compatible servers.

At 64 requests in flight the client's CPU per reply is what keeps throughput below c / latency, so a
request is one write on a kept-alive asyncio connection (one per slot) and its reply is parsed in C
by httptools: this halved the client's instructions a request against aiohttp's client (0.70M ->
0.35M at 64 in flight, callgrind). The environment's HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and
NO_PROXY are honoured as httpx honours them (`proxy_for`); a server behind a proxy is sent to
through httpx, which speaks to proxies (CONNECT for https).
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from dataclasses import dataclass, field

import httptools
import httpx

from syllabus.errors import BadInput
from syllabus.llm.request import Retryable


def proxy_for(url: httpx.URL) -> str | None:
    """The proxy the environment names for `url`, as httpx picks it: HTTP(S)_PROXY by scheme, else
    ALL_PROXY, none when NO_PROXY covers the host (lower- or upper-case names)."""
    proxies = urllib.request.getproxies_environment()
    if urllib.request.proxy_bypass_environment(url.host, proxies):
        return None
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if proxy and "://" not in proxy:
        proxy = f"http://{proxy}"  # `HTTP_PROXY=host:3128`, as httpx reads it
    if proxy and not proxy.startswith(("http://", "https://")):
        raise BadInput(f"proxy {proxy}: only http:// and https:// proxies are supported")
    return proxy


@dataclass
class Server:
    """Where requests go and the kept-alive connections to it."""

    url: httpx.URL  # the base URL without credentials
    proxy: str | None = None
    path: str = field(init=False)  # the URL's path, percent-encoded, without a trailing slash
    host: str = field(init=False)  # the Host header
    idle: list[Connection] = field(default_factory=list)

    def __post_init__(self):
        self.path, self.host = self.url.raw_path.decode().rstrip("/"), self.url.netloc.decode()


class Connection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection; responses are parsed by httptools (llhttp, the C parser
    of uvicorn and Node.js), which calls the `on_*` methods."""

    def __init__(self):
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.response: asyncio.Future | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport

    def connection_lost(self, error: Exception | None) -> None:
        self.transport = None
        self._fail(error or ConnectionResetError("the server closed the connection"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(e)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.response is not None and not self.response.done():
            headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in self.headers}
            self.response.set_result((self.parser.get_status_code(), headers, b"".join(self.body),
                                      self.parser.should_keep_alive()))
        self.response, self.headers, self.body = None, [], []

    def _fail(self, error: Exception) -> None:
        if self.response is not None and not self.response.done():
            self.response.set_exception(error)
        self.response = None

    async def request(self, message: bytes, timeout: float) -> tuple[int, dict[str, str], bytes, bool]:
        """(status, headers by lower-case name, body, whether the connection may be reused); raises
        TimeoutError if the whole reply has not come within `timeout` seconds."""
        loop = asyncio.get_running_loop()
        self.response = loop.create_future()
        timer = loop.call_later(timeout, self._fail, TimeoutError())  # cheaper than asyncio.timeout
        self.transport.write(message)
        try:
            return await self.response
        finally:
            timer.cancel()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Transport:
    """POSTs over kept-alive connections (or through httpx to a proxy). A failure raises Retryable,
    marked `unreachable` when no connection could be made."""

    IDLE_REUSE_S = 2.0  # servers close idle keep-alive connections (uvicorn/vLLM after 5 s)

    def __init__(self, headers: dict[str, str], timeout: float):
        self.headers = headers
        self.header_lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.timeout = timeout
        self.ssl_context = None
        self.proxied: dict[str, httpx.AsyncClient] = {}  # by proxy URL

    async def open(self, servers: list[Server]) -> None:
        # httpx's context (certifi, SSL_CERT_FILE); it reads the CA bundle (~0.25 s), so only for https
        if any(s.url.scheme == "https" for s in servers):
            self.ssl_context = httpx.create_ssl_context()
        for proxy in {s.proxy for s in servers if s.proxy}:
            self.proxied[proxy] = httpx.AsyncClient(proxy=proxy, timeout=self.timeout, trust_env=False,
                                                    verify=self.ssl_context or True, headers=self.headers)

    async def close(self, servers: list[Server]) -> None:
        for server in servers:
            for connection in server.idle:
                connection.close()
            server.idle.clear()
        for client in self.proxied.values():
            await client.aclose()
        self.proxied = {}

    async def post(self, server: Server, path: str, content: bytes) -> tuple[int, dict[str, str], bytes]:
        """(status, headers by lower-case name, body) of one POST to `path` on `server`."""
        if server.proxy:
            return await self._post_by_proxy(server, path, content)
        return await self._post_direct(server, path, content)

    async def _post_direct(self, server: Server, path: str, content: bytes) -> tuple[int, dict[str, str], bytes]:
        message = (f"POST {path} HTTP/1.1\r\nHost: {server.host}\r\n{self.header_lines}"
                   f"Content-Length: {len(content)}\r\n\r\n").encode() + content
        connection = await self._connection(server)
        try:
            status, headers, reply, reusable = await connection.request(message, self.timeout)
        except TimeoutError:
            connection.close()
            raise Retryable("timeout") from None
        except (OSError, httptools.HttpParserError) as e:
            connection.close()
            raise Retryable(f"connection error ({e.__class__.__name__})") from None
        if reusable:
            connection.idle_since = time.monotonic()
            server.idle.append(connection)
        else:
            connection.close()
        return status, headers, reply

    async def _connection(self, server: Server) -> Connection:
        now = time.monotonic()
        while server.idle:
            connection = server.idle.pop()
            if connection.transport is not None and now - connection.idle_since < self.IDLE_REUSE_S:
                return connection
            connection.close()
        url = server.url
        try:
            async with asyncio.timeout(self.timeout):
                _, connection = await asyncio.get_running_loop().create_connection(
                    Connection, url.host, url.port or (443 if url.scheme == "https" else 80),
                    ssl=self.ssl_context if url.scheme == "https" else None)
        except TimeoutError:
            raise Retryable("timeout", unreachable=True) from None
        except OSError as e:
            raise Retryable(f"connection error ({e.__class__.__name__})", unreachable=True) from None
        return connection

    async def _post_by_proxy(self, server: Server, path: str, content: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            response = await self.proxied[server.proxy].post(server.url.copy_with(raw_path=path.encode()),
                                                             content=content)
        except httpx.TimeoutException as e:
            raise Retryable("timeout", unreachable=isinstance(e, httpx.ConnectTimeout)) from None
        except httpx.TransportError as e:
            raise Retryable(f"connection error ({e.__class__.__name__})",
                            unreachable=isinstance(e, (httpx.ConnectError, httpx.ProxyError))) from None
        return response.status_code, response.headers, response.content
