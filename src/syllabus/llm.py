"""One client for every teacher, judge and grader: OpenAI-compatible HTTP endpoints and built-in
offline backends behind the same batch API.

    client = LLMClient("http://127.0.0.1:8000/v1", model="gpt-3.5-turbo", concurrency=16,
                       cache_dir="runs/x/llm-cache", budget_usd=5.0)
    replies = client.chat_many([[{"role": "user", "content": "..."}], ...], temperature=0.7, max_tokens=512)

Endpoints: an http(s) base URL, `offline:<name>` (a deterministic in-process function registered in
OFFLINE_BACKENDS or with `register_offline`; a template writer, not a model), or `local:<model dir>`
(a syllabus or Hugging Face phi model dir, generated in-process in batches; chat messages are
joined into one prompt, since the local models are base code models).

Several OpenAI-compatible servers (e.g. one vLLM per GPU node) share the work when `endpoint` is a
list or a comma-separated string of URLs: each gets `concurrency` requests in flight, new requests
go to the least busy one, and a request that fails on one (refused connection, 5xx, timeout) is
retried on another. The cache, ledger and budget are shared; provenance names the server that answered.

Every request is keyed by (model, messages or prompt, sampling params, sample index), never by the
server. A reply that succeeded is committed under that key in an sqlite cache before it counts as
done (one commit per event-loop turn serves all replies of that turn), so a re-run after a kill
re-sends only what never came back: after SIGKILL, at most the requests in flight at that moment.
A failure after retries comes back as `Reply(text=None, error=...)`; one bad request never raises.
The ledger counts tokens and cost, and a `budget_usd` cap reserves each request's worst-case cost
before sending it, so spend never passes the cap: requests that would pass it come back with error
"budget exhausted".

HTTP goes over one kept-alive asyncio connection per slot (on uvloop where installed), replies
parsed by httptools; the environment's HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY are honoured
as httpx honours them (an endpoint behind a proxy is sent to through httpx).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
import os
import random
import signal
import sqlite3
import time
import urllib.request
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httptools
import httpx
import orjson

from syllabus.console import progress_bar
from syllabus.errors import BadInput

Messages = list[dict[str, str]]
OfflineBackend = Callable[[str, int], str]  # (prompt text, sample index) -> reply text

# name -> "module:function"; imported on first use, so this service never imports a stage eagerly
OFFLINE_BACKENDS: dict[str, str] = {
    "textbook": "syllabus.synth.offline:write_textbook",
    "exercises": "syllabus.synth.offline:write_exercise",
    "canonical": "syllabus.benchmarks:canonical_completion",
}
_registered: dict[str, OfflineBackend] = {}

# USD per million (prompt, completion) tokens, matched by model-name prefix; pass `prices=` for others
KNOWN_PRICES: dict[str, tuple[float, float]] = {
    "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4": (30.00, 60.00),
}

BUDGET_EXHAUSTED = "budget exhausted"


def register_offline(name: str, fn: OfflineBackend) -> None:
    """Make `offline:<name>` call fn(prompt, sample_index) -> text."""
    _registered[name] = fn


def offline_backend(name: str) -> OfflineBackend:
    if name in _registered:
        return _registered[name]
    if name not in OFFLINE_BACKENDS:
        known = sorted(set(OFFLINE_BACKENDS) | set(_registered))
        raise BadInput(f"offline:{name}: no such offline backend (known: {', '.join(known)})")
    module, fn = OFFLINE_BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), fn)


@dataclass
class Reply:
    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.text is not None


@dataclass
class Ledger:
    """What a client did: requests sent over the wire, cache hits, tokens and dollars."""

    sent: int = 0
    succeeded: int = 0
    cached: int = 0
    retries: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    by_endpoint: dict[str, int] = field(default_factory=dict)  # replies each endpoint answered

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"cost_usd": round(self.cost_usd, 6)}


@dataclass
class Request:
    kind: str  # "chat" or "completion"
    body: Messages | str
    params: dict[str, Any]
    sample: int
    key: str = ""

    @property
    def flat_text(self) -> str:
        """The whole request as one text, for a base model: the prompt, or the messages joined."""
        return self.body if isinstance(self.body, str) else "\n\n".join(m["content"] for m in self.body)

    @property
    def prompt_text(self) -> str:
        """The text an offline backend answers: the prompt, or the last user message."""
        if isinstance(self.body, str):
            return self.body
        users = [m["content"] for m in self.body if m.get("role") == "user"]
        return users[-1] if users else self.body[-1]["content"]


class LocalModel:
    """A syllabus model dir (or Hugging Face phi dir) generating in-process on the best device here."""

    def __init__(self, path: str):
        import torch

        from syllabus.model.generate import load_model_dir

        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model, self.tokenizer = load_model_dir(path, device=device)

    def complete(self, prompts: list[str], params: dict[str, Any], sample: int) -> list[str]:
        from syllabus.model.generate import generate

        stop = params.get("stop") or []
        seed = params.get("seed")
        return generate(self.model, self.tokenizer, prompts, max_new_tokens=int(params.get("max_tokens") or 256),
                        temperature=float(params.get("temperature", 0.0)), top_p=float(params.get("top_p", 1.0)),
                        stop=[stop] if isinstance(stop, str) else list(stop),
                        seed=None if seed is None and not sample else int(seed or 0) + sample)


class Retryable(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
        self.endpoint: Endpoint | None = None  # where it failed, so that the retry can go elsewhere


class Fatal(Exception):
    pass


def _estimate_tokens(text: str) -> int:
    return len(text) // 4 + 1


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to backoff


def split_endpoints(endpoint: str | Sequence[str]) -> list[str]:
    """`"http://a/v1,http://b/v1"` or a list of endpoints (or both) -> one endpoint per item."""
    items = [endpoint] if isinstance(endpoint, str) else list(endpoint)
    parts = [part for item in items
             for part in (item.split(",") if item.startswith(("http://", "https://")) else [item])]
    return [part.strip() for part in parts if part.strip()]


def _cache_row(reply: Reply) -> dict[str, Any]:
    return {"text": reply.text, "prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "endpoint": reply.provenance["endpoint"], "time": time.time()}


class ReplyCache:
    """Successful replies by request key, in sqlite (WAL: a killed process loses no committed row).

    Awaiting `store` returns once its row is committed; one write and commit serve every reply stored
    in the same event-loop turn, so a reply counts as done only once it is on disk, and a kill can
    lose only replies still in flight (at most the concurrency)."""

    def __init__(self, cache_dir: str | Path | None):
        if cache_dir is None:
            self.db = sqlite3.connect(":memory:")
        else:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(Path(cache_dir) / "replies.sqlite", timeout=60)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
        self.db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
        self.db.commit()
        self.pending: list[tuple[str, str]] = []  # rows of this turn, written by `commit`
        self._commit: asyncio.Future | None = None

    def get_many(self, keys: Sequence[str]) -> dict[str, dict]:
        """The cached rows of those keys that have one."""
        found = {}
        for start in range(0, len(keys), 500):  # sqlite allows few parameters per statement
            chunk = keys[start:start + 500]
            rows = self.db.execute(f"SELECT key, reply FROM replies WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            found.update((key, orjson.loads(reply)) for key, reply in rows)
        return found

    def put(self, key: str, reply: dict) -> None:
        """Add a row to write at the next `commit`."""
        self.pending.append((key, orjson.dumps(reply).decode()))

    def commit(self) -> None:
        rows, self.pending = self.pending, []
        self.db.executemany("INSERT OR REPLACE INTO replies VALUES (?, ?)", rows)
        self.db.commit()

    def store(self, key: str, reply: dict) -> Awaitable[None]:
        """Add a row to this turn's commit, which runs before any callback or task wake-up scheduled
        after this call; await the result to wait until the row is on disk."""
        self.put(key, reply)
        loop = asyncio.get_running_loop()
        if self._commit is None or self._commit.get_loop() is not loop:  # not one left by an interrupted run
            self._commit = loop.create_future()
            loop.call_soon(self._commit_turn)
        return self._on_disk(self._commit)

    @staticmethod
    async def _on_disk(commit: asyncio.Future) -> None:
        await asyncio.sleep(0)  # one turn, enough: the commit was scheduled before this task's wake-up
        commit.result()  # raises if the commit failed

    def _commit_turn(self) -> None:
        done, self._commit = self._commit, None
        try:
            self.commit()
        except sqlite3.Error as e:
            done.set_exception(e)
        else:
            done.set_result(None)


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
class Endpoint:
    """One OpenAI-compatible server: its share of the requests and its kept-alive connections."""

    url: httpx.URL  # the base URL without credentials
    label: str  # what provenance and the ledger name: the URL as a string
    concurrency: int
    proxy: str | None = None
    path: str = field(init=False)  # the URL's path, percent-encoded, without a trailing slash
    host: str = field(init=False)  # the Host header
    outstanding: int = 0
    failing: int = 0  # retryable failures since its last success: others are preferred meanwhile
    down_until: float = 0.0  # nothing is sent before this (429 Retry-After, refused connections)
    down_streak: int = 0
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


class HTTPBackend:
    """POSTs to OpenAI-compatible servers' /chat/completions or /completions.

    Requests go to the endpoint with the fewest outstanding requests (each holds at most
    `concurrency`), preferring ones that are not failing; a retry after a failure goes to another
    endpoint when one is up. At 64 requests in flight the client's CPU per reply is what keeps
    throughput below c / latency, so a request is one write on a kept-alive asyncio connection (one
    per slot) and its reply is parsed in C: this halved the client's instructions a request against
    aiohttp's client (0.70M -> 0.35M at 64 in flight, callgrind). An endpoint behind a proxy
    (`proxy_for`) is sent to through httpx, which speaks to proxies (CONNECT for https)."""

    IDLE_REUSE_S = 2.0  # servers close idle keep-alive connections (uvicorn/vLLM after 5 s)

    def __init__(self, urls: list[str], model: str, *, api_key: str | None, timeout: float, concurrency: int,
                 backoff: float, max_backoff: float):
        self.endpoints = []
        for base_url in urls:
            url = httpx.URL(base_url)
            if url.path in ("", "/"):
                url = url.copy_with(path="/v1")
            url = url.copy_with(username=None, password=None)
            self.endpoints.append(Endpoint(url, str(url).rstrip("/"), concurrency, proxy_for(url)))
        self.model = model
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.header_lines = "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())
        self.timeout = timeout
        self.backoff, self.max_backoff = backoff, max_backoff
        self.slots = concurrency * len(self.endpoints)
        self.waiters: deque[asyncio.Future] = deque()  # requests waiting for a slot
        self.ssl_context = None
        self.proxied: dict[str, httpx.AsyncClient] = {}  # by proxy URL

    async def __aenter__(self) -> HTTPBackend:
        # httpx's context (certifi, SSL_CERT_FILE); it reads the CA bundle (~0.25 s), so only for https
        if any(e.url.scheme == "https" for e in self.endpoints):
            self.ssl_context = httpx.create_ssl_context()
        for proxy in {e.proxy for e in self.endpoints if e.proxy}:
            self.proxied[proxy] = httpx.AsyncClient(proxy=proxy, timeout=self.timeout, trust_env=False,
                                                    verify=self.ssl_context or True, headers=self.headers)
        return self

    async def __aexit__(self, *exc) -> None:
        for endpoint in self.endpoints:
            for connection in endpoint.idle:
                connection.close()
            endpoint.idle.clear()
        for client in self.proxied.values():
            await client.aclose()

    def others_up(self, endpoint: Endpoint | None) -> bool:
        now = time.monotonic()
        return any(e is not endpoint and e.down_until <= now for e in self.endpoints)

    def marked_down(self, endpoint: Endpoint | None) -> bool:
        return endpoint is not None and endpoint.down_until > time.monotonic()

    def _choose(self, avoid: Endpoint | None, now: float) -> Endpoint | None:
        up = [e for e in self.endpoints if e.down_until <= now]
        pool = [e for e in up if e is not avoid] or up  # a retry goes elsewhere when it can
        healthy = [e for e in pool if not e.failing]
        if healthy:  # while others answer, a failing endpoint gets one probe request at a time
            pool = healthy + [e for e in pool if e.failing and not e.outstanding]
        free = [e for e in pool if e.outstanding < e.concurrency]
        return min(free, key=lambda e: (e.failing > 0, e.outstanding)) if free else None

    async def acquire(self, avoid: Endpoint | None) -> Endpoint:
        """A slot at the least busy endpoint that is up, `avoid` only if no other is up; waits
        (first come, first served) while there is none."""
        while True:
            now = time.monotonic()
            endpoint = self._choose(avoid, now)
            if endpoint is not None:
                endpoint.outstanding += 1
                return endpoint
            # woken by a release; or, since a release may free a slot this request may not take,
            # when an endpoint comes back up or a failing one could take a probe
            down = [e.down_until - now for e in self.endpoints if e.down_until > now]
            wait = min(down) if down else 1.0 if any(e.failing for e in self.endpoints) else None
            waiter = asyncio.get_running_loop().create_future()
            self.waiters.append(waiter)
            try:
                async with asyncio.timeout(wait):
                    await waiter
            except TimeoutError:
                pass
            finally:
                waiter.cancel()

    def release(self, endpoint: Endpoint) -> None:
        endpoint.outstanding -= 1
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    def _mark_down(self, endpoint: Endpoint, seconds: float | None) -> None:
        """No requests to this endpoint for a while: `seconds` (Retry-After), or a back-off that
        doubles with each failure after it came back up (failures of requests sent before do not count)."""
        now = time.monotonic()
        if seconds is None:
            if endpoint.down_until > now:
                return
            endpoint.down_streak += 1
            seconds = min(self.max_backoff, self.backoff * 2 ** (endpoint.down_streak - 1))
        endpoint.down_until = max(endpoint.down_until, now + seconds)

    async def send(self, request: Request, endpoint: Endpoint) -> tuple[str, int | None, int | None, str]:
        """One attempt in an acquired slot; raises Retryable (naming the endpoint that failed) or Fatal."""
        try:
            text, prompt_tokens, completion_tokens = await self._post(endpoint, request)
        except Retryable as e:
            endpoint.failing += 1
            if any(other is not endpoint and not other.failing for other in self.endpoints):
                self._mark_down(endpoint, None)  # the others answer meanwhile; a probe after the back-off
            e.endpoint = endpoint
            raise
        endpoint.failing = endpoint.down_streak = 0
        return text, prompt_tokens, completion_tokens, endpoint.label

    async def _post(self, endpoint: Endpoint, request: Request) -> tuple[str, int | None, int | None]:
        field_name = "messages" if request.kind == "chat" else "prompt"
        body = {"model": self.model, field_name: request.body, **request.params}
        if request.sample:  # distinct samples of one prompt are distinct requests, reproducibly
            body["seed"] = int(request.params.get("seed") or 0) + request.sample
        content = orjson.dumps(body)
        path = endpoint.path + ("/chat/completions" if request.kind == "chat" else "/completions")
        if endpoint.proxy:
            status, headers, reply = await self._post_by_proxy(endpoint, path, content)
        else:
            status, headers, reply = await self._post_direct(endpoint, path, content)
        if status == 429:
            self._mark_down(endpoint, _parse_retry_after(headers.get("retry-after")))
            raise Retryable("rate limited (429)")
        if status >= 500:
            raise Retryable(f"server error ({status})")
        if status >= 400:
            raise Fatal(f"HTTP {status}: {reply[:200].decode(errors='replace')}")
        try:
            data = orjson.loads(reply)
            choice = data["choices"][0]
            text = choice["message"]["content"] if request.kind == "chat" else choice["text"]
            if not isinstance(text, str):
                raise TypeError
        except (ValueError, KeyError, IndexError, TypeError):
            raise Retryable("malformed response") from None
        usage = data.get("usage") or {}
        return text, usage.get("prompt_tokens"), usage.get("completion_tokens")

    async def _post_direct(self, endpoint: Endpoint, path: str, content: bytes) -> tuple[int, dict[str, str], bytes]:
        message = (f"POST {path} HTTP/1.1\r\nHost: {endpoint.host}\r\n{self.header_lines}"
                   f"Content-Length: {len(content)}\r\n\r\n").encode() + content
        connection = await self._connection(endpoint)
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
            endpoint.idle.append(connection)
        else:
            connection.close()
        return status, headers, reply

    async def _connection(self, endpoint: Endpoint) -> Connection:
        now = time.monotonic()
        while endpoint.idle:
            connection = endpoint.idle.pop()
            if connection.transport is not None and now - connection.idle_since < self.IDLE_REUSE_S:
                return connection
            connection.close()
        url = endpoint.url
        try:
            async with asyncio.timeout(self.timeout):
                _, connection = await asyncio.get_running_loop().create_connection(
                    Connection, url.host, url.port or (443 if url.scheme == "https" else 80),
                    ssl=self.ssl_context if url.scheme == "https" else None)
        except TimeoutError:
            self._mark_down(endpoint, None)
            raise Retryable("timeout") from None
        except OSError as e:
            self._mark_down(endpoint, None)
            raise Retryable(f"connection error ({e.__class__.__name__})") from None
        return connection

    async def _post_by_proxy(self, endpoint: Endpoint, path: str, content: bytes) -> tuple[int, dict[str, str], bytes]:
        try:
            response = await self.proxied[endpoint.proxy].post(endpoint.url.copy_with(raw_path=path.encode()),
                                                               content=content)
        except httpx.TimeoutException as e:
            if isinstance(e, httpx.ConnectTimeout):
                self._mark_down(endpoint, None)
            raise Retryable("timeout") from None
        except httpx.TransportError as e:
            if isinstance(e, (httpx.ConnectError, httpx.ProxyError)):
                self._mark_down(endpoint, None)
            raise Retryable(f"connection error ({e.__class__.__name__})") from None
        return response.status_code, response.headers, response.content


class OfflineRunner:
    """An offline backend behind the async interface (it is fast and deterministic: no retries needed)."""

    def __init__(self, name: str, slots: int):
        self.name = f"offline:{name}"
        self.fn = offline_backend(name)
        self.slots = slots

    async def __aenter__(self) -> OfflineRunner:
        return self

    async def __aexit__(self, *exc) -> None:
        pass

    async def acquire(self, avoid: None) -> None:
        pass

    def release(self, endpoint: None) -> None:
        pass

    async def send(self, request: Request, endpoint: None) -> tuple[str, int | None, int | None, str]:
        return self.fn(request.prompt_text, request.sample), None, None, self.name


def event_loop() -> asyncio.Runner:
    """uvloop where it is installed (its loop costs less CPU a request than asyncio's), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


class LLMClient:
    """Batch requests to one endpoint (or several OpenAI-compatible ones) with bounded concurrency,
    retries, a cache and a budget."""

    def __init__(
        self,
        endpoint: str | Sequence[str],
        model: str | None = None,
        *,
        concurrency: int = 8,
        cache_dir: str | Path | None = None,
        budget_usd: float | None = None,
        prices: tuple[float, float] | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ):
        if concurrency < 1:
            raise BadInput(f"concurrency must be at least 1, got {concurrency}")
        self.endpoints = split_endpoints(endpoint)
        if not self.endpoints:
            raise BadInput("no endpoint given")
        if len(self.endpoints) > 1 and not all(e.startswith(("http://", "https://")) for e in self.endpoints):
            raise BadInput(f"several endpoints must all be http(s) URLs: {', '.join(self.endpoints)}")
        endpoint = self.endpoint = ",".join(self.endpoints)
        self.concurrency = concurrency
        self.budget_usd = budget_usd
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        if endpoint.startswith(("http://", "https://")):
            self.backend_kind = "http"
            self.model = model or "default"
            self.prices = prices or next((p for name, p in KNOWN_PRICES.items() if self.model.startswith(name)),
                                         (0.0, 0.0))
        elif endpoint.startswith("offline:"):
            self.backend_kind = "offline"
            offline_backend(endpoint.removeprefix("offline:"))  # unknown names fail now, not mid-run
            self.model = model or endpoint
            self.prices = prices or (0.0, 0.0)
        elif endpoint.startswith("local:"):
            self.backend_kind = "local"
            if not Path(endpoint.removeprefix("local:")).is_dir():
                raise BadInput(f"{endpoint}: no such model dir")
            self.model = model or endpoint
            self.prices = prices or (0.0, 0.0)
            self._local: LocalModel | None = None
        else:
            raise BadInput(f"unknown endpoint {endpoint!r} (expected http(s)://..., offline:NAME or local:DIR)")
        self.label = endpoint  # what provenance names: the endpoint(s) without credentials
        if self.backend_kind == "http":
            self.label = ",".join(str(httpx.URL(e).copy_with(username=None, password=None)) for e in self.endpoints)
        self.cache = ReplyCache(cache_dir)
        self.ledger = Ledger()
        self._reserved = 0.0
        self._stopping = False

    # ── public batch API ──────────────────────────────────────────────────────────────────────

    def chat_many(self, conversations: Sequence[Messages], *, samples: Sequence[int] | None = None,
                  description: str = "llm", **sampling: Any) -> list[Reply]:
        """One reply per conversation, in order. `samples[i]` is the sample index of request i
        (distinct indices of one prompt are distinct cached samples)."""
        return self._run_sync("chat", conversations, samples, description, sampling)

    def complete_many(self, prompts: Sequence[str], *, samples: Sequence[int] | None = None,
                      description: str = "llm", **sampling: Any) -> list[Reply]:
        return self._run_sync("completion", prompts, samples, description, sampling)

    # ── internals ─────────────────────────────────────────────────────────────────────────────

    def request_key(self, kind: str, body: Messages | str, params: dict[str, Any], sample: int) -> str:
        identity = self.model if self.backend_kind == "http" else self.endpoint
        # the standard library's JSON, not orjson: keys must stay those of the caches already written
        blob = json.dumps([identity, kind, body, params, sample], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _requests(self, kind, bodies, samples, params) -> list[Request]:
        samples = list(samples) if samples is not None else [0] * len(bodies)
        if len(samples) != len(bodies):
            raise ValueError("samples must have one index per request")
        return [Request(kind, body, params, s, self.request_key(kind, body, params, s))
                for body, s in zip(bodies, samples)]

    def _run_sync(self, kind, bodies, samples, description, params) -> list[Reply]:
        requests = self._requests(kind, bodies, samples, params)
        with progress_bar() as bar:
            task = bar.add_task(description, total=len(requests), status="")

            def advance(_: Reply) -> None:
                ledger = self.ledger
                status = f"cached {ledger.cached}  failed {ledger.failed}  ${ledger.cost_usd:.4f}"
                bar.update(task, advance=1, status=status)

            try:
                if self.backend_kind == "local":
                    replies = self._run_local(requests, advance)
                else:
                    with event_loop() as runner:
                        replies = runner.run(self._run_draining_on_signal(kind, requests, advance))
            finally:
                self.cache.commit()  # replies stored in a turn a second Ctrl-C cut short
        if self._stopping:
            raise KeyboardInterrupt
        return replies

    async def _run_draining_on_signal(self, kind, requests, on_reply) -> list[Reply]:
        """On the first SIGINT/SIGTERM, start nothing new and let in-flight requests finish and be
        cached, so a re-run re-sends none of them; a second signal kills as usual."""
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM)

        def stop() -> None:
            self._stopping = True
            for sig in signals:
                loop.remove_signal_handler(sig)

        try:
            for sig in signals:
                loop.add_signal_handler(sig, stop)
        except (RuntimeError, ValueError):  # not the main thread: no draining
            signals = ()
        try:
            return await self._run(kind, requests, on_reply)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    def _backend(self):
        if self.backend_kind == "http":
            return HTTPBackend(self.endpoints, self.model, api_key=self.api_key, timeout=self.timeout,
                               concurrency=self.concurrency, backoff=self.backoff, max_backoff=self.max_backoff)
        return OfflineRunner(self.endpoint.removeprefix("offline:"), self.concurrency)

    async def _run(self, kind: str, requests: list[Request], on_reply: Callable[[Reply], None] | None) -> list[Reply]:
        hits = self.cache.get_many([r.key for r in requests])
        replies = [self._cached(r, hits) for r in requests]
        if on_reply is not None:
            for reply in filter(None, replies):
                on_reply(reply)
        todo = deque(i for i, reply in enumerate(replies) if reply is None)
        async with self._backend() as backend:

            async def worker() -> None:  # one per slot, rather than a task per request waiting for one
                while todo:
                    i = todo.popleft()
                    replies[i] = await self._send(backend, requests[i])
                    if on_reply is not None:
                        on_reply(replies[i])

            await asyncio.gather(*(worker() for _ in range(min(backend.slots, len(todo)))))
        return replies

    def _provenance(self, request: Request, endpoint: str) -> dict[str, Any]:
        return {"endpoint": endpoint, "model": self.model, "prompt_hash": request.key[:16],
                "params": request.params, "sample": request.sample}

    def _cached(self, request: Request, hits: dict[str, dict]) -> Reply | None:
        hit = hits.get(request.key)
        if hit is None:
            return None
        self.ledger.cached += 1
        return Reply(hit["text"], hit["prompt_tokens"], hit["completion_tokens"], cached=True,
                     provenance=self._provenance(request, hit.get("endpoint") or self.label))

    def _cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prices[0] + completion_tokens * self.prices[1]) / 1e6

    def _worst_case_cost(self, request: Request) -> float:
        prompt = request.body if isinstance(request.body, str) else json.dumps(request.body)
        return self._cost(_estimate_tokens(prompt), int(request.params.get("max_tokens") or 4096))

    def _fail(self, request: Request, error: str) -> Reply:
        self.ledger.failed += 1
        kind = error.split(" (")[0].split(":")[0]
        self.ledger.errors[kind] = self.ledger.errors.get(kind, 0) + 1
        return Reply(None, error=error, provenance=self._provenance(request, self.label))

    async def _send(self, backend, request: Request) -> Reply:
        reserve = self._worst_case_cost(request)
        if self.budget_usd is not None and self.ledger.cost_usd + self._reserved + reserve > self.budget_usd:
            return self._fail(request, BUDGET_EXHAUSTED)
        self._reserved += reserve
        try:
            return await self._send_with_retries(backend, request)
        finally:
            self._reserved -= reserve

    async def _send_with_retries(self, backend, request: Request) -> Reply:
        last_error, failed_at = "", None
        for attempt in range(self.max_retries + 1):
            slot = await backend.acquire(failed_at)
            try:
                if self._stopping:
                    return self._fail(request, "interrupted")
                if attempt:
                    self.ledger.retries += 1
                self.ledger.sent += 1
                text, prompt_tokens, completion_tokens, endpoint = await backend.send(request, slot)
                reply = self._succeed(request, text, prompt_tokens, completion_tokens, endpoint)
                # stored before the slot is released, so the row is committed before the next request
                # leaves: the server never sees one sent after a reply that a kill then loses
                committed = self.cache.store(request.key, _cache_row(reply))
            except Retryable as e:
                last_error, failed_at = e.reason, e.endpoint
                if attempt == self.max_retries:
                    break
                # a refused or rate-limited endpoint is marked down until it may be tried again; after
                # other failures, fail over to another endpoint at once, or back off (full jitter)
                if not backend.marked_down(failed_at) and not backend.others_up(failed_at):
                    await asyncio.sleep(random.uniform(0, min(self.max_backoff, self.backoff * 2 ** attempt)))
                continue
            except Fatal as e:
                return self._fail(request, str(e))
            finally:
                backend.release(slot)
            await committed  # done only once it is on disk
            return reply
        return self._fail(request, f"{last_error} (after {self.max_retries + 1} attempts)")

    def _succeed(self, request: Request, text: str, prompt_tokens: int | None, completion_tokens: int | None,
                 endpoint: str) -> Reply:
        """Count and bill a reply (the caller caches it before handing it on)."""
        prompt_tokens = prompt_tokens if prompt_tokens is not None else _estimate_tokens(request.prompt_text)
        completion_tokens = completion_tokens if completion_tokens is not None else _estimate_tokens(text)
        self.ledger.succeeded += 1
        self.ledger.by_endpoint[endpoint] = self.ledger.by_endpoint.get(endpoint, 0) + 1
        self.ledger.prompt_tokens += prompt_tokens
        self.ledger.completion_tokens += completion_tokens
        self.ledger.cost_usd += self._cost(prompt_tokens, completion_tokens)
        return Reply(text, prompt_tokens, completion_tokens, provenance=self._provenance(request, endpoint))

    def _run_local(self, requests: list[Request], on_reply: Callable[[Reply], None]) -> list[Reply]:
        """Generate the uncached requests in-process, one batched `generate` call per
        (sampling params, sample index), since those share a seed and settings."""
        hits = self.cache.get_many([r.key for r in requests])
        replies: list[Reply | None] = [self._cached(r, hits) for r in requests]
        groups: dict[tuple[str, int], list[int]] = {}
        for i, (request, reply) in enumerate(zip(requests, replies)):
            if reply is None:
                groups.setdefault((json.dumps(request.params, sort_keys=True), request.sample), []).append(i)
            else:
                on_reply(reply)
        if groups and self._local is None:
            self._local = LocalModel(self.endpoint.removeprefix("local:"))
        for (_, sample), indices in groups.items():
            params = requests[indices[0]].params
            texts = self._local.complete([requests[i].flat_text for i in indices], params, sample)
            for i, text in zip(indices, texts):
                replies[i] = self._succeed(requests[i], text, None, None, self.label)
                self.cache.put(requests[i].key, _cache_row(replies[i]))
            self.cache.commit()
            for i in indices:
                on_reply(replies[i])
        return replies
