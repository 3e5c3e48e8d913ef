"""What a protocol request can end in besides its reply (shared by every driver)."""

from __future__ import annotations

from host.protocol.codec import ErrorReply


class BmsError(Exception):
    """The firmware did not do what was asked."""


class BmsTimeout(BmsError):
    """No reply after every retry."""


class BmsMalformedReply(BmsError, ValueError):
    """A frame from the firmware passed its CRC but its payload cannot be read (a STATE whose
    size does not match its cell count, an ERROR without a code, a CONFIG that is not JSON):
    a firmware fault, not line noise, so it is not resent. A ValueError too, as it was."""


class BmsRejected(BmsError):
    """The firmware answered ERROR (or a non-zero status)."""

    def __init__(self, request: str, code: int, text: str, *, retried: bool = False) -> None:
        self.request = request
        self.code = code
        self.text = text
        self.retried = retried
        reason = ErrorReply(code, text).name if code else "rejected"
        super().__init__(f"{request}: {reason}" + (f": {text}" if text else ""))
