import concurrent.futures
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import openai
import pytest
import torch
import uvicorn

from syllabus.model.generate import generate, load_model_dir
from syllabus.serve import create_app

pytestmark = pytest.mark.usefixtures("one_thread")

PROMPTS = ["def add(a, b):\n", "class Stack:\n", "import math\n", "for i in range(10):\n", "x = ", "def area(r):"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, make_model_dir):
    return make_model_dir(tmp_path_factory.mktemp("serve") / "model", n_layer=2, seed=7)


@pytest.fixture(scope="module")
def server(model_dir):
    torch.set_num_threads(1)
    model, tokenizer = load_model_dir(model_dir)
    app = create_app(model, tokenizer, "tiny-test")
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0)
    yield client, app, model, tokenizer
    srv.should_exit = True
    thread.join(timeout=10)


def test_completions_match_local_generation(server):
    client, _, model, tokenizer = server
    assert [m.id for m in client.models.list().data] == ["tiny-test"]
    r = client.completions.create(model="tiny-test", prompt=PROMPTS[0], max_tokens=12, temperature=0)
    expected = generate(model, tokenizer, [PROMPTS[0]], max_new_tokens=12)[0]
    assert r.choices[0].text == expected
    assert r.usage.prompt_tokens == len(tokenizer.encode(PROMPTS[0]))
    assert r.choices[0].finish_reason in ("length", "stop")

    r = client.completions.create(model="tiny-test", prompt=PROMPTS[:2], max_tokens=12, temperature=0, n=2)
    assert [c.text for c in r.choices] == [expected, expected] + generate(model, tokenizer, [PROMPTS[1]], 12) * 2

    stop = expected[3:5]
    r = client.completions.create(model="tiny-test", prompt=PROMPTS[0], max_tokens=12, temperature=0, stop=[stop])
    assert r.choices[0].text == expected[: expected.index(stop)] and r.choices[0].finish_reason == "stop"


def test_streaming_equals_one_shot(server):
    client, *_ = server
    whole = client.completions.create(model="tiny-test", prompt=PROMPTS[2], max_tokens=16, temperature=0).choices[0].text
    chunks = list(client.completions.create(model="tiny-test", prompt=PROMPTS[2], max_tokens=16, temperature=0, stream=True))
    assert "".join(c.choices[0].text for c in chunks) == whole
    assert chunks[-1].choices[0].finish_reason is not None and len(chunks) > 2

    messages = [{"role": "system", "content": "You write Python."}, {"role": "user", "content": "Add two numbers."}]
    chat = client.chat.completions.create(model="tiny-test", messages=messages, max_tokens=16, temperature=0)
    stream = client.chat.completions.create(model="tiny-test", messages=messages, max_tokens=16, temperature=0, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == chat.choices[0].message.content
    assert chat.choices[0].message.role == "assistant"


def test_concurrent_requests_are_batched(server):
    client, app, model, tokenizer = server
    expected = generate(model, tokenizer, PROMPTS, max_new_tokens=24)
    before = len(app.state.engine.batch_sizes)

    def ask(prompt):
        return client.completions.create(model="tiny-test", prompt=prompt, max_tokens=24, temperature=0).choices[0].text

    with concurrent.futures.ThreadPoolExecutor(len(PROMPTS)) as pool:
        assert list(pool.map(ask, PROMPTS)) == expected
    assert max(app.state.engine.batch_sizes[before:]) > 1


def test_bad_requests_get_400(server):
    client, *_ = server
    with pytest.raises(openai.BadRequestError, match="does not fit the context"):
        client.completions.create(model="tiny-test", prompt="x " * 2000, max_tokens=4)
    with pytest.raises(openai.BadRequestError, match="one prompt with n=1"):
        list(client.completions.create(model="tiny-test", prompt=["a", "b"], max_tokens=4, stream=True))


def test_serve_cli_bad_model_dir_exits_2(model_dir, tmp_path, cli):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text((model_dir / "config.json").read_text())
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not safetensors")
    r = cli("serve", "--model", str(tmp_path / "m"))
    assert r.returncode == 2 and "model.safetensors" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
def test_serve_cli_answers(model_dir):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "syllabus", "serve", "--model", str(model_dir), "--port", str(port), "--device", "cpu"],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")},
        stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.time() + 120
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/v1/models")
                break
            except httpx.ConnectError:
                assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else "timeout"
                time.sleep(0.3)
        assert r.json()["data"][0]["id"] == "model"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
