"""The raw gRPC API: malformed requests and unknown ids get proper status codes,
and the server keeps serving afterwards."""

import re
from pathlib import Path

import grpc
import pytest

SERVICE = "/skyloft.v1.Skyloft/"
PROTO = Path(__file__).resolve().parent.parent / "proto" / "skyloft" / "v1" / "api.proto"

# Not a valid protobuf message: a varint that never terminates.
GARBAGE = b"\xff" * 16


def _auth_metadata(token):
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
def channel(server):
    ch = grpc.insecure_channel(server.url)
    grpc.channel_ready_future(ch).result(timeout=10)
    yield ch
    ch.close()


@pytest.fixture
def md(server):
    return _auth_metadata(server.token)


def _unary_raw(channel, method):
    return channel.unary_unary(SERVICE + method, request_serializer=None, response_deserializer=None)


def _unary_stream_raw(channel, method):
    return channel.unary_stream(SERVICE + method, request_serializer=None, response_deserializer=None)


def _proto_methods():
    text = PROTO.read_text()
    return re.findall(r"rpc\s+(\w+)\s*\(\s*(stream\s+)?\w+\s*\)\s*returns\s*\(\s*(stream\s+)?\w+\s*\)", text)


def _ping_ok(channel, md):
    from skyloft._proto import pb

    resp = _unary_raw(channel, "Ping")(pb.Empty().SerializeToString(), metadata=md, timeout=10)
    pb.PingResponse.FromString(resp)  # parses


def test_proto_declares_expected_methods():
    names = {m[0] for m in _proto_methods()}
    for expected in ["Ping", "FunctionCall", "FunctionGetOutputs", "FunctionCallCancel", "AppStop", "ContainerStop"]:
        assert expected in names


def test_ping_without_token_is_unauthenticated(channel):
    from skyloft._proto import pb

    with pytest.raises(grpc.RpcError) as ei:
        _unary_raw(channel, "Ping")(pb.Empty().SerializeToString(), timeout=10)
    assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED, ei.value


def test_wrong_token_is_unauthenticated(channel):
    from skyloft._proto import pb

    with pytest.raises(grpc.RpcError) as ei:
        _unary_raw(channel, "AppList")(pb.Empty().SerializeToString(), metadata=_auth_metadata("nope"), timeout=10)
    assert ei.value.code() == grpc.StatusCode.UNAUTHENTICATED, ei.value


UNARY_WITH_REQUEST_FIELDS = [
    "AppHeartbeat",
    "AppStop",
    "FunctionCreate",
    "FunctionCall",
    "FunctionPutInputs",
    "FunctionGetOutputs",
    "FunctionCallCancel",
    "ContainerList",
    "ContainerStop",
    "BlobMissing",
]


@pytest.mark.parametrize("method", UNARY_WITH_REQUEST_FIELDS)
def test_garbage_bytes_invalid_argument(channel, md, method):
    with pytest.raises(grpc.RpcError) as ei:
        _unary_raw(channel, method)(GARBAGE, metadata=md, timeout=10)
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (ei.value.code(), ei.value.details())
    _ping_ok(channel, md)


def test_garbage_bytes_streaming_method(channel, md):
    with pytest.raises(grpc.RpcError) as ei:
        list(_unary_stream_raw(channel, "AppLogs")(GARBAGE, metadata=md, timeout=10))
    assert ei.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (ei.value.code(), ei.value.details())
    _ping_ok(channel, md)


def test_unknown_method_unimplemented(channel, md):
    with pytest.raises(grpc.RpcError) as ei:
        _unary_raw(channel, "NoSuchMethod")(b"", metadata=md, timeout=10)
    assert ei.value.code() == grpc.StatusCode.UNIMPLEMENTED
    _ping_ok(channel, md)


def _unknown_id_requests():
    from skyloft._proto import pb

    return [
        ("FunctionGetOutputs", pb.GetOutputsRequest(call_id="fc-doesnotexist0000", timeout=0.1)),
        ("FunctionCallCancel", pb.CallRef(call_id="fc-doesnotexist0000")),
        ("FunctionPutInputs", pb.PutInputsRequest(call_id="fc-doesnotexist0000", last=True)),
        ("FunctionCall", pb.FunctionCallRequest(function_id="fu-doesnotexist0000", wait_s=0.1)),
        ("AppStop", pb.AppStopRequest(app_id="ap-doesnotexist0000")),
        ("AppHeartbeat", pb.AppRef(app_id="ap-doesnotexist0000")),
        ("ContainerStop", pb.ContainerRef(container_id="ta-doesnotexist0000")),
    ]


@pytest.mark.parametrize("idx", range(7), ids=lambda i: _unknown_id_requests()[i][0])
def test_unknown_ids_not_found(channel, md, idx):
    method, req = _unknown_id_requests()[idx]
    with pytest.raises(grpc.RpcError) as ei:
        _unary_raw(channel, method)(req.SerializeToString(), metadata=md, timeout=10)
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND, (ei.value.code(), ei.value.details())
    _ping_ok(channel, md)


def test_unknown_blob_not_found(channel, md):
    from skyloft._proto import pb

    req = pb.BlobRef(blob_id="0" * 64)
    with pytest.raises(grpc.RpcError) as ei:
        list(_unary_stream_raw(channel, "BlobGet")(req.SerializeToString(), metadata=md, timeout=10))
    assert ei.value.code() == grpc.StatusCode.NOT_FOUND, (ei.value.code(), ei.value.details())


def test_empty_required_ids_invalid(channel, md):
    from skyloft._proto import pb

    with pytest.raises(grpc.RpcError) as ei:
        _unary_raw(channel, "FunctionGetOutputs")(
            pb.GetOutputsRequest(call_id="", timeout=0.1).SerializeToString(), metadata=md, timeout=10
        )
    assert ei.value.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND), ei.value


def test_server_serves_after_abuse(channel, md, cli, tmp_path):
    # a burst of garbage across all unary methods ...
    for name, cs, ss in _proto_methods():
        if cs or ss:
            continue
        try:
            _unary_raw(channel, name)(GARBAGE, metadata=md, timeout=10)
        except grpc.RpcError as e:
            assert e.code() != grpc.StatusCode.UNAVAILABLE, (name, e)
    # ... and the server still runs real work
    app_file = tmp_path / "after_abuse.py"
    app_file.write_text(
        "import skyloft\n"
        "app = skyloft.App('after-abuse')\n"
        "@app.function()\n"
        "def f(x):\n"
        "    return x * 2\n"
        "@app.local_entrypoint()\n"
        "def main():\n"
        "    print('ABUSE-OK', f.remote(21))\n"
    )
    r = cli("run", app_file, cwd=tmp_path)
    assert r.returncode == 0 and "ABUSE-OK 42" in r.stdout, r


def test_oversized_request_is_refused_and_server_keeps_serving(channel, md):
    """A message over the server's 64 MiB limit gets RESOURCE_EXHAUSTED (the SDK sends large
    arguments as blobs instead, so only raw clients can hit this)."""
    from skyloft._proto import pb

    request = pb.BlobChunk(blob_id="0" * 64, data=b"x" * (65 << 20))
    put = channel.stream_unary(SERVICE + "BlobPut", request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.RpcError) as ei:
        put(iter([request.SerializeToString()]), metadata=md, timeout=60)
    assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (ei.value.code(), ei.value.details())
    _ping_ok(channel, md)
