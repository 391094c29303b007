"""One client for every teacher, judge and grader (see `client`), split by job: `client` (batches,
signals, budget, retries), `backends` (which backend an endpoint names; offline and local ones),
`routing` (several servers), `transport` (HTTP), `cache` (replies, ledger), `prices`."""

from syllabus.llm.backends import OfflineBackend, offline_backend, register_offline
from syllabus.llm.cache import Ledger, ReplyCache
from syllabus.llm.client import BUDGET_EXHAUSTED, LLMClient, event_loop
from syllabus.llm.prices import FREE, PRICES, Price, price_of
from syllabus.llm.request import Messages, Reply, Request
from syllabus.llm.routing import split_endpoints

__all__ = ["BUDGET_EXHAUSTED", "FREE", "LLMClient", "Ledger", "Messages", "OfflineBackend", "PRICES", "Price",
           "Reply", "ReplyCache", "Request", "event_loop", "offline_backend", "price_of", "register_offline",
           "split_endpoints"]
