"""Generated gRPC/protobuf code for the skyloft API (regenerate with scripts/gen-proto)."""

from .skyloft.v1 import api_pb2 as pb

__all__ = ["pb"]
