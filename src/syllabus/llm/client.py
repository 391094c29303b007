"""One client for every teacher, judge and grader: OpenAI-compatible HTTP endpoints and built-in
offline backends behind the same batch API.

    client = LLMClient("http://127.0.0.1:8000/v1", model="gpt-3.5-turbo", concurrency=16,
                       cache_dir="runs/x/llm-cache", budget_usd=5.0)
    replies = client.chat_many([[{"role": "user", "content": "..."}], ...], temperature=0.7, max_tokens=512)

Endpoints: an http(s) base URL, `offline:<name>` (a deterministic in-process function registered with
`register_offline`, e.g. the template teachers on import of `syllabus.synth.offline`; a template
writer, not a model), or `local:<model dir>` (a syllabus or Hugging Face phi model dir, generated in-process in batches; chat messages are
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

The client drives any backend through one small interface (`request.Backend`): `backends` picks
it from the endpoint spec, `routing` spreads requests over servers, `transport` carries the bytes
(the event loop is uvloop's where installed), `cache` keeps replies and the ledger, `prices` says what tokens cost.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from syllabus.console import progress_bar
from syllabus.errors import BadInput
from syllabus.llm.backends import open_backend
from syllabus.llm.batch import run_batches
from syllabus.llm.cache import Ledger, ReplyCache, cache_row
from syllabus.llm.prices import Price, PriceSpec, price_of, price_table
from syllabus.llm.request import BUDGET_EXHAUSTED, Backend, Fatal, Messages, Reply, Request, Retryable, estimate_tokens
from syllabus.llm.routing import HTTPBackend, split_endpoints


def event_loop() -> asyncio.Runner:
    """uvloop where it is installed (its loop costs less CPU a request than asyncio's), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


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
        prices: Price | PriceSpec | Mapping[str, PriceSpec] | None = None,
        mode: str = "online",
        batch_poll_s: float = 30.0,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
    ):
        if concurrency < 1:
            raise BadInput(f"concurrency must be at least 1, got {concurrency}")
        self.endpoints = split_endpoints(endpoint)
        self.endpoint = ",".join(self.endpoints)
        self.backend: Backend = open_backend(
            self.endpoints, model, concurrency=concurrency,
            api_key=api_key if api_key is not None else os.environ.get("OPENAI_API_KEY"),
            timeout=timeout, backoff=backoff, max_backoff=max_backoff)
        self.model = self.backend.model
        self.label = self.backend.label  # what provenance names: the endpoint(s) without credentials
        self.concurrency = concurrency
        self.budget_usd = budget_usd
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        # None: unknown (a model the price table does not name): a budget could not bind, so it is refused
        overrides = price_table(self.model, prices)
        self.price: Price | None = price_of(self.model, overrides) if overrides else self.backend.price
        if budget_usd is not None and self.price is None:
            raise BadInput(f"budget_usd {budget_usd}: no price known for model {self.model!r}; name it in prices "
                           f"(e.g. prices: {{{self.model}: [INPUT, OUTPUT]}}, USD per million tokens)")
        if mode not in ("online", "batch"):
            raise BadInput(f"mode {mode!r}: expected online or batch")
        self.mode = mode
        if mode == "batch":
            if not isinstance(self.backend, HTTPBackend) or len(self.endpoints) != 1:
                raise BadInput(f"mode batch needs one http(s) endpoint serving the OpenAI Batch API, not {self.endpoint}")
            if self.price is not None:
                self.price = self.price.batch()  # what the ledger charges and the budget reserves
        self.batch_poll_s = batch_poll_s
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
        # the standard library's JSON, not orjson: keys must stay those of the caches already written
        blob = json.dumps([self.backend.identity, kind, body, params, sample], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _requests(self, kind, bodies, samples, params) -> list[Request]:
        samples = list(samples) if samples is not None else [0] * len(bodies)
        if len(samples) != len(bodies):
            raise ValueError("samples must have one index per request")
        return [Request(kind, body, params, s, self.request_key(kind, body, params, s))
                for body, s in zip(bodies, samples)]

    def _run_sync(self, kind, bodies, samples, description, params) -> list[Reply]:
        if _loop_running():
            # Called from a coroutine (a notebook cell runs in one): a loop cannot run inside another,
            # so the batch runs on its own loop in a worker thread while this call waits for it.
            with ThreadPoolExecutor(1, thread_name_prefix="llm-batch") as worker:
                return worker.submit(self._run_sync, kind, bodies, samples, description, params).result()
        requests = self._requests(kind, bodies, samples, params)
        with progress_bar() as bar:
            task = bar.add_task(description, total=len(requests), status="")

            def advance(_: Reply) -> None:
                ledger = self.ledger
                status = f"cached {ledger.cached}  failed {ledger.failed}  ${ledger.cost_usd:.4f}"
                bar.update(task, advance=1, status=status)

            try:
                if self.mode == "batch":
                    replies = run_batches(self, requests, advance)
                else:
                    with event_loop() as runner:
                        replies = runner.run(self._run_draining_on_signal(requests, advance))
            finally:
                self.cache.commit()  # replies stored in a turn a second Ctrl-C cut short
        if self._stopping:
            raise KeyboardInterrupt
        return replies

    async def _run_draining_on_signal(self, requests, on_reply) -> list[Reply]:
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
            return await self._run(requests, on_reply)
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    async def _run(self, requests: list[Request], on_reply: Callable[[Reply], None] | None) -> list[Reply]:
        hits = self.cache.get_many([r.key for r in requests])
        replies = [self._cached(r, hits) for r in requests]
        if on_reply is not None:
            for reply in filter(None, replies):
                on_reply(reply)
        backend = self.backend
        todo = deque(backend.batches(requests, [i for i, reply in enumerate(replies) if reply is None]))
        async with backend:

            async def worker() -> None:  # one per slot, rather than a task per request waiting for one
                while todo:
                    batch = todo.popleft()
                    answered = await self._send(backend, [requests[i] for i in batch])
                    for i, reply in zip(batch, answered):
                        replies[i] = reply
                        if on_reply is not None:
                            on_reply(reply)

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
        return 0.0 if self.price is None else self.price.cost(prompt_tokens, completion_tokens)

    def _worst_case_cost(self, request: Request) -> float:
        prompt = request.body if isinstance(request.body, str) else json.dumps(request.body)
        return self._cost(estimate_tokens(prompt), int(request.params.get("max_tokens") or 4096))

    def _fail(self, request: Request, error: str) -> Reply:
        self.ledger.failed += 1
        kind = error.split(" (")[0].split(":")[0]
        self.ledger.errors[kind] = self.ledger.errors.get(kind, 0) + 1
        return Reply(None, error=error, provenance=self._provenance(request, self.label))

    async def _send(self, backend: Backend, batch: list[Request]) -> list[Reply]:
        reserve = sum(self._worst_case_cost(request) for request in batch)
        if self.budget_usd is not None and self.ledger.cost_usd + self._reserved + reserve > self.budget_usd:
            return [self._fail(request, BUDGET_EXHAUSTED) for request in batch]
        self._reserved += reserve
        try:
            return await self._send_with_retries(backend, batch)
        finally:
            self._reserved -= reserve

    async def _send_with_retries(self, backend: Backend, batch: list[Request]) -> list[Reply]:
        last_error, failed_at = "", None
        for attempt in range(self.max_retries + 1):
            slot = await backend.acquire(failed_at)
            try:
                if self._stopping:
                    return [self._fail(request, "interrupted") for request in batch]
                if attempt:
                    self.ledger.retries += len(batch)
                self.ledger.sent += len(batch)
                answers = await backend.send(batch, slot)
                replies = [self._succeed(request, *answer) for request, answer in zip(batch, answers)]
                # stored before the slot is released, so the row is committed before the next request
                # leaves: the server never sees one sent after a reply that a kill then loses
                committed = [self.cache.store(request.key, cache_row(reply)) for request, reply in zip(batch, replies)]
            except Retryable as e:
                last_error, failed_at = e.reason, e.endpoint
                if attempt == self.max_retries:
                    break
                if backend.back_off_before_retry(failed_at):  # full jitter
                    await asyncio.sleep(random.uniform(0, min(self.max_backoff, self.backoff * 2 ** attempt)))
                continue
            except Fatal as e:
                return [self._fail(request, str(e)) for request in batch]
            finally:
                backend.release(slot)
            for on_disk in committed:  # done only once it is on disk
                await on_disk
            return replies
        return [self._fail(request, f"{last_error} (after {self.max_retries + 1} attempts)") for request in batch]

    def _succeed(self, request: Request, text: str, prompt_tokens: int | None, completion_tokens: int | None,
                 endpoint: str) -> Reply:
        """Count and bill a reply (the caller caches it before handing it on)."""
        prompt_tokens = prompt_tokens if prompt_tokens is not None else estimate_tokens(request.prompt_text)
        completion_tokens = completion_tokens if completion_tokens is not None else estimate_tokens(text)
        self.ledger.succeeded += 1
        self.ledger.by_endpoint[endpoint] = self.ledger.by_endpoint.get(endpoint, 0) + 1
        self.ledger.prompt_tokens += prompt_tokens
        self.ledger.completion_tokens += completion_tokens
        self.ledger.cost_usd += self._cost(prompt_tokens, completion_tokens)
        return Reply(text, prompt_tokens, completion_tokens, provenance=self._provenance(request, endpoint))
