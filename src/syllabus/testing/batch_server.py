"""A local stand-in for the OpenAI Batch API on 127.0.0.1: /v1/files and /v1/batches, close enough
that the official `openai` SDK's files.create, batches.create, batches.retrieve and files.content
work against it.

    with BatchServer(answer=offline_backend("exercises")) as server:   # server.url: "http://127.0.0.1:<port>/v1"
        LLMClient(server.url, model="gpt-4o-mini", mode="batch", batch_poll_s=0.01).chat_many(...)

A batch is answered on the `polls`-th retrieve after its creation (while `hold` is set it stays
in_progress): each line by `answer(prompt, seed)` (default: an echo), its result in the output file
and failures in the error file, as OpenAI writes them. Faults: `fail_lines` (the first that many
lines the server ever sees fail once with a 500) and `expire_after` (a batch answers that many
lines, then expires; the rest are `batch_expired` errors). `stats` counts batches, lines, and
`duplicate_lines`: lines whose custom_id had already been answered (paid for twice).
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _echo(prompt: str, seed: int) -> str:
    return f"echo: {prompt}"


class BatchServer:
    def __init__(self, answer: Callable[[str, int], str] = _echo, *, polls: int = 1, fail_lines: int = 0,
                 expire_after: int | None = None):
        self.answer, self.polls, self.fail_lines, self.expire_after = answer, polls, fail_lines, expire_after
        self.hold = threading.Event()
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.retrieves: Counter[str] = Counter()
        self.answered: set[str] = set()
        self.failed_once: set[str] = set()
        self.stats: Counter[str] = Counter()
        self.ids = itertools.count(1)
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.dispatch(self, "GET")

            def do_POST(self) -> None:
                server.dispatch(self, "POST")

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()

    def __enter__(self) -> BatchServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ── HTTP ────────────────────────────────────────────────────────────────────────────────

    def dispatch(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        parts = handler.path.split("?")[0].rstrip("/").split("/")[1:]  # ["v1", "files", ...]
        with self.lock:
            status, content, content_type = self.route(method, parts[1:], body, handler.headers.get("Content-Type", ""))
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)

    def route(self, method: str, parts: list[str], body: bytes, content_type: str) -> tuple[int, bytes, str]:
        as_json = "application/json"
        if method == "POST" and parts == ["files"]:
            return 200, json.dumps(self.upload(body, content_type)).encode(), as_json
        if method == "GET" and len(parts) == 3 and parts[0] == "files" and parts[2] == "content" \
                and parts[1] in self.files:
            return 200, self.files[parts[1]]["content"], "application/octet-stream"
        if method == "GET" and len(parts) == 2 and parts[0] == "files" and parts[1] in self.files:
            return 200, json.dumps(self.file_object(parts[1])).encode(), as_json
        if method == "POST" and parts == ["batches"]:
            request = json.loads(body)
            if request.get("input_file_id") not in self.files:
                return 400, b'{"error": {"message": "no such input file", "code": "invalid_request"}}', as_json
            return 200, json.dumps(self.create(request)).encode(), as_json
        if method == "GET" and len(parts) == 2 and parts[0] == "batches" and parts[1] in self.batches:
            return 200, json.dumps(self.retrieve(parts[1])).encode(), as_json
        if method == "GET" and parts == ["stats"]:
            return 200, json.dumps(dict(self.stats)).encode(), as_json
        return 404, b'{"error": {"message": "not found"}}', as_json

    # ── files ───────────────────────────────────────────────────────────────────────────────

    def add_file(self, content: bytes, filename: str, purpose: str) -> str:
        file_id = f"file-{next(self.ids)}"
        self.files[file_id] = {"content": content, "filename": filename, "purpose": purpose,
                               "created_at": int(time.time())}
        return file_id

    def file_object(self, file_id: str) -> dict[str, Any]:
        f = self.files[file_id]
        return {"id": file_id, "object": "file", "bytes": len(f["content"]), "created_at": f["created_at"],
                "filename": f["filename"], "purpose": f["purpose"], "status": "processed"}

    def upload(self, body: bytes, content_type: str) -> dict[str, Any]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body)
        fields = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        file = fields["file"]
        purpose = fields["purpose"].get_payload(decode=True).decode()
        return self.file_object(self.add_file(file.get_payload(decode=True), file.get_filename() or "upload", purpose))

    # ── batches ─────────────────────────────────────────────────────────────────────────────

    def create(self, request: dict[str, Any]) -> dict[str, Any]:
        batch_id = f"batch_{next(self.ids)}"
        now = int(time.time())
        self.batches[batch_id] = {
            "id": batch_id, "object": "batch", "endpoint": request["endpoint"], "errors": None,
            "input_file_id": request["input_file_id"], "completion_window": request.get("completion_window", "24h"),
            "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": now,
            "expires_at": now + 86400, "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": request.get("metadata")}
        self.stats["batches"] += 1
        return self.batches[batch_id]

    def retrieve(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        self.retrieves[batch_id] += 1
        if batch["status"] == "validating":
            batch["status"] = "in_progress"
        if batch["status"] == "in_progress" and not self.hold.is_set() and self.retrieves[batch_id] >= self.polls:
            self.run(batch)
        return batch

    def run(self, batch: dict[str, Any]) -> None:
        lines = [json.loads(raw) for raw in self.files[batch["input_file_id"]]["content"].splitlines() if raw.strip()]
        outputs, errors = [], []
        for index, line in enumerate(lines):
            custom_id = line["custom_id"]
            self.stats["lines"] += 1
            if self.expire_after is not None and index >= self.expire_after:
                errors.append({"id": f"batch_req_{next(self.ids)}", "custom_id": custom_id, "response": None,
                               "error": {"code": "batch_expired", "message": "not processed in the window"}})
                continue
            if len(self.failed_once) < self.fail_lines and custom_id not in self.failed_once:
                self.failed_once.add(custom_id)
                errors.append({"id": f"batch_req_{next(self.ids)}", "custom_id": custom_id, "error": None,
                               "response": {"status_code": 500, "request_id": "req",
                                            "body": {"error": {"message": "injected", "code": "server_error"}}}})
                continue
            if custom_id in self.answered:
                self.stats["duplicate_lines"] += 1
            self.answered.add(custom_id)
            outputs.append({"id": f"batch_req_{next(self.ids)}", "custom_id": custom_id, "error": None,
                            "response": {"status_code": 200, "request_id": "req", "body": self.complete(line)}})
        dump = lambda rows: "".join(json.dumps(row) + "\n" for row in rows).encode()  # noqa: E731
        batch["output_file_id"] = self.add_file(dump(outputs), "output.jsonl", "batch_output") if outputs else None
        batch["error_file_id"] = self.add_file(dump(errors), "errors.jsonl", "batch_output") if errors else None
        batch["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}
        expired = self.expire_after is not None and len(lines) > self.expire_after
        batch["status"] = "expired" if expired else "completed"
        batch["completed_at" if not expired else "expired_at"] = int(time.time())

    def complete(self, line: dict[str, Any]) -> dict[str, Any]:
        request = line["body"]
        chat = line["url"].endswith("/chat/completions")
        if chat:
            users = [m["content"] for m in request["messages"] if m.get("role") == "user"]
            prompt = users[-1] if users else request["messages"][-1]["content"]
        else:
            prompt = request["prompt"]
        text = self.answer(prompt, int(request.get("seed") or 0))
        choice = {"index": 0, "finish_reason": "stop"}
        choice |= {"message": {"role": "assistant", "content": text}} if chat else {"text": text}
        return {"id": f"chatcmpl-{next(self.ids)}", "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()), "model": request.get("model"), "choices": [choice],
                "usage": {"prompt_tokens": len(prompt) // 4 + 1, "completion_tokens": len(text) // 4 + 1,
                          "total_tokens": len(prompt) // 4 + len(text) // 4 + 2}}
