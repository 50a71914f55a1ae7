"""Typed errors. Each maps to an exit code in the CLI (see design.md)."""

from __future__ import annotations

from dataclasses import dataclass


class PromptreelError(Exception):
    """Base class for errors promptreel reports to the user."""

    exit_code = 1


class ConfigError(PromptreelError):
    """Bad flags, settings or run dir: nothing was rendered."""

    exit_code = 2


class ManifestError(PromptreelError):
    """The manifest has bad rows; carries every problem found."""

    exit_code = 2

    def __init__(self, problems):
        self.problems = list(problems)
        lines = [str(p) for p in self.problems[:50]]
        if len(self.problems) > 50:
            lines.append(f"... and {len(self.problems) - 50} more")
        super().__init__(
            f"{len(self.problems)} problem(s) in the manifest:\n  " + "\n  ".join(lines)
        )


class EncodeError(PromptreelError):
    """ffmpeg failed; carries its stderr."""

    def __init__(self, message: str, stderr: str = ""):
        self.stderr = stderr
        tail = stderr.strip().splitlines()[-5:]
        super().__init__(message + (": " + " | ".join(tail) if tail else ""))


class RenderError(PromptreelError):
    """A render failed. `retriable` says whether another attempt may succeed."""

    def __init__(self, message: str, retriable: bool):
        self.retriable = retriable
        super().__init__(message)


@dataclass(frozen=True)
class RowProblem:
    row: int | None  # from 0, as in pandas; None for a problem with the whole manifest
    id: str | None
    field: str
    message: str

    def __str__(self) -> str:
        if self.row is None:
            return f"{self.field}: {self.message}"
        where = f"row {self.row}" + (f" (id {self.id!r})" if self.id else "")
        return f"{where}: {self.field}: {self.message}"


def show_value(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
