"""A small OpenAI-compatible server on 127.0.0.1 with fixed latency and injected faults.

Tests and benchmarks start it as a real process (`FaultServer(...)`, or
`python -m syllabus.testing.fault_server --latency 0.05 --plan 429,500`) and point an `LLMClient`
at it. Faults:
  --plan 429,500,...  the i-th attempt of every distinct request body gets the i-th fault, then success
  --fault-rate R      each request independently gets a random fault with probability R
Fault kinds: 429 (with Retry-After), 500, timeout (no answer for --hang seconds), garbled (200 with
invalid JSON). Answers echo the prompt, or come from an offline backend (`--respond offline:NAME`).
GET /stats counts requests server side, including `duplicates`: requests whose exact body had
already been answered successfully (what a resumed client must never send).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import socket
import subprocess
import sys
import time
from collections import Counter

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

FAULTS = ("429", "500", "timeout", "garbled")


def make_app(*, latency: float, plan: list[str], fault_rate: float, retry_after: float, hang: float,
             respond: str | None, seed: int):

    from syllabus.llm import offline_backend

    app = FastAPI()
    rng = random.Random(seed)
    attempts: Counter[str] = Counter()
    answered: set[str] = set()
    stats: Counter[str] = Counter()
    answer = offline_backend(respond.removeprefix("offline:")) if respond else None

    def choose_fault(body_hash: str) -> str | None:
        attempt = attempts[body_hash]
        attempts[body_hash] += 1
        if attempt < len(plan):
            return plan[attempt]
        if fault_rate and rng.random() < fault_rate:
            return rng.choice(FAULTS)
        return None

    async def complete(request: Request, kind: str):
        raw = await request.body()
        body_hash = hashlib.sha256(raw).hexdigest()
        stats["requests"] += 1
        if body_hash in answered:
            stats["duplicates"] += 1
        fault = choose_fault(body_hash)
        await asyncio.sleep(latency)
        if fault:
            stats[f"fault_{fault}"] += 1
        if fault == "429":
            return JSONResponse({"error": {"message": "rate limited"}}, status_code=429,
                                headers={"Retry-After": str(retry_after)})
        if fault == "500":
            return JSONResponse({"error": {"message": "injected server error"}}, status_code=500)
        if fault == "timeout":
            await asyncio.sleep(hang)
            return JSONResponse({"error": {"message": "too late"}}, status_code=504)
        if fault == "garbled":
            return Response('{"choices": [{"message": {"content": "trunc', media_type="application/json")
        data = json.loads(raw)
        if kind == "chat":
            users = [m["content"] for m in data["messages"] if m.get("role") == "user"]
            prompt = users[-1] if users else data["messages"][-1]["content"]
        else:
            prompt = data["prompt"]
        sample = int(data.get("seed") or 0)
        text = answer(prompt, sample) if answer else f"echo: {prompt}"
        answered.add(body_hash)
        stats["succeeded"] += 1
        choice = {"index": 0, "finish_reason": "stop"}
        choice |= {"message": {"role": "assistant", "content": text}} if kind == "chat" else {"text": text}
        usage = {"prompt_tokens": len(prompt) // 4 + 1, "completion_tokens": len(text) // 4 + 1}
        return {"id": body_hash[:12], "object": kind, "created": int(time.time()), "model": data.get("model"),
                "choices": [choice], "usage": usage}

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await complete(request, "chat")

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await complete(request, "completion")

    @app.get("/stats")
    async def get_stats():
        return dict(stats) | {"distinct": len(attempts)}

    return app


def serve(args: argparse.Namespace) -> None:
    import uvicorn

    # proto must be named: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and
    # without it the response body (uvicorn's second send) waits ~40 ms for the client's delayed ACK
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    app = make_app(latency=args.latency, plan=[f for f in args.plan.split(",") if f],
                   fault_rate=args.fault_rate, retry_after=args.retry_after, hang=args.hang,
                   respond=args.respond, seed=args.seed)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
    config = uvicorn.Config(app, log_level="warning", backlog=2048, timeout_keep_alive=60)
    uvicorn.Server(config).run(sockets=[sock])


class FaultServer:
    """Start the server as a subprocess; `.url` is its base URL, `.stats()` its counters."""

    def __init__(self, *, latency: float = 0.0, plan: str = "", fault_rate: float = 0.0,
                 retry_after: float = 0.05, hang: float = 30.0, respond: str | None = None, seed: int = 0):
        args = [sys.executable, "-m", "syllabus.testing.fault_server", "--latency", str(latency),
                "--plan", plan, "--fault-rate", str(fault_rate), "--retry-after", str(retry_after),
                "--hang", str(hang), "--seed", str(seed)]
        if respond:
            args += ["--respond", respond]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().strip()
        if not self.url:
            self.process.kill()
            raise RuntimeError("fault server did not start")
        self._wait_ready()

    def _wait_ready(self) -> None:
        for _ in range(200):
            try:
                httpx.get(self.url.removesuffix("/v1") + "/stats", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError("fault server does not answer")

    def stats(self) -> dict[str, int]:
        return httpx.get(self.url.removesuffix("/v1") + "/stats", timeout=10).json()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)

    def __enter__(self) -> FaultServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--plan", default="", help=f"comma-separated faults per attempt, from {FAULTS}")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument("--retry-after", type=float, default=0.05, help="Retry-After seconds sent with 429")
    parser.add_argument("--hang", type=float, default=30.0, help="seconds a 'timeout' fault stays silent")
    parser.add_argument("--respond", default=None, help="answer with offline:NAME instead of an echo")
    parser.add_argument("--seed", type=int, default=0)
    serve(parser.parse_args())


if __name__ == "__main__":
    main()
