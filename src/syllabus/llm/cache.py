"""What a client keeps: the sqlite cache of successful replies, and the ledger of what it did."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from syllabus.llm.request import Reply


@dataclass
class Ledger:
    """What a client did: requests sent over the wire, cache hits, tokens and dollars."""

    sent: int = 0
    succeeded: int = 0
    cached: int = 0
    retries: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    by_endpoint: dict[str, int] = field(default_factory=dict)  # replies each endpoint answered

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"cost_usd": round(self.cost_usd, 6)}


def cache_row(reply: Reply) -> dict[str, Any]:
    return {"text": reply.text, "prompt_tokens": reply.prompt_tokens, "completion_tokens": reply.completion_tokens,
            "endpoint": reply.provenance["endpoint"], "time": time.time()}


class ReplyCache:
    """Successful replies by request key, in sqlite (WAL: a killed process loses no committed row).

    Awaiting `store` returns once its row is committed; one write and commit serve every reply stored
    in the same event-loop turn, so a reply counts as done only once it is on disk, and a kill can
    lose only replies still in flight (at most the concurrency)."""

    def __init__(self, cache_dir: str | Path | None):
        # not only the creating thread: a batch called from a running event loop runs in a worker
        # thread (LLMClient._run_sync), and batches of one client never overlap
        if cache_dir is None:
            self.db = sqlite3.connect(":memory:", check_same_thread=False)
        else:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(Path(cache_dir) / "replies.sqlite", timeout=60, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a killed process
        self.db.execute("CREATE TABLE IF NOT EXISTS replies (key TEXT PRIMARY KEY, reply TEXT NOT NULL)")
        # Batch API batches created and not yet collected: a re-run polls them rather than paying again
        self.db.execute("CREATE TABLE IF NOT EXISTS open_batches (id TEXT PRIMARY KEY, keys TEXT NOT NULL)")
        self.db.commit()
        self.pending: list[tuple[str, str]] = []  # rows of this turn, written by `commit`
        self._commit: asyncio.Future | None = None

    def get_many(self, keys: Sequence[str]) -> dict[str, dict]:
        """The cached rows of those keys that have one."""
        found = {}
        for start in range(0, len(keys), 500):  # sqlite allows few parameters per statement
            chunk = keys[start:start + 500]
            rows = self.db.execute(f"SELECT key, reply FROM replies WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            found.update((key, orjson.loads(reply)) for key, reply in rows)
        return found

    def add_batch(self, batch_id: str, keys: list[str]) -> None:
        self.db.execute("INSERT OR REPLACE INTO open_batches VALUES (?, ?)", (batch_id, orjson.dumps(keys).decode()))
        self.db.commit()

    def open_batches(self) -> list[tuple[str, list[str]]]:
        """(batch id, request keys) of the batches created and not yet collected, oldest first."""
        rows = self.db.execute("SELECT id, keys FROM open_batches ORDER BY rowid")
        return [(batch_id, orjson.loads(keys)) for batch_id, keys in rows]

    def close_batch(self, batch_id: str) -> None:
        self.db.execute("DELETE FROM open_batches WHERE id = ?", (batch_id,))
        self.db.commit()

    def put(self, key: str, reply: dict) -> None:
        """Add a row to write at the next `commit`."""
        self.pending.append((key, orjson.dumps(reply).decode()))

    def commit(self) -> None:
        rows, self.pending = self.pending, []
        self.db.executemany("INSERT OR REPLACE INTO replies VALUES (?, ?)", rows)
        self.db.commit()

    def store(self, key: str, reply: dict) -> Awaitable[None]:
        """Add a row to this turn's commit, which runs before any callback or task wake-up scheduled
        after this call; await the result to wait until the row is on disk."""
        self.put(key, reply)
        loop = asyncio.get_running_loop()
        if self._commit is None or self._commit.get_loop() is not loop:  # not one left by an interrupted run
            self._commit = loop.create_future()
            loop.call_soon(self._commit_turn)
        return self._on_disk(self._commit)

    @staticmethod
    async def _on_disk(commit: asyncio.Future) -> None:
        await asyncio.sleep(0)  # one turn, enough: the commit was scheduled before this task's wake-up
        commit.result()  # raises if the commit failed

    def _commit_turn(self) -> None:
        done, self._commit = self._commit, None
        try:
            self.commit()
        except sqlite3.Error as e:
            done.set_exception(e)
        else:
            done.set_result(None)
