"""OpenAI-compatible servers as one backend: which endpoint gets a request, back-off and fail-over
across several, and the OpenAI request and reply (bytes travel by `transport`).

Requests go to the endpoint with the fewest outstanding requests (each holds at most
`concurrency`), preferring ones that are not failing; a retry after a failure goes to another
endpoint when one is up. A refused or rate-limited endpoint is marked down until it may be tried
again.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import orjson

from syllabus.llm.prices import Price, price_of
from syllabus.llm.request import Answer, Fatal, Request, Retryable
from syllabus.llm.transport import Server, Transport, proxy_for


def split_endpoints(endpoint: str | Sequence[str]) -> list[str]:
    """`"http://a/v1,http://b/v1"` or a list of endpoints (or both) -> one endpoint per item."""
    items = [endpoint] if isinstance(endpoint, str) else list(endpoint)
    parts = [part for item in items
             for part in (item.split(",") if item.startswith(("http://", "https://")) else [item])]
    return [part.strip() for part in parts if part.strip()]


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to backoff


@dataclass
class Endpoint:
    """One OpenAI-compatible server: its share of the requests and whether it answers."""

    server: Server
    label: str  # what provenance and the ledger name: the URL as a string
    concurrency: int
    outstanding: int = 0
    failing: int = 0  # retryable failures since its last success: others are preferred meanwhile
    down_until: float = 0.0  # nothing is sent before this (429 Retry-After, refused connections)
    down_streak: int = 0


class HTTPBackend:
    """POSTs to OpenAI-compatible servers' /chat/completions or /completions, one request a batch.
    The endpoints' state (outstanding, failing, down) lasts one run (`async with`)."""

    def __init__(self, urls: list[str], model: str | None, *, api_key: str | None, timeout: float,
                 concurrency: int, backoff: float, max_backoff: float):
        self.urls = urls
        self.model = self.identity = model or "default"
        self.label = ",".join(str(httpx.URL(u).copy_with(username=None, password=None)) for u in urls)
        self.price: Price | None = price_of(self.model)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.transport = Transport(headers, timeout)
        self.concurrency = concurrency
        self.backoff, self.max_backoff = backoff, max_backoff
        self.slots = concurrency * len(urls)
        self.endpoints: list[Endpoint] = []
        self.waiters: deque[asyncio.Future] = deque()  # requests waiting for a slot

    def batches(self, requests: list[Request], todo: list[int]) -> list[list[int]]:
        return [[i] for i in todo]

    async def __aenter__(self) -> HTTPBackend:
        self.endpoints = []
        for base_url in self.urls:
            url = httpx.URL(base_url)
            if url.path in ("", "/"):
                url = url.copy_with(path="/v1")
            url = url.copy_with(username=None, password=None)
            self.endpoints.append(Endpoint(Server(url, proxy_for(url)), str(url).rstrip("/"), self.concurrency))
        self.waiters.clear()
        await self.transport.open([e.server for e in self.endpoints])
        return self

    async def __aexit__(self, *exc) -> None:
        await self.transport.close([e.server for e in self.endpoints])

    def back_off_before_retry(self, failed_at: Endpoint | None) -> bool:
        """After a failure, fail over to another endpoint at once when one is up; a marked-down
        endpoint already waits out its own back-off."""
        now = time.monotonic()
        if failed_at is not None and failed_at.down_until > now:
            return False
        return not any(e is not failed_at and e.down_until <= now for e in self.endpoints)

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

    async def send(self, batch: list[Request], endpoint: Endpoint) -> list[Answer]:
        """One attempt in an acquired slot; raises Retryable (naming the endpoint that failed) or Fatal."""
        try:
            text, prompt_tokens, completion_tokens = await self._post(endpoint, batch[0])
        except Retryable as e:
            if e.unreachable:
                self._mark_down(endpoint, None)
            endpoint.failing += 1
            if any(other is not endpoint and not other.failing for other in self.endpoints):
                self._mark_down(endpoint, None)  # the others answer meanwhile; a probe after the back-off
            e.endpoint = endpoint
            raise
        endpoint.failing = endpoint.down_streak = 0
        return [(text, prompt_tokens, completion_tokens, endpoint.label)]

    def body(self, request: Request) -> dict:
        """The OpenAI request body of a request (also a Batch API line's body)."""
        field_name = "messages" if request.kind == "chat" else "prompt"
        body = {"model": self.model, field_name: request.body, **request.params}
        if request.sample:  # distinct samples of one prompt are distinct requests, reproducibly
            body["seed"] = int(request.params.get("seed") or 0) + request.sample
        return body

    async def _post(self, endpoint: Endpoint, request: Request) -> tuple[str, int | None, int | None]:
        server = endpoint.server
        path = server.path + ("/chat/completions" if request.kind == "chat" else "/completions")
        status, headers, reply = await self.transport.post(server, path, orjson.dumps(self.body(request)))
        if status == 429:
            self._mark_down(endpoint, _parse_retry_after(headers.get("retry-after")))
            raise Retryable("rate limited (429)")
        if status >= 500:
            raise Retryable(f"server error ({status})")
        if status >= 400:
            raise Fatal(f"HTTP {status}: {reply[:200].decode(errors='replace')}")
        try:
            return parse_completion(request.kind, orjson.loads(reply))
        except ValueError:
            raise Retryable("malformed response") from None


def parse_completion(kind: str, data: dict) -> tuple[str, int | None, int | None]:
    """(text, prompt tokens, completion tokens) of an OpenAI (chat) completion; ValueError if malformed."""
    try:
        choice = data["choices"][0]
        text = choice["message"]["content"] if kind == "chat" else choice["text"]
        if not isinstance(text, str):
            raise TypeError
    except (KeyError, IndexError, TypeError):
        raise ValueError("malformed completion") from None
    usage = data.get("usage") or {}
    return text, usage.get("prompt_tokens"), usage.get("completion_tokens")
