"""Building images on a worker, one step at a time, each step cached.

Every prefix of an image's step chain has an id (a hash of the chain so
far); a built prefix is recorded under that id and never built again. A
`debian` step bootstraps Debian with mmdebstrap; `run` and `pip` steps run
in bubblewrap over an overlay of the layers below, and what they changed
becomes the next layer; `env` and `workdir` steps only set metadata.
"""

from __future__ import annotations

import base64
import fcntl
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .._proto import pb
from ..cas import BlobStore, CorruptBlobError
from .blobs import BlobCache
from .image_runtime import ImageRuntime
from .layers import LayerStore, ingest, layer_files, manifest_entries
from .registry import RegistryClient, RegistryError, parse_reference
from .runtime.bubblewrap import SANDBOX_ARGS
from .runtime.overlay import OverlayMountError, mount_overlay, unmount_overlay

Log = Callable[[str], None]

_UV_CACHE_IN_IMAGE = "/root/.cache/uv"


class ImageBuildFailed(Exception):
    """A step failed; the message carries its command and the tail of its output."""


@dataclass
class BuiltImage:
    layers: list[str] = field(default_factory=list)      # manifest ids, lowest first
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/root"
    mounts: list[list[str]] = field(default_factory=list)  # [remote dir, files manifest JSON], at start


@dataclass
class PruneResult:
    images_removed: int = 0
    files_removed: int = 0


class ImageBuilder:
    """Builds and keeps images in a cache that every worker on the machine may share.

    The cache holds its own content-addressed store (layer files and
    manifests), the materialized layers, one record per built chain prefix
    and uv's download cache. Each step (and each pulled layer) is built under
    a lock file of its own, so no two workers or threads build it twice, even
    for two images that share it.
    """

    def __init__(self, cache_dir: str, scratch_dir: str, files: BlobCache, runtime: ImageRuntime) -> None:
        self._files = files
        self._runtime = runtime
        self.cache_dir = cache_dir
        self._blobs = BlobStore(os.path.join(cache_dir, "blobs"))
        self.layers = LayerStore(os.path.join(cache_dir, "layers"), self._blobs)
        self._records = os.path.join(cache_dir, "images")
        self._index = os.path.join(cache_dir, "by-image")
        self._lock_files = os.path.join(cache_dir, "locks")
        self._prune_lock = os.path.join(self._lock_files, ".prune")  # shared by builds, exclusive for prune
        self._pulled = os.path.join(cache_dir, "pulled-layers")  # OCI layer digest -> layer manifest id
        self._uv_cache = os.path.join(cache_dir, "uv-cache")
        self._scratch = scratch_dir
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._failures: dict[str, str] = {}
        # What an interrupted build left behind is never used: no record points at it.
        shutil.rmtree(self._scratch, ignore_errors=True)
        for path in (self._records, self._index, self._lock_files, self._pulled, self._scratch, self._uv_cache):
            os.makedirs(path, exist_ok=True)

    def ensure(self, spec: pb.ImageSpec, log: Log) -> BuiltImage:
        """The built image, building the steps that are not cached yet."""
        with self._lock_for(spec.image_id), _file_lock(self._prune_lock, shared=True):
            if spec.image_id in self._failures:
                raise ImageBuildFailed(self._failures[spec.image_id])
            try:
                try:
                    image = self._materialized(self._build(spec, log))
                except CorruptBlobError as exc:
                    log(f"{exc}; building image {spec.image_id} again\n")
                    self._forget(spec, exc.blob_id)
                    image = self._materialized(self._build(spec, log))
                if not os.path.exists(os.path.join(self._index, spec.image_id + ".json")):
                    self._index_image(spec, image)
                return image
            except ImageBuildFailed as exc:
                self._failures[spec.image_id] = str(exc)
                raise

    def list_images(self) -> list[pb.ImageInfo]:
        """Every image built here, newest first."""
        infos = []
        for path in glob.glob(os.path.join(self._index, "*.json")):
            try:
                with open(path) as f:
                    info = json.load(f)
                infos.append(pb.ImageInfo(image_id=info["image_id"], n_layers=info["n_layers"],
                                          size_bytes=info["size_bytes"], built_at=info["built_at"]))
            except (OSError, ValueError, KeyError):
                continue
        return sorted(infos, key=lambda info: -info.built_at)

    def prune(self, keep_images: Collection[str] | None = None) -> PruneResult:
        """Delete what no kept image needs; `None` keeps every built image.

        Interrupted, failed and forced builds leave stored files, layers and
        records that no image uses; with a list, the images not in it (and
        whatever only they used) go too. No build runs meanwhile.
        """
        with _file_lock(self._prune_lock):
            result = PruneResult()
            if keep_images is not None:
                result.images_removed = self._drop_images(set(keep_images))
            layers = self._live_layers(keep_pulled=keep_images is None)
            files = {blob_id for layer in layers for blob_id in layer_files(self._blobs, layer)}
            result.files_removed = self._blobs.prune(layers | files, unused_since=time.time())
            self.layers.prune(layers)
            self._stream([_uv_binary(), "cache", "prune", "--cache-dir", self._uv_cache], lambda line: None,
                         "uv cache prune")
            return result

    def _drop_images(self, keep: set[str]) -> int:
        """Remove the images not in `keep` and the step records only they use; how many went."""
        removed, chains, unknown = 0, set(), False
        for path in glob.glob(os.path.join(self._index, "*.json")):
            try:
                with open(path) as f:
                    info = json.load(f)
            except (OSError, ValueError):
                info = {"image_id": ""}  # unreadable: drop it; the image is indexed again when next used
            if info["image_id"] in keep:
                chains.update(info.get("chains", ()))
                unknown = unknown or "chains" not in info
            else:
                os.unlink(path)
                removed += 1
        if not unknown:  # an image indexed before its chains were recorded keeps every record
            for path in glob.glob(os.path.join(self._records, "*.json")):
                if os.path.basename(path)[:-len(".json")] not in chains:
                    os.unlink(path)
        return removed

    def _live_layers(self, keep_pulled: bool) -> set[str]:
        """The layers of every recorded step, and of every pulled-layer record (dropping those
        of records that no step uses, unless `keep_pulled`)."""
        layers: set[str] = set()
        for path in glob.glob(os.path.join(self._records, "*.json")):
            record = self._load(os.path.basename(path)[:-len(".json")])
            layers.update(record.layers if record else ())
        for path in glob.glob(os.path.join(self._pulled, "*")):
            manifest_id = self._recorded_layer(path)
            if manifest_id is not None and (keep_pulled or manifest_id in layers):
                layers.add(manifest_id)
            else:
                os.unlink(path)
        return {layer for layer in layers if self._blobs.has(layer)}

    def _index_image(self, spec: pb.ImageSpec, image: BuiltImage) -> None:
        files = {blob_id for layer in image.layers for blob_id in layer_files(self._blobs, layer)}
        info = {"image_id": spec.image_id, "n_layers": len(image.layers), "size_bytes": sum(os.path.getsize(self._blobs.path(blob_id)) for blob_id in files),
                "built_at": time.time(), "chains": _chain_ids(spec)}
        _replace_file(os.path.join(self._index, spec.image_id + ".json"), json.dumps(info))

    def _materialized(self, image: BuiltImage) -> BuiltImage:
        """Make sure every layer is on disk (this reads, and checks, every stored file)."""
        for layer in image.layers:
            self.layers.path(layer)
        return image

    def _forget(self, spec: pb.ImageSpec, blob_id: str) -> None:
        """Drop the records of the steps from the first whose layer held `blob_id` on, so that they
        (and only they) are built again."""
        below, stale = [], False
        for chain in _chain_ids(spec):
            record = self._load(chain)
            if record is None:
                return
            stale = stale or any(self._holds(layer, blob_id) for layer in record.layers if layer not in below)
            if stale:
                os.unlink(os.path.join(self._records, chain + ".json"))
            below = record.layers

    def _holds(self, layer: str, blob_id: str) -> bool:
        """Whether the layer is, or lists, the blob (a layer whose manifest is gone holds it too)."""
        if layer == blob_id or not self._blobs.has(layer):
            return True
        return blob_id in layer_files(self._blobs, layer)

    def _lock_for(self, image_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(image_id, threading.Lock())

    def _build(self, spec: pb.ImageSpec, log: Log) -> BuiltImage:
        image = BuiltImage()
        total = len(spec.steps)
        for number, (step, chain) in enumerate(zip(spec.steps, _chain_ids(spec)), 1):
            cached = self._load(chain)
            if cached is None:
                with _file_lock(os.path.join(self._lock_files, chain)):
                    cached = self._load(chain)  # another worker may have built it while we waited
                    if cached is None:
                        log(f"building image {spec.image_id}: step {number}/{total}: {_describe(step)}\n")
                        cached = self._apply(step, image, log)
                        self._save(chain, cached)
            image = cached
        return image

    def _apply(self, step: pb.ImageStep, parent: BuiltImage, log: Log) -> BuiltImage:
        image = BuiltImage(list(parent.layers), dict(parent.env), parent.workdir, list(parent.mounts))
        if step.kind == "debian":
            image.layers = [self._debian(step.args[0], log)]
        elif step.kind == "registry":
            image = self._pull(step.args[0], log)
        elif step.kind == "run":
            image.layers.append(self._run_step(parent, ["/bin/sh", "-c", step.args[0]], log, step.args[0]))
        elif step.kind == "pip":
            command = ["/skyloft-uv", "pip", "install", "--system", "--break-system-packages", "--python",
                       "/usr/bin/python3", *step.args]
            image.layers.append(self._run_step(parent, command, log, "pip install " + " ".join(step.args)))
        elif step.kind == "pip-requirements":
            command = ["/bin/sh", "-c", 'printf "%s" "$1" > /tmp/requirements.txt && exec /skyloft-uv pip install '
                       '--system --break-system-packages --python /usr/bin/python3 -r /tmp/requirements.txt',
                       "sh", step.args[0]]
            image.layers.append(self._run_step(parent, command, log, "pip install -r requirements.txt"))
        elif step.kind == "function":
            image.layers.append(self._function_step(parent, base64.b64decode(step.args[0]), float(step.args[1]), log))
        elif step.kind == "copy":
            image.layers.append(self._copy_step(step.args[0], json.loads(step.args[1])))
        elif step.kind == "mount":
            image.mounts.append([step.args[0], step.args[1]])
        elif step.kind == "env":
            image.env.update(step.env)
        elif step.kind == "workdir":
            image.workdir = step.args[0]
        else:
            raise ImageBuildFailed(f"unknown image step {step.kind!r}")
        return image

    def _debian(self, suite: str, log: Log) -> str:
        """A minimal Debian with Python, from the machine's configured Debian archive."""
        if shutil.which("mmdebstrap") is None:
            raise ImageBuildFailed("building Debian images needs mmdebstrap: apt-get install -y mmdebstrap")
        root = tempfile.mkdtemp(dir=self._scratch, prefix="debian-")
        try:
            self._stream(["mmdebstrap", "--variant=minbase", "--include=python3,ca-certificates",
                          "--mode=root", suite, root], log, f"mmdebstrap {suite}")
            return ingest(root, self._blobs)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def _pull(self, tag: str, log: Log) -> BuiltImage:
        """An image from an OCI registry, each of its layers recorded per file (once per layer digest)."""
        try:
            client = RegistryClient(parse_reference(tag), log)
        except RegistryError as exc:
            raise ImageBuildFailed(str(exc)) from None
        try:
            manifest = client.manifest()
            config = client.config(manifest)
            layers = [self._pulled_layer(client, descriptor) for descriptor in manifest["layers"]]
        except RegistryError as exc:
            raise ImageBuildFailed(f"pulling {tag} failed: {exc}") from None
        finally:
            client.close()
        if not any(self._has_python(layer) for layer in layers):
            raise ImageBuildFailed(f"{tag} has no python3 in /usr/bin or /usr/local/bin: skyloft runs functions "
                                   "with the image's own Python; pick an image with Python")
        return BuiltImage(layers, config.env, config.workdir)

    def _pulled_layer(self, client: RegistryClient, descriptor: dict) -> str:
        name = descriptor["digest"].replace(":", "-")
        record = os.path.join(self._pulled, name)
        with _file_lock(os.path.join(self._lock_files, name)):  # images that share a layer unpack it once
            manifest_id = self._recorded_layer(record)
            if manifest_id is None:
                directory = tempfile.mkdtemp(dir=self._scratch, prefix="pull-")
                try:
                    client.unpack_layer(descriptor, directory)
                    manifest_id = ingest(directory, self._blobs)
                finally:
                    shutil.rmtree(directory, ignore_errors=True)
                _replace_file(record, manifest_id)
        return manifest_id

    def _recorded_layer(self, record: str) -> str | None:
        """The layer a pulled-layer record names, if the store still holds all of it."""
        try:
            with open(record) as f:
                manifest_id = f.read().strip()
        except OSError:
            return None
        if not self._blobs.has(manifest_id):
            return None
        files = layer_files(self._blobs, manifest_id)
        return manifest_id if all(self._blobs.has(blob_id) for blob_id in files) else None

    def _has_python(self, layer: str) -> bool:
        entries = manifest_entries(self._blobs, layer)
        return any(entry[0] in ("usr/bin/python3", "usr/local/bin/python3") and entry[1] in "fl" for entry in entries)

    def _copy_step(self, remote_dir: str, manifest: dict[str, str]) -> str:
        """A layer holding the uploaded files under `remote_dir`."""
        staging = tempfile.mkdtemp(dir=self._scratch, prefix="copy-")
        try:
            for rel, blob_id in manifest.items():
                dest = os.path.join(staging, remote_dir.lstrip("/"), rel)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                shutil.copyfile(self._files.path(blob_id), dest)
            return ingest(staging, self._blobs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _function_step(self, parent: BuiltImage, payload: bytes, timeout: float, log: Log) -> str:
        """Call a pickled function (`Image.run_function`) with the image's Python; what it wrote is a layer."""
        with tempfile.NamedTemporaryFile(dir=self._scratch, prefix="function-", suffix=".pkl") as f:
            f.write(payload)
            f.flush()
            extra = ["--ro-bind", self._runtime.path(), "/run/skyloft/runtime",  # /run is a tmpfs: not in the layer
                     "--ro-bind", f.name, "/run/skyloft/function.pkl", "--setenv", "PYTHONPATH", "/run/skyloft/runtime"]
            command = ["python3", "-m", "skyloft.container.build_function", "/run/skyloft/function.pkl"]
            return self._run_step(parent, command, log, "run_function", extra, timeout)

    def _run_step(self, parent: BuiltImage, command: list[str], log: Log, what: str, extra: list[str] | None = None,
                  timeout: float | None = None) -> str:
        """Run a command over the parent image (bubblewrap arguments `extra` added); its changes become a layer."""
        work = tempfile.mkdtemp(dir=self._scratch, prefix="step-")
        upper = os.path.join(work, "upper")
        try:
            root = mount_overlay(work, [self.layers.path(layer) for layer in parent.layers])
        except OverlayMountError as exc:
            raise ImageBuildFailed(str(exc)) from None
        try:
            argv = ["bwrap", "--bind", root, "/", *SANDBOX_ARGS,
                    "--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf",
                    "--ro-bind", _uv_binary(), "/skyloft-uv", "--bind", self._uv_cache, _UV_CACHE_IN_IMAGE,
                    "--dir", parent.workdir, "--chdir", parent.workdir,
                    "--setenv", "HOME", "/root", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
                    "--setenv", "UV_CACHE_DIR", _UV_CACHE_IN_IMAGE, "--setenv", "UV_LINK_MODE", "copy"]
            argv += _host_network_settings()
            for key, value in parent.env.items():
                argv += ["--setenv", key, value]
            self._stream([*argv, *(extra or ()), "--", *command], log, what, timeout)
        finally:
            unmount_overlay(work)
        try:
            for mountpoint in ("skyloft-uv", _UV_CACHE_IN_IMAGE.lstrip("/"), "etc/resolv.conf"):
                _remove_mountpoint(upper, mountpoint)
            return ingest(upper, self._blobs)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _stream(self, argv: list[str], log: Log, what: str, timeout: float | None = None) -> None:
        """Run a build command, streaming its output; raise with its tail if it fails or outlasts `timeout`."""
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        timer = threading.Timer(timeout, process.kill) if timeout else None
        if timer is not None:
            timer.start()
        tail: list[str] = []
        for raw in process.stdout:
            line = raw.decode("utf-8", "replace")
            tail = (tail + [line])[-30:]
            log(line)
        code = process.wait()
        if timer is not None:
            timer.cancel()
            if code == -signal.SIGKILL:
                raise ImageBuildFailed(f"image build step `{what}` timed out after {timeout:g} s "
                                       f"(raise its timeout=):\n{''.join(tail)}")
        if code != 0:
            raise ImageBuildFailed(f"image build step `{what}` failed with exit code {code}:\n{''.join(tail)}")

    def _load(self, chain: str) -> BuiltImage | None:
        try:
            with open(os.path.join(self._records, chain + ".json")) as f:
                return BuiltImage(**json.load(f))
        except (OSError, ValueError):
            return None

    def _save(self, chain: str, image: BuiltImage) -> None:
        path = os.path.join(self._records, chain + ".json")
        _replace_file(path, json.dumps({"layers": image.layers, "env": image.env, "workdir": image.workdir,
                                        "mounts": image.mounts}))


def _replace_file(path: str, text: str) -> None:
    """Write `path` whole or not at all, even while other processes sharing the cache write it too."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


@contextmanager
def _file_lock(path: str, shared: bool = False) -> Iterator[None]:
    """Hold a lock on `path` (made if missing) against other processes."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _chain_ids(spec: pb.ImageSpec) -> list[str]:
    """The id of each prefix of the image's step chain: a hash of its parent's id and its last step."""
    ids, chain = [], ""
    for step in spec.steps:
        chain = hashlib.sha256(chain.encode() + step.SerializeToString(deterministic=True)).hexdigest()
        ids.append(chain)
    return ids


def _remove_mountpoint(upper: str, rel: str) -> None:
    """Drop what bubblewrap created in the upper dir as mount points for build tools."""
    path = os.path.join(upper, rel)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


def _describe(step: pb.ImageStep) -> str:
    if step.kind == "env":
        return "ENV " + " ".join(f"{k}={v}" for k, v in sorted(step.env.items()))
    if step.kind == "function":
        return f"RUN_FUNCTION {step.args[2]}"
    if step.kind == "pip-requirements":
        return "PIP INSTALL -r requirements.txt sha256:" + hashlib.sha256(step.args[0].encode()).hexdigest()[:12]
    return f"{step.kind.upper()} {' '.join(step.args)}"


# Settings of the worker's machine that builds need to reach package indexes
# the way the machine does (its own certificate authority, its own mirror).
_FORWARDED_ENV = ("UV_INDEX_URL", "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "PIP_INDEX_URL", "HTTP_PROXY",
                  "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
_CA_IN_IMAGE = "/run/skyloft-host-ca.crt"


def _host_network_settings() -> list[str]:
    """bubblewrap arguments that give a build step the worker's network configuration."""
    argv: list[str] = []
    ca_file = os.environ.get("SSL_CERT_FILE")
    if ca_file and os.path.isfile(ca_file):
        argv += ["--ro-bind", ca_file, _CA_IN_IMAGE, "--setenv", "SSL_CERT_FILE", _CA_IN_IMAGE]
    for key in _FORWARDED_ENV:
        if os.environ.get(key):
            argv += ["--setenv", key, os.environ[key]]
    return argv


def _uv_binary() -> str:
    """uv, from the `uv` package skyloft depends on (or PATH)."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except ImportError:
        found = shutil.which("uv")
        if found is None:
            raise ImageBuildFailed("pip_install needs uv: pip install uv") from None
        return found
