"""What a protocol request can end in besides its reply (shared by every driver)."""

from __future__ import annotations

from host.protocol.codec import ErrorReply


class BmsError(Exception):
    """The firmware did not do what was asked."""


class BmsTimeout(BmsError):
    """No reply after every retry."""


class BmsRejected(BmsError):
    """The firmware answered ERROR (or a non-zero status)."""

    def __init__(self, request: str, code: int, text: str, *, retried: bool = False) -> None:
        self.request = request
        self.code = code
        self.text = text
        self.retried = retried
        reason = ErrorReply(code, text).name if code else "rejected"
        super().__init__(f"{request}: {reason}" + (f": {text}" if text else ""))
