"""Image.from_registry against a real registry (Debian's docker-registry) that holds
images this module built and pushed with skopeo: a Debian root with Python (gzip layer)
under a layer with whiteouts and a hard link (zstd), and one without Python."""

import base64
import gzip
import hashlib
import http.server
import io
import json
import os
import subprocess
import tarfile
import textwrap
import threading
import time
import urllib.error
import urllib.request

import pytest
import zstandard

def _tar(entries) -> bytes:
    """A tar of (TarInfo, data) pairs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in entries:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name, data=b"", kind=tarfile.REGTYPE, linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.mtime = kind, linkname, 0o644, 1_700_000_000
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


def _write_oci_layout(directory, layers, env, workdir):
    """An OCI image layout (what skopeo copies from) with `layers`: [(uncompressed tar, "gzip"|"zstd")]."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes, media_type: str) -> dict:
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}

    descriptors, diff_ids = [], []
    for raw, compression in layers:
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        packed = gzip.compress(raw, 1) if compression == "gzip" else zstandard.ZstdCompressor().compress(raw)
        descriptors.append(put(packed, f"application/vnd.oci.image.layer.v1.tar+{compression}"))
    config = {"architecture": "amd64", "os": "linux",
              "config": {"Env": [f"{k}={v}" for k, v in env.items()], "WorkingDir": workdir},
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": put(json.dumps(config).encode(), "application/vnd.oci.image.config.v1+json"),
                "layers": descriptors}
    entry = put(json.dumps(manifest).encode(), manifest["mediaType"])
    entry["annotations"] = {"org.opencontainers.image.ref.name": "v1"}
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))


@pytest.fixture(scope="module")
def registry(tmp_path_factory, free_port_fixture):
    """A docker-registry on a free port; yields its host:port."""
    root = tmp_path_factory.mktemp("registry")
    port = free_port_fixture()
    (root / "config.yml").write_text(textwrap.dedent(f"""\
        version: 0.1
        storage:
          filesystem:
            rootdirectory: {root / "data"}
        http:
          addr: 127.0.0.1:{port}
        """))
    process = subprocess.Popen(["docker-registry", "serve", str(root / "config.yml")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("docker-registry did not start") from None
            time.sleep(0.2)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def _push(layout, registry, name):
    subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{layout}:v1",
                    f"docker://{registry}/{name}:v1"], check=True, timeout=300)


@pytest.fixture(scope="module")
def pushed(registry, tmp_path_factory):
    """Push the two test images; yields their tags."""
    work = tmp_path_factory.mktemp("images")
    base = work / "base.tar"
    subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", "--include=python3", "--mode=root",
                    "--format=tar", "bookworm", str(base)], check=True, timeout=600)
    top = _tar([
        _file("opt", kind=tarfile.DIRTYPE),
        _file("opt/greeting.txt", b"hello from a pulled layer\n"),
        _file("opt/greeting-link", kind=tarfile.LNKTYPE, linkname="opt/greeting.txt"),
        _file("etc/.wh.motd"),
        _file("usr/share/doc/.wh..wh..opq"),
    ])
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "GREETING": "hi"}
    _write_oci_layout(work / "with-python", [(base.read_bytes(), "gzip"), (top, "zstd")], env, "/opt")
    _write_oci_layout(work / "no-python", [(top, "zstd")], env, "/opt")
    _push(work / "with-python", registry, "skyloft-test/python")
    _push(work / "no-python", registry, "skyloft-test/no-python")
    return {"python": f"{registry}/skyloft-test/python:v1", "no-python": f"{registry}/skyloft-test/no-python:v1",
            "missing": f"{registry}/skyloft-test/python:no-such-tag"}


APP = """
import json
import os
import sys
import skyloft

app = skyloft.App("registry-{name}")

@app.function(image=skyloft.Image.from_registry({tag!r}))
def inspect():
    return {{
        "greeting": open("/opt/greeting.txt").read(),
        "hard_link": os.path.samefile("/opt/greeting.txt", "/opt/greeting-link"),
        "env": os.environ.get("GREETING"),
        "cwd": os.getcwd(),
        "motd": os.path.exists("/etc/motd"),
        "doc": os.listdir("/usr/share/doc"),
        "python": sys.executable,
        "debian": open("/etc/debian_version").read().strip(),
    }}

@app.local_entrypoint()
def main():
    print("RESULT", json.dumps(inspect.remote()))
"""


def _run(cli, tmp_path, name, tag):
    script = tmp_path / f"registry_{name}.py"
    script.write_text(APP.format(name=name, tag=tag))
    return cli("run", script, timeout=600)


def test_function_runs_on_a_pulled_image(cli, pushed, tmp_path):
    result = _run(cli, tmp_path, "ok", pushed["python"])
    assert result.returncode == 0, result
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    seen = json.loads(line[len("RESULT "):])
    assert seen["greeting"] == "hello from a pulled layer\n"
    assert seen["hard_link"] is True
    assert seen["env"] == "hi" and seen["cwd"] == "/opt"
    assert seen["motd"] is False, "the whiteout in the upper layer must hide /etc/motd"
    assert seen["doc"] == [], "the opaque directory must hide the lower layer's /usr/share/doc"
    assert seen["debian"].startswith("12."), seen
    assert "pulling sha256:" in result.output  # progress of the layer downloads


def test_missing_tag_is_an_image_build_error(cli, pushed, tmp_path):
    result = _run(cli, tmp_path, "missing", pushed["missing"])
    assert result.returncode != 0
    assert "image build failed" in result.output and "MANIFEST_UNKNOWN" in result.output, result
    assert "check the tag" in result.output


def test_image_without_python_is_refused(cli, pushed, tmp_path):
    result = _run(cli, tmp_path, "nopython", pushed["no-python"])
    assert result.returncode != 0
    assert "image build failed" in result.output and "has no python3" in result.output, result


class TokenGate(http.server.ThreadingHTTPServer):
    """A registry that wants a bearer token, in front of the real one.

    A stand-in for a token service such as Docker Hub's (auth.docker.io), which
    cannot run here: docker-registry's own token auth needs a separate signing
    service. It answers /v2/ requests without the token with the challenge such
    services send, hands out the token for the right basic credentials, and
    passes authorized requests through to the registry.
    """

    daemon_threads = True
    TOKEN = "gate-token"
    LOGIN = ("puller", "s3cret")

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        super().__init__(("127.0.0.1", 0), _GateHandler)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _GateHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        gate = self.server
        if self.path.startswith("/token"):
            expected = "Basic " + base64.b64encode(":".join(gate.LOGIN).encode()).decode()
            if self.headers.get("Authorization") != expected:
                return self._reply(401, b'{"details": "bad credentials"}')
            return self._reply(200, json.dumps({"token": gate.TOKEN}).encode())
        if self.headers.get("Authorization") != f"Bearer {gate.TOKEN}":
            challenge = (f'Bearer realm="http://{gate.address}/token",service="gate",'
                         f'scope="repository:skyloft-test/python:pull"')
            return self._reply(401, b'{"errors": [{"code": "UNAUTHORIZED"}]}', {"WWW-Authenticate": challenge})
        request = urllib.request.Request(f"http://{gate.upstream}{self.path}",
                                         headers={"Accept": self.headers.get("Accept", "*/*")})
        try:
            with urllib.request.urlopen(request, timeout=60) as upstream:
                headers = {k: v for k, v in upstream.headers.items() if k.lower() in ("content-type",)}
                return self._reply(upstream.status, upstream.read(), headers)
        except urllib.error.HTTPError as exc:
            return self._reply(exc.code, exc.read())

    def _reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def token_gate(registry):
    gate = TokenGate(registry)
    threading.Thread(target=gate.serve_forever, daemon=True).start()
    yield gate
    gate.shutdown()
    gate.server_close()


def test_bearer_token_auth_with_the_workers_docker_login(pushed, token_gate, server_factory, run_cmd_fixture,
                                                         skyloft_cmd_fixture, tmp_path, monkeypatch):
    tag = f"{token_gate.address}/skyloft-test/python:v1"
    script = tmp_path / "registry_gate.py"
    script.write_text(APP.format(name="gate", tag=tag))

    # Without a login on the worker, the token service refuses, and the error says where logins go.
    anonymous = server_factory()
    refused = run_cmd_fixture(skyloft_cmd_fixture("run", script), env=anonymous.env, timeout=300)
    assert refused.returncode != 0
    assert "refused access" in refused.output and "401" in refused.output, refused

    # With `docker login`'s record in the worker's DOCKER_CONFIG, the pull goes through the gate.
    docker_config = tmp_path / "docker"
    docker_config.mkdir()
    login = base64.b64encode(":".join(TokenGate.LOGIN).encode()).decode()
    (docker_config / "config.json").write_text(json.dumps({"auths": {token_gate.address: {"auth": login}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
    logged_in = server_factory()
    result = run_cmd_fixture(skyloft_cmd_fixture("run", script), env=logged_in.env, timeout=300)
    assert result.returncode == 0, result
    assert "hello from a pulled layer" in result.stdout, result


DOCKERFILE = """\
# a comment
ARG BASE
FROM ${BASE}
ARG GREETING=from-a-build-arg
ENV MODE=dockerfile \\
    WHO="the $GREETING"
WORKDIR /app
RUN echo "$MODE" > made-by-run.txt
COPY config.txt settings/
COPY data /app/data
WORKDIR sub
CMD ["python3", "ignored.py"]
"""

DOCKERFILE_APP = """
import json
import os
import skyloft

app = skyloft.App("dockerfile")

@app.function(image=skyloft.Image.from_dockerfile("Dockerfile", build_args={{"BASE": {base!r}}}))
def inspect():
    return {{
        "cwd": os.getcwd(),
        "env": [os.environ.get("MODE"), os.environ.get("WHO")],
        "run": open("/app/made-by-run.txt").read().strip(),
        "config": open("/app/settings/config.txt").read(),
        "data": open("/app/data/nested/x.txt").read(),
        "pulled": open("/opt/greeting.txt").read().strip(),
    }}

@app.local_entrypoint()
def main():
    print("RESULT", json.dumps(inspect.remote()))
"""


def test_dockerfile_builds_on_a_registry_image(cli, pushed, tmp_path):
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    (tmp_path / "config.txt").write_text("copied-file")
    (tmp_path / "data" / "nested").mkdir(parents=True)
    (tmp_path / "data" / "nested" / "x.txt").write_text("copied-dir")
    script = tmp_path / "dockerfile_app.py"
    script.write_text(DOCKERFILE_APP.format(base=pushed["python"]))
    result = cli("run", script, cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    assert json.loads(line[len("RESULT "):]) == {
        "cwd": "/app/sub", "env": ["dockerfile", "the from-a-build-arg"], "run": "dockerfile",
        "config": "copied-file", "data": "copied-dir", "pulled": "hello from a pulled layer",
    }


PRUNE_APP = """
import os
import time
import skyloft

app = skyloft.App("prune")
kept = (skyloft.Image.from_registry({tag!r}).run_commands("echo kept > /made.txt")
        .add_local_file({mounted!r}, "/data/mounted.txt"))
dropped = skyloft.Image.from_registry({tag!r}).run_commands("head -c 3000000 /dev/urandom > /dropped.bin")

@app.function(image=kept)
def first():
    return open("/data/mounted.txt").read() + open("/made.txt").read()

@app.function(image=kept)
def second():
    return open("/data/mounted.txt").read() + open("/made.txt").read()

@app.local_entrypoint()
def main():
    print("KEPT", kept.object_id, "FIRST", first.remote().split(), flush=True)
    while not os.path.exists({go!r}):
        time.sleep(0.1)
    print("SECOND", second.remote().split(), flush=True)
"""


def _blob_sizes(root):
    return [p.stat().st_size for p in root.glob("??/*")]


@pytest.mark.timeout(300)  # its own image cache pulls the base image again
def test_prune_frees_what_nothing_references(pushed, server_factory, procs, run_cmd_fixture, skyloft_cmd_fixture,
                                             tmp_path, monkeypatch):
    from skyloft.cas import BlobStore

    cache = tmp_path / "image-cache"  # its own: `--all` must not take the other tests' images
    monkeypatch.setenv("SKYLOFT_IMAGE_CACHE", str(cache))
    srv = server_factory()
    (tmp_path / "mounted.txt").write_text("mounted\n")
    script = tmp_path / "prune_app.py"
    script.write_text(PRUNE_APP.format(tag=pushed["python"], mounted=str(tmp_path / "mounted.txt"),
                                       go=str(tmp_path / "go")))

    def skyloft(*args):
        result = run_cmd_fixture(skyloft_cmd_fixture(*args), env=srv.env, timeout=300)
        assert result.returncode == 0, result
        return result.stdout

    dropped_id = skyloft("image", "build", f"{script}::dropped").split("Built image ")[1].strip(" .\n")
    assert 3_000_000 in _blob_sizes(cache / "blobs")
    app = procs(skyloft_cmd_fixture("run", script), env=srv.env)
    kept_id = app.wait_for(r"KEPT (im-\w+) FIRST \['mounted', 'kept'\]", timeout=300).group(1)

    # Files nothing references: an old upload, a leftover of the image cache; a fresh upload may
    # still be on its way to a function, so it stays.
    server_blobs = BlobStore(str(srv.home / "blobs"))
    old, fresh = server_blobs.put(b"an old upload"), server_blobs.put(b"a fresh upload")
    os.utime(server_blobs.path(old), (time.time() - 7200,) * 2)
    leftover = BlobStore(str(cache / "blobs")).put(b"left by an interrupted build")

    assert "Removed 2 stored files" in skyloft("image", "prune")
    assert not server_blobs.has(old) and server_blobs.has(fresh)
    assert not (cache / "blobs" / leftover[:2] / leftover).exists()
    assert {kept_id, dropped_id} <= set(skyloft("image", "list").split())

    # --all: the image no running app uses goes, with the files only it had.
    freed = skyloft("image", "prune", "--all")
    assert "Removed 1 image and" in freed, freed
    assert float(freed.split("freed ")[1].split(" MiB")[0]) >= 2.8
    listed = skyloft("image", "list").split()
    assert kept_id in listed and dropped_id not in listed
    assert 3_000_000 not in _blob_sizes(cache / "blobs")

    # The running app's image, code and mounted file are all still there: a new container starts
    # on them without building anything.
    (tmp_path / "go").touch()
    app.wait_for(r"SECOND \['mounted', 'kept'\]", timeout=120)
    assert app.wait(timeout=60) == 0
    assert "building image" not in app.output().split("FIRST")[1], app.output()
