"""The sisnbms serial protocol on the host: sans-I/O codec and the BmsClient session."""

from host.protocol.client import BmsClient, BmsError, BmsRejected, BmsTimeout, ClientStats
from host.protocol.codec import (
    DecodeError,
    Decoder,
    ErrorCode,
    ErrorReply,
    Frame,
    FrameType,
    HelloReply,
    Sample,
    State,
    crc16,
    decode_hello,
    decode_state,
    encode_frame,
    encode_sample,
)

__all__ = [
    "BmsClient",
    "BmsError",
    "BmsRejected",
    "BmsTimeout",
    "ClientStats",
    "DecodeError",
    "Decoder",
    "ErrorCode",
    "ErrorReply",
    "Frame",
    "FrameType",
    "HelloReply",
    "Sample",
    "State",
    "crc16",
    "decode_hello",
    "decode_state",
    "encode_frame",
    "encode_sample",
]
