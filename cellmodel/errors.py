"""The one exception for bad user input (files, fields, text), shared by cellmodel and host."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: names where it came from, which field, and why.

    The CLI maps it to exit code 2.
    """

    def __init__(self, source: str, field: str, reason: str) -> None:
        self.source = str(source)
        self.field = field
        self.reason = reason
        super().__init__(f"{self.source}: {field}: {reason}")
