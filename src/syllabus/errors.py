"""The one exception type that means "the user's input is wrong" (CLI exit code 2)."""

from __future__ import annotations

from pathlib import Path


class BadInput(Exception):
    """Bad user input: printed as one line naming the file, the record and the problem.

    Everything else that escapes a command is a bug and keeps its traceback.
    """

    def __init__(self, problem: str, *, file: str | Path | None = None, record: str | int | None = None):
        self.problem = problem
        self.file = str(file) if file is not None else None
        self.record = record
        super().__init__(self.line())

    def line(self) -> str:
        where = self.file or ""
        if self.record is not None:
            where = f"{where}: {self.record}" if where else str(self.record)
        return f"{where}: {self.problem}" if where else self.problem


class RunFailed(Exception):
    """A run that failed for a reason already stated in one line (a training rank's error): CLI exit code 1."""
