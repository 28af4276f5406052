"""The local lane: clients on the server's machine that find it through
`$SKYLOFT_HOME/server.json` send the hot-path calls over a Unix socket.
Same results and errors as gRPC; the token is checked; bad frames are refused."""

import json
import socket
import struct
import sys
import textwrap

import pytest

from skyloft import frames
from skyloft.local_lane import CALL, REPLY, TOKEN

LANE_SCRIPT = """
import skyloft

app = skyloft.App("lane")

@app.function()
def square(x):
    return x * x

@app.function()
def fail(x):
    raise KeyError(x)

if __name__ == "__main__":
    from skyloft._client.connection import get_client  # the client's internals are not in containers

    with app.run():
        client = get_client()
        assert client._lane_path, "the client did not pick the lane up from server.json"
        print("REMOTE=%d" % square.remote(7))
        print("MAP=%d" % sum(square.map(range(100))))
        print("SPAWN=%d" % square.spawn(9).get())
        try:
            fail.remote("k")
        except KeyError as e:
            print("ERROR=KeyError:%s" % e)
        print("LANE-USED=%s" % (client._lanes.connection is not None))
"""


def _server_file(server):
    return json.loads((server.home / "server.json").read_text())


def _lane_call(path, token, frame_kind, fields):
    """One exchange on a fresh lane connection; returns (status, body) of the reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(frames.encode(TOKEN, [token.encode()]))
        s.sendall(frames.encode(frame_kind, fields))
        reply = frames.read_frame(s.makefile("rb"))
    assert reply is not None and reply[0] == REPLY, reply
    status, body = reply[1]
    return int(status), body


@pytest.mark.timeout(120)
def test_client_on_the_server_machine_uses_the_lane(server, tmp_path, run_cmd_fixture, clean_env_fixture):
    script = tmp_path / "lane_app.py"
    script.write_text(textwrap.dedent(LANE_SCRIPT))
    env = clean_env_fixture(SKYLOFT_HOME=server.home)  # no SKYLOFT_SERVER_URL: discover server.json
    r = run_cmd_fixture([sys.executable, script], env=env, timeout=90, cwd=tmp_path)
    assert r.returncode == 0, r
    for line in ("REMOTE=49", "MAP=328350", "SPAWN=81", "ERROR=KeyError:'k'", "LANE-USED=True"):
        assert line in r.stdout, r


def test_lane_refuses_a_wrong_token(server):
    from skyloft._proto import pb

    status, body = _lane_call(_server_file(server)["lane"], "not-the-token", CALL,
                              [b"Ping", pb.Empty().SerializeToString()])
    assert status == 16, body  # UNAUTHENTICATED
    assert b"token" in body


def test_lane_answers_malformed_requests_and_keeps_serving(server):
    from skyloft._proto import pb

    path = _server_file(server)["lane"]
    status, body = _lane_call(path, server.token, CALL, [b"FunctionCall", b"\xff" * 16])
    assert status == 3, body  # INVALID_ARGUMENT
    status, body = _lane_call(path, server.token, CALL, [b"AppStop", b""])
    assert status == 12, body  # UNIMPLEMENTED: only hot-path methods travel on the lane
    status, body = _lane_call(path, server.token, CALL, [b"FunctionGetOutputs",
                                                         pb.GetOutputsRequest(call_id="fc-nope").SerializeToString()])
    assert status == 5, body  # NOT_FOUND
    status, body = _lane_call(path, server.token, CALL, [b"Ping", pb.Empty().SerializeToString()])
    assert status == 0 and pb.PingResponse.FromString(body).api_version == "v1"


def test_lane_survives_a_truncated_frame(server):
    from skyloft._proto import pb

    path = _server_file(server)["lane"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(frames.encode(TOKEN, [server.token.encode()]))
        s.sendall(struct.pack(">I", 1000) + b"C" + b"\x00" * 10)  # promises 1000 bytes, sends 11
    status, _ = _lane_call(path, server.token, CALL, [b"Ping", pb.Empty().SerializeToString()])
    assert status == 0
