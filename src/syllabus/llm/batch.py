"""The OpenAI Batch API as the way a client sends its requests (`mode: batch`): half the price,
answers within the completion window (24 h) instead of at once.

The requests the reply cache cannot answer are written as JSONL lines (`custom_id`: the request
key, `body`: what an online request would POST), uploaded (/v1/files, purpose batch) and sent as
batches (/v1/batches) of at most MAX_REQUESTS. A batch's id and keys are stored in the reply
cache's sqlite file the moment it is created, so a killed run, re-run, polls that batch again
instead of paying for its requests twice. A finished batch's output lines are matched by custom_id
and stored in the same reply cache as online replies (a later online run re-sends none of them) and
billed at the client's price, which in batch mode is the model's batch price. Lines that failed or
expired go into the next batch, up to `max_retries` more; a budget reserves each line's worst-case
cost before its batch is created, and lines past it come back as "budget exhausted".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from syllabus.llm.cache import cache_row
from syllabus.llm.request import BUDGET_EXHAUSTED, Reply, Request
from syllabus.llm.routing import parse_completion

if TYPE_CHECKING:
    from syllabus.llm.client import LLMClient

MAX_REQUESTS = 50_000  # OpenAI's limit on the lines of one batch
TERMINAL = ("completed", "failed", "expired", "cancelled")
ENDPOINTS = {"chat": "/v1/chat/completions", "completion": "/v1/completions"}


class BatchAPIError(Exception):
    pass


class BatchAPI:
    """The four Batch API calls a run makes, over httpx; transient failures (connection errors,
    429, 5xx) are retried with back-off, anything else raises BatchAPIError."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float, backoff: float, tries: int = 6):
        url = httpx.URL(base_url)
        if url.path in ("", "/"):
            url = url.copy_with(path="/v1")
        auth = {k: v for k, v in headers.items() if k.lower() == "authorization"}
        self.http = httpx.Client(base_url=str(url).rstrip("/"), headers=auth, timeout=timeout)
        self.backoff, self.tries = backoff, tries

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.tries):
            try:
                response = self.http.request(method, path, **kwargs)
            except httpx.TransportError as e:
                error = f"connection error ({e.__class__.__name__})"
            else:
                if response.status_code < 400:
                    return response
                error = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code != 429 and response.status_code < 500:
                    break
            time.sleep(min(30.0, self.backoff * 2 ** attempt))
        raise BatchAPIError(f"{method} {path}: {error}")

    def upload(self, jsonl: bytes) -> str:
        response = self._call("POST", "/files", files={"file": ("batch.jsonl", jsonl, "application/jsonl")},
                              data={"purpose": "batch"})
        return response.json()["id"]

    def create(self, input_file_id: str, endpoint: str) -> str:
        response = self._call("POST", "/batches", json={"input_file_id": input_file_id, "endpoint": endpoint,
                                                        "completion_window": "24h"})
        return response.json()["id"]

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        return self._call("GET", f"/batches/{batch_id}").json()

    def content(self, file_id: str) -> bytes:
        return self._call("GET", f"/files/{file_id}/content").content


def _line_answer(line: dict, kind: str) -> tuple[str, int | None, int | None] | str:
    """A result line's (text, prompt tokens, completion tokens), or why it has none."""
    response = line.get("response") or {}
    if line.get("error") or response.get("status_code") != 200:
        error = line.get("error") or (response.get("body") or {}).get("error") or {}
        code = error.get("code") or error.get("message") if isinstance(error, dict) else error
        return f"batch line failed ({code or 'HTTP ' + str(response.get('status_code'))})"
    try:
        return parse_completion(kind, response.get("body") or {})
    except ValueError:
        return "malformed response"


def run_batches(client: LLMClient, requests: list[Request], on_reply: Callable[[Reply], None]) -> list[Reply]:
    """One reply per request, in order: from the cache, or from batches (resumed, then new ones)."""
    hits = client.cache.get_many([r.key for r in requests])
    replies: list[Reply | None] = [client._cached(r, hits) for r in requests]
    for reply in filter(None, replies):
        on_reply(reply)
    todo: dict[str, list[int]] = {}
    for i, reply in enumerate(replies):
        if reply is None:
            todo.setdefault(requests[i].key, []).append(i)
    backend = client.backend
    api = BatchAPI(backend.urls[0], backend.transport.headers, backend.transport.timeout, client.backoff)
    errors: dict[str, str] = {}

    def answer(key: str, reply: Reply) -> None:
        for i in todo.pop(key):
            replies[i] = reply
            on_reply(reply)

    try:
        for attempt in range(client.max_retries + 1):
            if not todo:
                break
            if attempt:
                client.ledger.retries += len(todo)
            batches = [(batch_id, keys) for batch_id, keys in client.cache.open_batches() if todo.keys() & set(keys)]
            waiting = {key for _, keys in batches for key in keys if key in todo}
            reserved = sum(client._worst_case_cost(requests[todo[key][0]]) for key in waiting)
            new, over_budget = [], []
            for key in todo:
                if key in waiting:
                    continue
                cost = client._worst_case_cost(requests[todo[key][0]])
                if client.budget_usd is not None and client.ledger.cost_usd + reserved + cost > client.budget_usd:
                    over_budget.append(key)
                    continue
                reserved += cost
                new.append(key)
            for key in over_budget:
                answer(key, client._fail(requests[todo[key][0]], BUDGET_EXHAUSTED))
            try:
                for start in range(0, len(new), MAX_REQUESTS):
                    batches.append(_submit(client, api, [requests[todo[key][0]] for key in new[start:start + MAX_REQUESTS]]))
                for batch_id, keys in batches:
                    _collect(client, api, batch_id, {key: requests[todo[key][0]] for key in keys if key in todo},
                             answer, errors)
            except BatchAPIError as e:
                for key in list(todo):
                    errors[key] = str(e)
                break
    finally:
        api.close()
    for key in list(todo):
        answer(key, client._fail(requests[todo[key][0]], errors.get(key) or "not answered"))
    return replies  # type: ignore[return-value]


def _submit(client: LLMClient, api: BatchAPI, batch: list[Request]) -> tuple[str, list[str]]:
    """Upload and create one batch; its id is stored before anything else can happen."""
    kind = batch[0].kind
    lines = b"".join(orjson.dumps({"custom_id": r.key, "method": "POST", "url": ENDPOINTS[kind],
                                   "body": client.backend.body(r)}) + b"\n" for r in batch)
    batch_id = api.create(api.upload(lines), ENDPOINTS[kind])
    keys = [r.key for r in batch]
    client.cache.add_batch(batch_id, keys)
    client.ledger.sent += len(batch)
    return batch_id, keys


def _collect(client: LLMClient, api: BatchAPI, batch_id: str, requests: dict[str, Request],
             answer: Callable[[str, Reply], None], errors: dict[str, str]) -> None:
    """Poll a batch until it ends; cache and bill its answers, note why the other lines have none."""
    while (batch := api.retrieve(batch_id))["status"] not in TERMINAL:
        time.sleep(client.batch_poll_s)
    answered: dict[str, Reply] = {}
    for file_field in ("output_file_id", "error_file_id"):
        if not batch.get(file_field):
            continue
        for raw in api.content(batch[file_field]).splitlines():
            if not raw.strip():
                continue
            line = orjson.loads(raw)
            request = requests.get(line.get("custom_id"))
            if request is None or request.key in answered:
                continue
            result = _line_answer(line, request.kind)
            if isinstance(result, str):
                errors[request.key] = result
                continue
            reply = client._succeed(request, *result, client.label)
            client.cache.put(request.key, cache_row(reply))
            answered[request.key] = reply
    client.cache.commit()  # on disk before the batch is closed: its answers are never fetched twice
    client.cache.close_batch(batch_id)
    for key, reply in answered.items():
        answer(key, reply)
    for key in requests.keys() - answered.keys():
        errors.setdefault(key, f"batch {batch['status']}")
