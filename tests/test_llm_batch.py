"""The OpenAI Batch API mode (`mode: batch`) against a local /v1/files + /v1/batches server, and budgets
that refuse unknown prices."""

import subprocess
import sys
import time

import openai
import pytest

from syllabus.errors import BadInput
from syllabus.llm import BUDGET_EXHAUSTED, LLMClient, Price, price_of
from syllabus.testing.batch_server import BatchServer

MODEL = "gpt-4o-mini"
QUESTIONS = [[{"role": "user", "content": f"question {i}"}] for i in range(6)]


def batch_client(server, cache_dir, **options):
    return LLMClient(server.url, model=MODEL, mode="batch", batch_poll_s=0.01, backoff=0.01, cache_dir=cache_dir,
                     **options)


def test_the_openai_sdk_runs_a_batch_against_the_local_server():
    line = (b'{"custom_id": "q1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "m", '
            b'"messages": [{"role": "user", "content": "hi"}]}}\n')
    with BatchServer(polls=2) as server:
        sdk = openai.OpenAI(base_url=server.url, api_key="test")
        uploaded = sdk.files.create(file=("requests.jsonl", line), purpose="batch")
        batch = sdk.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
        assert sdk.batches.retrieve(batch.id).status == "in_progress"
        done = sdk.batches.retrieve(batch.id)
        assert done.status == "completed" and done.request_counts.completed == 1
        result = sdk.files.content(done.output_file_id).text
    assert '"custom_id": "q1"' in result and "echo: hi" in result


def test_batch_replies_are_cached_billed_at_the_batch_price_and_an_online_rerun_sends_nothing(tmp_path):
    with BatchServer() as server:
        client = batch_client(server, tmp_path)
        replies = client.chat_many(QUESTIONS, temperature=0.0)
        assert [r.text for r in replies] == [f"echo: question {i}" for i in range(6)]
        assert server.stats["batches"] == 1 and server.stats["lines"] == 6
        tokens = client.ledger.prompt_tokens, client.ledger.completion_tokens
        assert client.ledger.cost_usd == pytest.approx(price_of(MODEL).batch().cost(*tokens))
        assert client.ledger.cost_usd == pytest.approx(price_of(MODEL).cost(*tokens) / 2)
        # the server has no /chat/completions: an online request would fail
        online = LLMClient(server.url, model=MODEL, cache_dir=tmp_path, max_retries=0)
        again = online.chat_many(QUESTIONS, temperature=0.0)
    assert [r.text for r in again] == [r.text for r in replies]
    assert online.ledger.sent == 0 and online.ledger.cached == 6


def test_failed_and_expired_lines_are_retried_in_the_next_batch(tmp_path):
    with BatchServer(fail_lines=2) as server:
        client = batch_client(server, tmp_path / "a")
        assert all(r.ok for r in client.chat_many(QUESTIONS))
        assert server.stats["batches"] == 2 and server.stats["lines"] == 8 and client.ledger.retries == 2
    with BatchServer(expire_after=4) as server:
        client = batch_client(server, tmp_path / "b")
        assert all(r.ok for r in client.chat_many(QUESTIONS))
        # 6 lines, 4 answered before expiry; then 2, both answered
        assert server.stats["batches"] == 2 and client.ledger.succeeded == 6
        assert server.stats["duplicate_lines"] == 0


RUN_BATCH = """
import sys
from syllabus.llm import LLMClient
client = LLMClient(sys.argv[1], model="gpt-4o-mini", mode="batch", batch_poll_s=0.01, cache_dir=sys.argv[2])
client.chat_many([[{"role": "user", "content": f"question {i}"}] for i in range(6)])
"""


def test_a_killed_run_resumes_polling_its_batch_instead_of_paying_again(tmp_path):
    with BatchServer() as server:
        server.hold.set()  # the batch stays in progress while the first run polls it
        first = subprocess.Popen([sys.executable, "-c", RUN_BATCH, server.url, str(tmp_path)])
        try:
            deadline = time.monotonic() + 60
            while server.stats["batches"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.stats["batches"] == 1
        finally:
            first.kill()
            first.wait()
        server.hold.clear()
        client = batch_client(server, tmp_path)
        replies = client.chat_many(QUESTIONS)
        assert all(r.ok for r in replies) and client.ledger.succeeded == 6
        assert server.stats["batches"] == 1 and server.stats["lines"] == 6
        assert client.cache.open_batches() == []


def test_a_batch_budget_reserves_worst_cases_and_sends_only_what_fits(tmp_path):
    with BatchServer() as server:
        # worst case of one line: ~4 prompt tokens + 1000 completion tokens at the batch price of $1/M output
        client = batch_client(server, tmp_path, budget_usd=0.0035, prices={MODEL: [2.0, 2.0]})
        replies = client.chat_many(QUESTIONS, max_tokens=1000)
    assert sum(r.ok for r in replies) == 3 and [r.error for r in replies[3:]] == [BUDGET_EXHAUSTED] * 3
    assert server.stats["lines"] == 3 and client.ledger.cost_usd <= 0.0035


def test_a_budget_for_a_model_without_a_price_is_refused_before_sending(tmp_path):
    with pytest.raises(BadInput, match="no price known for model 'my-own-model'"):
        LLMClient("http://127.0.0.1:9/v1", model="my-own-model", budget_usd=5.0)
    # a price from the recipe's table makes it known; no budget needs no price
    assert LLMClient("http://127.0.0.1:9/v1", model="my-own-model", budget_usd=5.0,
                     prices={"my-own": {"input": 1.0, "output": 3.0}}).price == Price(1.0, 3.0)
    assert LLMClient("http://127.0.0.1:9/v1", model="my-own-model").price is None


@pytest.mark.parametrize("command", [
    ["synth", "exercises", "--out", "{tmp}/ex", "--teacher", "{url}"],
    ["curate", "annotate", "--data", "{tmp}/none", "--out", "{tmp}/labels.jsonl", "--judge", "{url}"],
    ["eval", "grade", "--samples", "{tmp}/samples.jsonl", "--judge", "{url}"],
])
def test_every_paying_command_refuses_a_budget_it_cannot_price(cli, tmp_path, command):
    with BatchServer() as server:
        args = [a.format(tmp=tmp_path, url=server.url) for a in command]
        result = cli(*args, "--model", "my-own-model", "--budget-usd", "1")
        assert server.stats["batches"] == 0
    assert result.returncode == 2, result.stderr
    assert "no price known for model 'my-own-model'" in result.stderr and "Traceback" not in result.stderr


def test_batch_mode_needs_an_http_endpoint():
    with pytest.raises(BadInput, match="mode batch needs one http"):
        LLMClient("offline:canonical", mode="batch")


def test_synth_in_batch_mode_writes_the_same_dataset_as_online(tmp_path):
    import syllabus.synth.offline  # noqa: F401  registers offline:textbook
    from syllabus.llm import offline_backend
    from syllabus.synth.textbook import TextbookParams, synth_textbook

    params = {"model": MODEL, "n": 8, "batch_size": 4, "budget_usd": 1.0}
    online = synth_textbook(TextbookParams(teacher="offline:textbook", **params), tmp_path / "online")
    with BatchServer(offline_backend("textbook")) as server:
        batched = synth_textbook(TextbookParams(teacher=server.url, mode="batch", batch_poll_s=0.01, **params),
                                 tmp_path / "batch")
        assert server.stats["batches"] == 2  # one per output shard
    assert [r["text"] for r in batched.records()] == [r["text"] for r in online.records()]
    assert batched.manifest["summary"]["synth.textbook"]["llm"]["cost_usd"] > 0
