"""Throughput of syllabus.llm against a local fixed-latency OpenAI-compatible server, and a kill-and-resume run.

    PYTHONPATH=src python benchmarks/synth_client.py [--latency 0.25] [--rounds 8]

At concurrency c and server latency L the theoretical maximum is c / L requests per second; the
client (with its sqlite reply cache on) is measured against it and against the `openai` SDK's
AsyncOpenAI client with a semaphore at the same concurrency (no cache, no ledger); client CPU time
per request is printed too, since on a busy machine CPU, not the client, caps throughput. The
`raw` column is what the server and machine allow: the least a client can do (one kept-alive
asyncio connection per slot, a request written as one bytes string, the reply read by its
Content-Length; no HTTP library, no retries, no cache), as a ratio to c / L. Each client
sends one request first (imports, first connection), untimed. Then the top concurrency is
spread over two servers. Then a client process is killed mid-run (SIGTERM: drains in-flight
requests; SIGKILL: dies at once), resumed, and the server counts requests whose body it had
already answered: 0 after SIGTERM; after SIGKILL at most the requests in flight at the kill, which
the server answered to a client that was gone, and none whose answer the client had read (the
server knows it did when the next request came on that connection).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from openai import AsyncOpenAI

from syllabus.llm import LLMClient
from syllabus.testing.fault_server import FaultServer

SRC = Path(__file__).resolve().parents[1] / "src"


def prompts(tag: str, n: int) -> list[str]:
    return [f"{tag} prompt {i}" for i in range(n)]


def ours(url: str | list[str], concurrency: int, n: int, cache_dir: str) -> tuple[float, float]:
    """(requests per second, client CPU milliseconds per request)."""
    client = LLMClient(url, model="m", concurrency=concurrency, cache_dir=cache_dir)
    client.complete_many([f"warm-up ours-{concurrency} {url}"], max_tokens=16)
    start, cpu = time.perf_counter(), time.process_time()
    replies = client.complete_many(prompts(f"ours-{concurrency}", n), max_tokens=16)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert all(r.ok for r in replies)
    return n / elapsed, 1000 * cpu / n


def openai_sdk(url: str, concurrency: int, n: int) -> tuple[float, float]:
    async def run() -> tuple[float, float]:
        client = AsyncOpenAI(base_url=url, api_key="none", max_retries=0)
        semaphore = asyncio.Semaphore(concurrency)

        async def one(prompt: str) -> None:
            async with semaphore:
                await client.completions.create(model="m", prompt=prompt, max_tokens=16)

        await one(f"warm-up sdk-{concurrency}")
        start, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(p) for p in prompts(f"sdk-{concurrency}", n)))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        await client.close()
        return n / elapsed, 1000 * cpu / n

    return asyncio.run(run())


def raw_socket(url: str, concurrency: int, n: int) -> float:
    """Requests per second of the floor client (see the module docstring)."""
    url = httpx.URL(url)
    head = (f"POST {url.path}/completions HTTP/1.1\r\nHost: {url.netloc.decode()}\r\n"
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n")

    async def run() -> float:
        todo = iter(prompts(f"raw-{concurrency}", n))

        async def slot() -> None:
            reader, writer = await asyncio.open_connection(url.host, url.port)
            for prompt in todo:  # shared: each slot takes the next prompt
                body = json.dumps({"model": "m", "prompt": prompt, "max_tokens": 16}).encode()
                writer.write(head.format(len(body)).encode() + body)
                reply_head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", reply_head)[1])
                json.loads(await reader.readexactly(length))
            writer.close()

        start = time.perf_counter()
        await asyncio.gather(*(slot() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)

    return asyncio.run(run())


CHILD = """
import sys
from syllabus.llm import LLMClient
client = LLMClient(sys.argv[1], model="m", cache_dir=sys.argv[2], concurrency=16)
try:
    client.complete_many([f"resume prompt {i}" for i in range(int(sys.argv[3]))], max_tokens=16)
except KeyboardInterrupt:
    sys.exit(130)
"""


def kill_and_resume(sig: signal.Signals, latency: float, n: int) -> dict[str, int]:
    with FaultServer(latency=latency) as server, tempfile.TemporaryDirectory() as cache:
        child = subprocess.Popen([sys.executable, "-c", CHILD, server.url, cache, str(n)],
                                 env={"PYTHONPATH": str(SRC)}, stderr=subprocess.DEVNULL)
        while (stats := server.stats()).get("requests", 0) < n // 3:
            time.sleep(0.01)
        child.send_signal(sig)
        child.wait()
        before = server.stats()["succeeded"]
        client = LLMClient(server.url, model="m", cache_dir=cache, concurrency=16)
        replies = client.complete_many([f"resume prompt {i}" for i in range(n)], max_tokens=16)
        after = server.stats()
    assert all(r.ok for r in replies)
    return {"answered_before_kill": before, "from_cache_on_resume": client.ledger.cached,
            "sent_on_resume": client.ledger.sent, "duplicate_requests": after.get("duplicates", 0),
            "in_flight_at_kill": stats["in_flight"],
            "duplicates_of_replies_the_client_read": after.get("duplicates_delivered", 0),
            "distinct_requests": after["distinct"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.25, help="server seconds per request")
    parser.add_argument("--rounds", type=int, default=8, help="requests per concurrency slot")
    args = parser.parse_args()

    print(f"server latency {args.latency * 1000:.0f} ms; {args.rounds} requests per concurrency slot")
    print(f"{'concurrency':>11} {'theoretical':>12} {'syllabus.llm':>13} {'ratio':>6} {'raw':>6} {'openai SDK':>11}"
          f" {'vs SDK':>7} {'CPU ms/req ours':>16} {'SDK':>5}")
    with FaultServer(latency=args.latency) as server, tempfile.TemporaryDirectory() as cache:
        for concurrency in (1, 16, 64):
            n = concurrency * args.rounds
            theoretical = concurrency / args.latency
            ours_rate, ours_cpu = ours(server.url, concurrency, n, cache)
            sdk_rate, sdk_cpu = openai_sdk(server.url, concurrency, n)
            raw_rate = raw_socket(server.url, concurrency, n)
            print(f"{concurrency:>11} {theoretical:>10.1f}/s {ours_rate:>11.1f}/s {ours_rate / theoretical:>6.3f} "
                  f"{raw_rate / theoretical:>6.3f} {sdk_rate:>9.1f}/s {ours_rate / sdk_rate:>7.3f} {ours_cpu:>16.2f}"
                  f" {sdk_cpu:>5.2f}")
    with FaultServer(latency=args.latency) as a, FaultServer(latency=args.latency) as b, \
            tempfile.TemporaryDirectory() as cache:
        n = 64 * args.rounds
        rate, cpu = ours([a.url, b.url], 32, n, cache)
        print(f"{'2 x 32':>11} {64 / args.latency:>10.1f}/s {rate:>11.1f}/s {rate / (64 / args.latency):>6.3f} "
              f"{'':>6} {'':>11} {'':>7} {cpu:>16.2f}   (two servers, 32 requests in flight at each)")
    for sig in (signal.SIGTERM, signal.SIGKILL):
        result = kill_and_resume(sig, latency=0.02, n=600)
        print(f"kill-and-resume ({sig.name}): " + ", ".join(f"{k} {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
