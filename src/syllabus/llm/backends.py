"""The backends LLMClient sends through, and the one place an endpoint spec picks its backend:
`http(s)://...` (OpenAI-compatible servers, `routing.HTTPBackend`), `offline:<name>` (a registered
in-process function) or `local:<model dir>` (a syllabus or Hugging Face phi model, in-process).

Offline backends are deterministic functions, not models; each registers itself where it lives
(`register_offline`), e.g. the template teachers when `syllabus.synth` is imported. This service
imports no stage: whoever needs a stage's offline backend imports that stage.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syllabus.device import default_device
from syllabus.errors import BadInput
from syllabus.llm.prices import FREE, Price
from syllabus.llm.request import Answer, Backend, Request
from syllabus.llm.routing import HTTPBackend

OfflineBackend = Callable[[str, int], str]  # (prompt text, sample index) -> reply text

_offline: dict[str, OfflineBackend] = {}


def register_offline(name: str, fn: OfflineBackend) -> None:
    """Make `offline:<name>` call fn(prompt, sample_index) -> text."""
    _offline[name] = fn


def offline_backend(name: str) -> OfflineBackend:
    if name not in _offline:
        raise BadInput(f"offline:{name}: no such offline backend (registered: {', '.join(sorted(_offline))})")
    return _offline[name]


def _canonical_completion(prompt: str, sample: int) -> str:
    from syllabus.benchmarks import canonical_completion  # loads pyarrow: only when asked

    return canonical_completion(prompt, sample)


register_offline("canonical", _canonical_completion)


class _InProcess:
    """What the in-process backends share: no endpoints to wait for, fail over from or back off."""

    price: Price | None = FREE

    def batches(self, requests: list[Request], todo: list[int]) -> list[list[int]]:
        return [[i] for i in todo]

    async def __aenter__(self) -> _InProcess:
        return self

    async def __aexit__(self, *exc) -> None:
        pass

    async def acquire(self, avoid: None) -> None:
        pass

    def release(self, slot: None) -> None:
        pass

    def back_off_before_retry(self, failed_at: None) -> bool:
        return True


class OfflineRunner(_InProcess):
    """An offline backend (it is fast and deterministic: no retries needed)."""

    def __init__(self, name: str, model: str | None, slots: int):
        self.fn = offline_backend(name)  # unknown names fail now, not mid-run
        self.label = self.identity = f"offline:{name}"
        self.model = model or self.label
        self.slots = slots

    async def send(self, batch: list[Request], slot: None) -> list[Answer]:
        return [(self.fn(r.prompt_text, r.sample), None, None, self.label) for r in batch]


class LocalModel:
    """A syllabus model dir (or Hugging Face phi dir) generating in-process on the best device here."""

    def __init__(self, path: str):
        from syllabus.model.generate import load_model_dir

        self.model, self.tokenizer = load_model_dir(path, device=default_device())

    def complete(self, prompts: list[str], params: dict[str, Any], sample: int) -> list[str]:
        from syllabus.model.generate import generate

        stop = params.get("stop") or []
        seed = params.get("seed")
        return generate(self.model, self.tokenizer, prompts, max_new_tokens=int(params.get("max_tokens") or 256),
                        temperature=float(params.get("temperature", 0.0)), top_p=float(params.get("top_p", 1.0)),
                        stop=[stop] if isinstance(stop, str) else list(stop),
                        seed=None if seed is None and not sample else int(seed or 0) + sample)


class LocalRunner(_InProcess):
    """A local model dir, loaded on the first request that is not cached; the requests sharing
    sampling params and sample index are one batched `generate` call (they share a seed and settings).
    Chat messages are joined into one prompt, since the local models are base code models."""

    slots = 1

    def __init__(self, path: str, model: str | None):
        if not Path(path).is_dir():
            raise BadInput(f"local:{path}: no such model dir")
        self.path = path
        self.label = self.identity = f"local:{path}"
        self.model = model or self.label
        self.local: LocalModel | None = None

    def batches(self, requests: list[Request], todo: list[int]) -> list[list[int]]:
        groups: dict[tuple[str, int], list[int]] = {}
        for i in todo:
            groups.setdefault((json.dumps(requests[i].params, sort_keys=True), requests[i].sample), []).append(i)
        return list(groups.values())

    async def send(self, batch: list[Request], slot: None) -> list[Answer]:
        if self.local is None:
            self.local = LocalModel(self.path)
        texts = self.local.complete([r.flat_text for r in batch], batch[0].params, batch[0].sample)
        return [(text, None, None, self.label) for text in texts]


def open_backend(endpoints: list[str], model: str | None, *, concurrency: int, api_key: str | None,
                 timeout: float, backoff: float, max_backoff: float) -> Backend:
    """The backend an endpoint spec names (several endpoints: all http(s) URLs)."""
    if not endpoints:
        raise BadInput("no endpoint given")
    if all(e.startswith(("http://", "https://")) for e in endpoints):
        return HTTPBackend(endpoints, model, api_key=api_key, timeout=timeout, concurrency=concurrency,
                           backoff=backoff, max_backoff=max_backoff)
    if len(endpoints) > 1:
        raise BadInput(f"several endpoints must all be http(s) URLs: {', '.join(endpoints)}")
    endpoint = endpoints[0]
    if endpoint.startswith("offline:"):
        return OfflineRunner(endpoint.removeprefix("offline:"), model, concurrency)
    if endpoint.startswith("local:"):
        return LocalRunner(endpoint.removeprefix("local:"), model)
    raise BadInput(f"unknown endpoint {endpoint!r} (expected http(s)://..., offline:NAME or local:DIR)")
