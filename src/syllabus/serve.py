"""An OpenAI-compatible HTTP server over a model dir: /v1/models, /v1/completions, /v1/chat/completions.

One worker thread owns the model. Requests queue up; whatever is waiting when the worker is free
runs as one batch (grouped by sampling settings), so concurrent clients share each forward pass.
Streaming responses are server-sent events, as the OpenAI API sends them.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel

from syllabus.console import console
from syllabus.codetext import truncate_at_stop
from syllabus.device import default_device
from syllabus.model.generate import generate_ids, load_model_dir


def chat_prompt(messages: list[dict]) -> str:
    """A plain-text transcript ending in the assistant's turn (our models are base models: no template)."""
    lines = [f"{m['role']}: {m.get('content') or ''}" for m in messages]
    return "\n".join(lines) + "\nassistant:"


CHAT_STOP = ["\nuser:", "\nsystem:"]


def _held_back(text: str, stop: list[str]) -> int:
    """How many trailing characters might be the start of a stop string, so not yet safe to stream."""
    return max((k for s in stop for k in range(1, len(s)) if text.endswith(s[:k])), default=0)


@dataclass
class Job:
    """One completion: its prompt and settings, and the queue its events go to on the client's event loop."""

    prompt_ids: list[int]
    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str]
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    streamed: int = 0  # characters already sent as deltas

    def send(self, event: tuple) -> None:
        self.loop.call_soon_threadsafe(self.events.put_nowait, event)


class BatchingEngine:
    def __init__(self, model, tokenizer, max_batch: int = 16):
        self.model, self.tokenizer, self.max_batch = model, tokenizer, max_batch
        self.pending: queue.Queue[Job] = queue.Queue()
        self.batch_sizes: list[int] = []  # of every batch run, for tests and logs
        threading.Thread(target=self._work, daemon=True, name="syllabus-serve-engine").start()

    def submit(self, job: Job) -> None:
        self.pending.put(job)

    def _work(self) -> None:
        while True:
            jobs = [self.pending.get()]
            while len(jobs) < self.max_batch:
                try:
                    jobs.append(self.pending.get_nowait())
                except queue.Empty:
                    break
            groups = defaultdict(list)
            for job in jobs:
                groups[(job.temperature, job.top_p)].append(job)
            for group in groups.values():
                try:
                    self._run(group)
                except Exception as e:  # a failed batch fails its requests, not the server
                    console.print_exception()
                    for job in group:
                        job.send(("error", str(e)))

    def _run(self, jobs: list[Job]) -> None:
        self.batch_sizes.append(len(jobs))
        decode = self.tokenizer.decode

        def on_token(i: int, ids: list[int]) -> bool:
            job = jobs[i]
            text, stopped = truncate_at_stop(decode(ids), job.stop)
            safe = len(text) if stopped else len(text) - _held_back(text, job.stop)
            if safe > job.streamed and not text[:safe].endswith("\ufffd"):  # not mid UTF-8 character
                job.send(("delta", text[job.streamed : safe]))
                job.streamed = safe
            return stopped or len(ids) >= job.max_tokens

        out = generate_ids(
            self.model, [j.prompt_ids for j in jobs], max(j.max_tokens for j in jobs),
            jobs[0].temperature, jobs[0].top_p, self.tokenizer.eot_id, on_token,
        )
        for job, ids in zip(jobs, out):
            text, stopped = truncate_at_stop(decode(ids), job.stop)
            if len(text) > job.streamed:
                job.send(("delta", text[job.streamed :]))
            finish = "length" if len(ids) >= job.max_tokens and not stopped else "stop"
            job.send(("done", text, finish, len(job.prompt_ids), len(ids)))


class CompletionRequest(BaseModel):
    model: str | None = None
    prompt: str | list[str] = ""
    max_tokens: int | None = 16
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stop: str | list[str] | None = None
    stream: bool = False


class ChatRequest(BaseModel):
    model: str | None = None
    messages: list[dict]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    n: int = 1
    stop: str | list[str] | None = None
    stream: bool = False


def _error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=status)


def create_app(model, tokenizer, model_name: str, max_batch: int = 16) -> FastAPI:
    engine = BatchingEngine(model, tokenizer, max_batch)
    app = FastAPI(title="syllabus serve")
    app.state.engine = engine
    block_size = model.config.block_size

    def jobs_for(prompts: list[str], n: int, max_tokens: int, temperature: float, top_p: float, stop) -> list[Job]:
        stop = [stop] if isinstance(stop, str) else list(stop or [])
        loop = asyncio.get_running_loop()
        jobs = []
        for prompt in prompts:
            ids = tokenizer.encode(prompt) or [tokenizer.eot_id]  # an empty prompt starts a new document
            if len(ids) >= block_size:
                raise ValueError(f"prompt of {len(ids)} tokens does not fit the context of {block_size}")
            jobs += [Job(ids, max_tokens, temperature, top_p, stop, loop) for _ in range(n)]
        for job in jobs:
            engine.submit(job)
        return jobs

    async def finished(job: Job) -> tuple:
        while (event := await job.events.get())[0] == "delta":
            pass
        if event[0] == "error":
            raise RuntimeError(event[1])
        return event

    def usage(events: list[tuple]) -> dict:
        prompt = sum(e[3] for e in events)
        completion = sum(e[4] for e in events)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def sse(job: Job, chunk) -> StreamingResponse:
        async def events():
            while True:
                event = await job.events.get()
                if event[0] == "error":
                    yield f"data: {json.dumps({'error': {'message': event[1]}})}\n\n"
                    break
                delta, finish = (event[1], None) if event[0] == "delta" else ("", event[2])
                yield f"data: {json.dumps(chunk(delta, finish))}\n\n"
                if finish:
                    break
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": 0, "owned_by": "syllabus"}]}

    @app.post("/v1/completions")
    async def completions(req: CompletionRequest):
        prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
        if req.stream and len(prompts) * req.n != 1:
            return _error("stream=true supports one prompt with n=1")
        try:
            jobs = jobs_for(prompts, req.n, req.max_tokens or 16, req.temperature, req.top_p, req.stop)
        except ValueError as e:
            return _error(str(e))
        cid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": cid, "object": "text_completion", "created": created, "model": model_name}
        if req.stream:
            return sse(jobs[0], lambda delta, finish: {
                **head, "choices": [{"index": 0, "text": delta, "logprobs": None, "finish_reason": finish}]})
        done = [await finished(job) for job in jobs]
        choices = [{"index": i, "text": e[1], "logprobs": None, "finish_reason": e[2]} for i, e in enumerate(done)]
        return {**head, "choices": choices, "usage": usage(done)}

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatRequest):
        if req.stream and req.n != 1:
            return _error("stream=true supports n=1")
        stop = ([req.stop] if isinstance(req.stop, str) else list(req.stop or [])) + CHAT_STOP
        max_tokens = req.max_completion_tokens or req.max_tokens or 256
        try:
            jobs = jobs_for([chat_prompt(req.messages)], req.n, max_tokens, req.temperature, req.top_p, stop)
        except (ValueError, KeyError, TypeError) as e:
            return _error(f"bad messages or prompt: {e}")
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": cid, "created": created, "model": model_name}
        if req.stream:
            return sse(jobs[0], lambda delta, finish: {
                **head, "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": delta}, "finish_reason": finish}]})
        done = [await finished(job) for job in jobs]
        choices = [
            {"index": i, "message": {"role": "assistant", "content": e[1]}, "finish_reason": e[2]}
            for i, e in enumerate(done)
        ]
        return {**head, "object": "chat.completion", "choices": choices, "usage": usage(done)}

    return app


def serve(model_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, name: str | None = None,
          device: str | None = None, max_batch: int = 16) -> None:
    """Load a model dir (bad input fails here, before the port opens) and serve it until interrupted."""
    import uvicorn

    device = default_device(device)
    model, tokenizer = load_model_dir(model_dir, device=device)
    name = name or Path(model_dir).resolve().name
    app = create_app(model, tokenizer, name, max_batch=max_batch)
    console.print(f"serving {name} ({model.num_params() / 1e6:.1f}M params, {device}) at http://{host}:{port}/v1")
    uvicorn.run(app, host=host, port=port, log_level="warning")
