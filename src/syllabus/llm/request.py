"""What every part of the client shares: a request, its reply, how one attempt fails, and the
small interface every backend (OpenAI-compatible servers, offline functions, local models) offers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from syllabus.llm.prices import Price

Messages = list[dict[str, str]]
Answer = tuple[str, int | None, int | None, str]  # text, prompt tokens, completion tokens, who answered
BUDGET_EXHAUSTED = "budget exhausted"  # the error of a request not sent because it could pass the budget


@dataclass
class Reply:
    text: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.text is not None


@dataclass
class Request:
    kind: str  # "chat" or "completion"
    body: Messages | str
    params: dict[str, Any]
    sample: int
    key: str = ""

    @property
    def flat_text(self) -> str:
        """The whole request as one text, for a base model: the prompt, or the messages joined."""
        return self.body if isinstance(self.body, str) else "\n\n".join(m["content"] for m in self.body)

    @property
    def prompt_text(self) -> str:
        """The text an offline backend answers: the prompt, or the last user message."""
        if isinstance(self.body, str):
            return self.body
        users = [m["content"] for m in self.body if m.get("role") == "user"]
        return users[-1] if users else self.body[-1]["content"]


class Retryable(Exception):
    def __init__(self, reason: str, *, unreachable: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable  # no connection could be made: the endpoint is marked down
        self.endpoint: Any = None  # where it failed, so that the retry can go elsewhere


class Fatal(Exception):
    pass


def estimate_tokens(text: str) -> int:
    return len(text) // 4 + 1


class Backend(Protocol):
    """What LLMClient sends through. A batch is a list of requests answered together (one request
    for a server; those sharing sampling settings for a local model); a slot is what `acquire` hands
    out and `send` and `release` take back (for servers, the endpoint chosen)."""

    model: str  # what requests name as the model
    identity: str  # what a request key hashes besides the request itself
    label: str  # what provenance names: the endpoint(s), without credentials
    price: Price | None  # None: unknown
    slots: int  # batches in flight at once

    def batches(self, requests: list[Request], todo: list[int]) -> list[list[int]]:
        """How the requests at indices `todo` are sent: lists of indices, each sent together."""

    async def __aenter__(self) -> Backend: ...

    async def __aexit__(self, *exc) -> None: ...

    async def acquire(self, avoid: Any) -> Any:
        """A slot to send in, avoiding the one an attempt just failed at where another is up."""

    def release(self, slot: Any) -> None: ...

    def back_off_before_retry(self, failed_at: Any) -> bool:
        """Whether a retry after a failure at `failed_at` waits first (no other endpoint to fail over to)."""

    async def send(self, batch: list[Request], slot: Any) -> list[Answer]:
        """One attempt; raises Retryable or Fatal."""
