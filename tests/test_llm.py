"""The shared LLM client against a real fault-injecting server on 127.0.0.1."""

import asyncio
import json
import re
import signal
import subprocess
import sys
import time

import pytest

from syllabus.errors import BadInput
from syllabus.llm import BUDGET_EXHAUSTED, LLMClient, Price, price_of, register_offline
from syllabus.testing.fault_server import FaultServer
from syllabus.testing.local_servers import ForwardProxy, ThreadedServer

from conftest import REPO


def conversations(n: int, tag: str = "q") -> list[list[dict]]:
    return [[{"role": "system", "content": "be brief"}, {"role": "user", "content": f"{tag} {i}"}] for i in range(n)]


def test_every_fault_kind_is_retried_until_success(tmp_path):
    with FaultServer(plan="429,500,garbled,timeout", hang=1) as server:
        client = LLMClient(server.url, model="m", concurrency=8, cache_dir=tmp_path, timeout=0.5, backoff=0.01)
        replies = client.chat_many(conversations(6), max_tokens=16)
        stats = server.stats()
    assert [r.text for r in replies] == [f"echo: q {i}" for i in range(6)]
    assert all(not r.cached and r.provenance["model"] == "m" and len(r.provenance["prompt_hash"]) == 16
               for r in replies)
    assert {k: stats[k] for k in ("fault_429", "fault_500", "fault_garbled", "fault_timeout")} == \
        {"fault_429": 6, "fault_500": 6, "fault_garbled": 6, "fault_timeout": 6}
    assert client.ledger.retries == 24 and client.ledger.succeeded == 6 and client.ledger.failed == 0


def test_429_retry_after_is_honoured():
    with FaultServer(plan="429", retry_after=0.5) as server:
        client = LLMClient(server.url, concurrency=4, backoff=0.01)
        start = time.perf_counter()
        replies = client.complete_many([f"p {i}" for i in range(4)], max_tokens=8)
        elapsed = time.perf_counter() - start
        stats = server.stats()
    assert all(r.ok for r in replies) and stats["fault_429"] == 4 and stats["requests"] == 8
    assert elapsed >= 0.5  # nothing went back to the server before its Retry-After


def test_persistent_failures_come_back_as_errors_without_raising():
    with FaultServer(plan="500,500,500") as server:
        client = LLMClient(server.url, concurrency=2, max_retries=1, backoff=0.01)
        replies = client.complete_many(["a", "b"], max_tokens=8)
    assert [r.text for r in replies] == [None, None]
    assert all("server error (500)" in r.error and "2 attempts" in r.error for r in replies)
    assert client.ledger.errors == {"server error": 2}


def test_endpoint_down_is_an_error_per_request_not_a_crash():
    client = LLMClient("http://127.0.0.1:9/v1", max_retries=1, backoff=0.01, timeout=1)
    replies = client.complete_many(["x"])
    assert replies[0].text is None and "connection error" in replies[0].error


def test_rerun_is_served_from_cache_with_zero_requests_resent(tmp_path):
    with FaultServer() as server:
        first = LLMClient(server.url, model="m", cache_dir=tmp_path, concurrency=4)
        a = first.chat_many(conversations(20), temperature=0.0, max_tokens=32)
        sent = server.stats()["requests"]
        second = LLMClient(server.url, model="m", cache_dir=tmp_path, concurrency=4)
        b = second.chat_many(conversations(20), temperature=0.0, max_tokens=32)
        # a different sampling param or sample index is a different request
        c = second.chat_many(conversations(2), samples=[1, 1], temperature=0.0, max_tokens=32)
        stats = server.stats()
    assert sent == 20 and [r.text for r in a] == [r.text for r in b]
    assert all(r.cached for r in b) and second.ledger.cached == 20
    assert stats["requests"] == 22 and stats.get("duplicates", 0) == 0 and not any(r.cached for r in c)


def test_a_rerun_larger_than_one_cache_query_is_served_whole_from_cache(tmp_path):
    register_offline("same", lambda prompt, sample: prompt)
    prompts = [f"p {i}" for i in range(1200)]  # more keys than one sqlite query takes
    LLMClient("offline:same", cache_dir=tmp_path).complete_many(prompts)
    again = LLMClient("offline:same", cache_dir=tmp_path)
    replies = again.complete_many(prompts)
    assert again.ledger.cached == 1200 and again.ledger.sent == 0 and [r.text for r in replies] == prompts


def test_budget_cap_stops_cleanly_and_is_never_exceeded():
    with FaultServer() as server:
        # $1 per 1k tokens either way; worst case of one request ~ (prompt/4 + 10) tokens ~ $0.013
        client = LLMClient(server.url, model="m", concurrency=1, budget_usd=0.05, prices=(1000.0, 1000.0))
        replies = client.complete_many([f"prompt {i}" for i in range(10)], max_tokens=10)
        stats = server.stats()
    ok = [r for r in replies if r.ok]
    assert 2 <= len(ok) < 10 and stats["requests"] == len(ok)
    assert all(r.error == BUDGET_EXHAUSTED for r in replies if not r.ok)
    assert client.ledger.cost_usd <= 0.05


def test_offline_backend_and_unknown_endpoints():
    register_offline("shout", lambda prompt, sample: f"{prompt.upper()} #{sample}")
    client = LLMClient("offline:shout")
    assert [r.text for r in client.complete_many(["hi", "hi"], samples=[0, 1])] == ["HI #0", "HI #1"]
    with pytest.raises(BadInput, match=r"offline:nope: no such offline backend \(registered: .*canonical.*shout"):
        LLMClient("offline:nope")
    with pytest.raises(BadInput, match="unknown endpoint"):
        LLMClient("ftp://x")
    with pytest.raises(BadInput, match="several endpoints must all be http"):
        LLMClient(["http://127.0.0.1:9/v1", "offline:shout"])


def test_the_llm_service_imports_no_stage_and_synth_registers_its_offline_teachers():
    script = ("import sys\n"
              "from syllabus.llm import LLMClient\n"
              "print(sorted(m for m in sys.modules if m.startswith('syllabus.synth')))\n"
              "import syllabus.synth.offline\n"
              "print(LLMClient('offline:exercises').complete_many(['Function name: add_numbers'])[0].ok)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:2] == ["[]", "True"]


def test_prices_by_longest_prefix_overridable_and_unknown_is_not_free():
    assert price_of("gpt-4o-mini-2024-07-18") == Price(0.15, 0.60)
    assert price_of("gpt-4-0613") == Price(30.0, 60.0)
    assert price_of("my-teacher") is None
    assert price_of("my-teacher", {"my-teacher": Price(1.0, 2.0)}).batch() == Price(0.5, 1.0, 1.0)
    assert Price(2.0, 4.0).cost(1_000_000, 500_000) == 4.0
    assert LLMClient("http://127.0.0.1:9/v1", model="my-teacher").price is None
    assert LLMClient("offline:canonical").price.free


KILLABLE = """
import sys
from syllabus.llm import LLMClient
client = LLMClient(sys.argv[1], model="m", cache_dir=sys.argv[2], concurrency=8)
try:
    client.complete_many([f"prompt {i}" for i in range(200)], max_tokens=8)
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_kill_and_resume_resends_nothing_that_succeeded(tmp_path, sig):
    with FaultServer(latency=0.02) as server:
        child = subprocess.Popen([sys.executable, "-c", KILLABLE, server.url, str(tmp_path)],
                                 env={"PYTHONPATH": str(REPO / "src")}, stderr=subprocess.DEVNULL)
        while server.stats().get("requests", 0) < 40:
            time.sleep(0.02)
        child.send_signal(sig)
        child.wait(timeout=30)
        answered_before = server.stats()["succeeded"]
        client = LLMClient(server.url, model="m", cache_dir=tmp_path, concurrency=8)
        replies = client.complete_many([f"prompt {i}" for i in range(200)], max_tokens=8)
        stats = server.stats()
    assert all(r.ok for r in replies) and 40 <= answered_before < 200
    assert stats["distinct"] == 200
    if sig == signal.SIGTERM:  # drained: every answered request was cached
        assert child.returncode == 130 and stats.get("duplicates", 0) == 0
        assert client.ledger.cached == answered_before
    else:  # killed outright: at most the requests in flight at the kill are sent again
        assert stats.get("duplicates", 0) <= 8 and stats.get("duplicates_delivered", 0) == 0


def test_local_model_dir_backend_generates_in_process_and_caches(tmp_path, tiny_model_dir):
    client = LLMClient(f"local:{tiny_model_dir}", cache_dir=tmp_path / "cache")
    replies = client.complete_many(["def add(a, b):", "def f1(x):", "def add(a, b):"], samples=[0, 0, 1],
                                   max_tokens=8, temperature=1.0)
    assert all(r.ok and isinstance(r.text, str) for r in replies) and client.ledger.succeeded == 3
    again = LLMClient(f"local:{tiny_model_dir}", cache_dir=tmp_path / "cache")
    assert [r.text for r in again.complete_many(["def add(a, b):"], samples=[1], max_tokens=8, temperature=1.0)] \
        == [replies[2].text]
    assert again.ledger.cached == 1 and again.backend.local is None  # served from cache: the model was never loaded
    with pytest.raises(BadInput, match="no such model dir"):
        LLMClient(f"local:{tmp_path / 'nope'}")


def test_several_endpoints_share_the_work_and_fail_over_from_a_failing_one(tmp_path):
    with FaultServer(latency=0.01) as a, FaultServer(latency=0.01) as b, \
            FaultServer(fault_rate=1.0, faults="500") as failing:
        # a list, comma-separated strings, or both; port 9 refuses connections
        client = LLMClient([f"{a.url},{failing.url}", b.url, "http://127.0.0.1:9/v1"], model="m",
                           cache_dir=tmp_path, concurrency=4, backoff=0.01)
        replies = client.complete_many([f"prompt {i}" for i in range(120)], max_tokens=8)
        served = {a.url: a.stats(), b.url: b.stats(), failing.url: failing.stats()}
        again = LLMClient([b.url, a.url], model="m", cache_dir=tmp_path, concurrency=4)
        rerun = again.complete_many([f"prompt {i}" for i in range(120)], max_tokens=8)
        resent = a.stats()["requests"] + b.stats()["requests"] - served[a.url]["requests"] - served[b.url]["requests"]
    assert all(r.ok for r in replies) and client.ledger.failed == 0
    # the failing server is tried, then rested with a growing back-off (each probe costs a retry)
    assert 4 <= served[failing.url]["requests"] <= 20 and served[failing.url].get("succeeded", 0) == 0
    answered = {url: stats.get("succeeded", 0) for url, stats in served.items()}
    assert answered[a.url] > 20 and answered[b.url] > 20 and answered[a.url] + answered[b.url] == 120
    assert served[a.url].get("duplicates", 0) == served[b.url].get("duplicates", 0) == 0
    assert client.ledger.by_endpoint == {url: n for url, n in answered.items() if n}
    assert {r.provenance["endpoint"] for r in replies} == {a.url, b.url}
    # one shared cache whatever server answered: the re-run sends nothing and keeps who answered
    assert resent == 0 and again.ledger.cached == 120 and again.ledger.sent == 0
    assert [r.provenance["endpoint"] for r in rerun] == [r.provenance["endpoint"] for r in replies]


def test_several_endpoints_killed_and_resumed_answer_each_request_once(tmp_path):
    with FaultServer(latency=0.1) as a, FaultServer(latency=0.1) as b:
        child = subprocess.Popen([sys.executable, "-c", KILLABLE, f"{a.url},{b.url}", str(tmp_path)],
                                 env={"PYTHONPATH": str(REPO / "src")}, stderr=subprocess.DEVNULL)
        while a.stats().get("requests", 0) + b.stats().get("requests", 0) < 60:
            time.sleep(0.02)
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
        client = LLMClient([a.url, b.url], model="m", cache_dir=tmp_path, concurrency=8)
        replies = client.complete_many([f"prompt {i}" for i in range(200)], max_tokens=8)
        stats = [a.stats(), b.stats()]
    assert child.returncode == 130 and all(r.ok for r in replies) and 60 <= client.ledger.cached < 200
    assert sum(s["succeeded"] for s in stats) == 200 and sum(s.get("duplicates", 0) for s in stats) == 0


def test_http_proxy_all_proxy_and_no_proxy_are_honoured(monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    prompts = [f"p {i}" for i in range(6)]
    with FaultServer() as server, ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        through_proxy = LLMClient(server.url, concurrency=4).complete_many(prompts, max_tokens=8)
        assert proxy.requests == 6
        monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
        direct = LLMClient(server.url, concurrency=4).complete_many(prompts, max_tokens=8)
        assert proxy.requests == 6
        monkeypatch.delenv("HTTP_PROXY")
        monkeypatch.delenv("NO_PROXY")
        monkeypatch.setenv("all_proxy", proxy.url)
        through_all_proxy = LLMClient(server.url, concurrency=4).complete_many(prompts, max_tokens=8)
        assert proxy.requests == 12
        monkeypatch.setenv("all_proxy", "socks5://127.0.0.1:1080")
        with pytest.raises(BadInput, match="only http:// and https:// proxies"):
            LLMClient(server.url).complete_many(prompts[:1])
        monkeypatch.delenv("all_proxy")
        stats = server.stats()
    assert all(r.ok for r in through_proxy + direct + through_all_proxy)
    assert [r.text for r in through_proxy] == [r.text for r in direct] == [f"echo: {p}" for p in prompts]
    assert stats["requests"] == 18


def test_chunked_replies_on_connections_the_server_closes_are_read_whole():
    async def answer(reader, writer):  # one reply per connection, in two chunks, then the server hangs up
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(int(re.search(rb"(?i)content-length: *(\d+)", head)[1]))
        reply = json.dumps({"choices": [{"text": "chunked: " + json.loads(body)["prompt"]}]}).encode()
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (reply[:10], reply[10:]))
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    with ThreadedServer(answer) as server:
        client = LLMClient(f"http://127.0.0.1:{server.port}/v1", concurrency=3)
        replies = client.complete_many([f"p {i}" for i in range(10)])
    assert [r.text for r in replies] == [f"chunked: p {i}" for i in range(10)]
    assert client.ledger.retries == 0


def test_chat_many_works_inside_a_running_event_loop(tmp_path):
    """A notebook cell already runs in an event loop: the batch API must not need one of its own."""
    with FaultServer() as server:
        client = LLMClient(server.url, model="m", cache_dir=tmp_path, concurrency=4)

        async def notebook_cell():
            first = client.chat_many(conversations(5), temperature=0.0, max_tokens=16)
            await asyncio.sleep(0)  # the cell's loop is still there and running
            again = client.chat_many(conversations(5), temperature=0.0, max_tokens=16)
            return first, again

        first, again = asyncio.run(notebook_cell())
        assert server.stats()["requests"] == 5
    assert all(r.ok for r in first) and all(r.cached for r in again)
    assert [r.text for r in first] == [r.text for r in again]
