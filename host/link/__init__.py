"""The asyncio serial transport for real and virtual boards alike."""

from host.link.serial_link import SerialLink

__all__ = ["SerialLink"]
