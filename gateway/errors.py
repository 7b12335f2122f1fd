"""Why a request is refused: the HTTP status, a short counted reason and a readable detail."""

from __future__ import annotations


class Reject(Exception):
    """Refuse the request with ``status``; ``reason`` labels the metric and the dead letter,
    ``detail`` says why. ``answer`` (reason, detail) replaces both in the response when the
    caller must not learn the real reason (an unknown store answers as a bad signature)."""

    def __init__(
        self, status: int, reason: str, detail: str, answer: tuple[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.reason = reason
        self.detail = detail
        self.answer = answer or (reason, detail)


def bad_field(path: str, message: str) -> Reject:
    return Reject(400, "invalid_field", f"{path}: {message}")


def missing_field(path: str) -> Reject:
    return Reject(400, "missing_field", f"{path}: required field is missing")
