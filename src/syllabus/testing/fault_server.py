"""A small OpenAI-compatible server on 127.0.0.1 with fixed latency and injected faults.

It is the ground truth of the client benchmark, so it is plain asyncio (one write per response,
TCP_NODELAY, ~0.1 ms of CPU a request) rather than a web framework.

Tests and benchmarks start it as a real process (`FaultServer(...)`, or
`python -m syllabus.testing.fault_server --latency 0.05 --plan 429,500`) and point an `LLMClient`
at it. Faults:
  --plan 429,500,...  the i-th attempt of every distinct request body gets the i-th fault, then success
  --fault-rate R      each request independently gets a random fault with probability R
  --faults 500,...    the kinds --fault-rate draws from (--fault-rate 1 --faults 500: a server that only fails)
Fault kinds: 429 (with Retry-After), 500, timeout (no answer for --hang seconds), garbled (200 with
invalid JSON). Answers echo the prompt, or come from an offline backend (`--respond offline:NAME`;
`--register MODULE` first imports the module that registers it, e.g. syllabus.synth.offline).
GET /stats counts requests server side, including `duplicates`: requests whose exact body had
already been answered successfully; `duplicates_delivered`: those whose answer had surely reached
the client, since it sent its next request on that connection (what a resumed client must never
send: after a kill, the others were answered to a client that was gone); and `in_flight`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import json
import random
import socket
import subprocess
import sys
import time
from collections import Counter

import httpx

from syllabus.testing.local_servers import parse_head

FAULTS = ("429", "500", "timeout", "garbled")
REASONS = {200: "OK", 404: "Not Found", 411: "Length Required", 429: "Too Many Requests",
           500: "Internal Server Error", 504: "Gateway Timeout"}


class FaultyOpenAI:
    """The endpoints' logic: which fault the next attempt of a body gets, the answers, the counters."""

    def __init__(self, *, latency: float, plan: list[str], fault_rate: float, faults: list[str],
                 retry_after: float, hang: float, respond: str | None, register: list[str], seed: int):
        from syllabus.llm import offline_backend

        for module in register:  # named by the test: this test server imports no stage of its own
            importlib.import_module(module)

        self.latency, self.plan, self.fault_rate, self.faults = latency, plan, fault_rate, faults
        self.retry_after, self.hang = retry_after, hang
        self.answer = offline_backend(respond.removeprefix("offline:")) if respond else None
        self.rng = random.Random(seed)
        self.attempts: Counter[str] = Counter()
        self.answered: set[str] = set()
        # answers the client surely read: it sent its next request on the same connection
        self.delivered: set[str] = set()
        self.stats: Counter[str] = Counter()
        self.in_flight = 0  # requests received and not answered yet

    def choose_fault(self, body_hash: str) -> str | None:
        attempt = self.attempts[body_hash]
        self.attempts[body_hash] += 1
        if attempt < len(self.plan):
            return self.plan[attempt]
        if self.fault_rate and self.rng.random() < self.fault_rate:
            return self.rng.choice(self.faults)
        return None

    async def handle(self, method: str, path: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """(status, extra headers, JSON body) for one request."""
        if method == "GET" and path == "/stats":
            stats = dict(self.stats) | {"distinct": len(self.attempts), "in_flight": self.in_flight}
            return 200, {}, json.dumps(stats).encode()
        kind = {"/v1/chat/completions": "chat", "/v1/completions": "completion"}.get(path)
        if method != "POST" or kind is None:
            return 404, {}, b'{"error": {"message": "not found"}}'
        self.in_flight += 1
        try:
            return await self.complete(kind, raw)
        finally:
            self.in_flight -= 1

    async def complete(self, kind: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        body_hash = hashlib.sha256(raw).hexdigest()
        self.stats["requests"] += 1
        if body_hash in self.answered:
            self.stats["duplicates"] += 1
        if body_hash in self.delivered:
            self.stats["duplicates_delivered"] += 1
        fault = self.choose_fault(body_hash)
        await asyncio.sleep(self.latency)
        if fault:
            self.stats[f"fault_{fault}"] += 1
        if fault == "429":
            return 429, {"Retry-After": str(self.retry_after)}, b'{"error": {"message": "rate limited"}}'
        if fault == "500":
            return 500, {}, b'{"error": {"message": "injected server error"}}'
        if fault == "timeout":
            await asyncio.sleep(self.hang)
            return 504, {}, b'{"error": {"message": "too late"}}'
        if fault == "garbled":
            return 200, {}, b'{"choices": [{"message": {"content": "trunc'
        data = json.loads(raw)
        if kind == "chat":
            users = [m["content"] for m in data["messages"] if m.get("role") == "user"]
            prompt = users[-1] if users else data["messages"][-1]["content"]
        else:
            prompt = data["prompt"]
        text = self.answer(prompt, int(data.get("seed") or 0)) if self.answer else f"echo: {prompt}"
        self.answered.add(body_hash)
        self.stats["succeeded"] += 1
        choice = {"index": 0, "finish_reason": "stop"}
        choice |= {"message": {"role": "assistant", "content": text}} if kind == "chat" else {"text": text}
        usage = {"prompt_tokens": len(prompt) // 4 + 1, "completion_tokens": len(text) // 4 + 1}
        reply = {"id": body_hash[:12], "object": kind, "created": int(time.time()), "model": data.get("model"),
                 "choices": [choice], "usage": usage}
        return 200, {}, json.dumps(reply).encode()

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """HTTP/1.1 with keep-alive, request bodies by Content-Length (what OpenAI clients send)."""
        last_answer = None  # body hash of this connection's last successful answer
        try:
            while True:
                request_line, headers = parse_head(await reader.readuntil(b"\r\n\r\n"))
                if last_answer:
                    self.delivered.add(last_answer)
                    last_answer = None
                method, path, _ = request_line.split(" ", 2)
                if "transfer-encoding" in headers:
                    status, extra, body = 411, {}, b'{"error": {"message": "send a Content-Length"}}'
                else:
                    raw = await reader.readexactly(int(headers.get("content-length", 0)))
                    status, extra, body = await self.handle(method, path.split("?")[0], raw)
                    answer = hashlib.sha256(raw).hexdigest() if status == 200 and method == "POST" else None
                    last_answer = answer if answer in self.answered else None
                close = headers.get("connection", "").lower() == "close" or status == 411
                lines = [f"HTTP/1.1 {status} {REASONS[status]}", "Content-Type: application/json",
                         f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in extra.items())]
                if close:
                    lines.append("Connection: close")
                writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)  # one send per response
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away (or timed out waiting on us)
        finally:
            writer.close()


async def serve_forever(server: FaultyOpenAI, sock: socket.socket) -> None:
    listener = await asyncio.start_server(server.serve_connection, sock=sock, backlog=2048)
    async with listener:
        await listener.serve_forever()


def serve(args: argparse.Namespace) -> None:
    # proto must be named: asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP, and
    # without it a response written in two sends waits ~40 ms for the client's delayed ACK
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    server = FaultyOpenAI(latency=args.latency, plan=[f for f in args.plan.split(",") if f],
                          fault_rate=args.fault_rate, faults=args.faults.split(","), retry_after=args.retry_after,
                          hang=args.hang, respond=args.respond, register=args.register, seed=args.seed)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/v1", flush=True)
    try:
        asyncio.run(serve_forever(server, sock))
    except KeyboardInterrupt:
        pass


class FaultServer:
    """Start the server as a subprocess; `.url` is its base URL, `.stats()` its counters."""

    def __init__(self, *, latency: float = 0.0, plan: str = "", fault_rate: float = 0.0, faults: str = ",".join(FAULTS),
                 retry_after: float = 0.05, hang: float = 30.0, respond: str | None = None, register: str | None = None,
                 seed: int = 0):
        args = [sys.executable, "-m", "syllabus.testing.fault_server", "--latency", str(latency), "--plan", plan,
                "--fault-rate", str(fault_rate), "--faults", faults, "--retry-after", str(retry_after),
                "--hang", str(hang), "--seed", str(seed)]
        if respond:
            args += ["--respond", respond]
        if register:
            args += ["--register", register]
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
    parser.add_argument("--faults", default=",".join(FAULTS), help="the kinds --fault-rate draws from")
    parser.add_argument("--retry-after", type=float, default=0.05, help="Retry-After seconds sent with 429")
    parser.add_argument("--hang", type=float, default=30.0, help="seconds a 'timeout' fault stays silent")
    parser.add_argument("--respond", default=None, help="answer with offline:NAME instead of an echo")
    parser.add_argument("--register", action="append", default=[],
                        help="import this module first (it registers offline backends)")
    parser.add_argument("--seed", type=int, default=0)
    serve(parser.parse_args())


if __name__ == "__main__":
    main()
