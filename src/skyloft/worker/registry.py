"""Pulling images from OCI registries (the distribution API, v2).

A pull resolves a reference to one platform's manifest, reads the image's
config (its environment and working directory) and unpacks each layer,
gzip, zstd or plain tar, into a directory in overlayfs' format (whiteouts
as 0/0 character devices, opaque directories as an xattr), which the
builder then records per file like any other layer. Anonymous and bearer
token auth are supported; credentials come from the worker's
`~/.docker/config.json`, as for docker, podman and skopeo.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import re
import stat
import tarfile
import tempfile
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from typing import IO

import httpx

_DOCKER_HUB = "registry-1.docker.io"
_MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
_OPAQUE = ".wh..wh..opq"
_WHITEOUT = ".wh."
_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm"}


class RegistryError(Exception):
    """The registry refused, or sent something that is not a usable image; the message says which."""


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    reference: str   # a tag, or a digest (sha256:...)

    def __str__(self) -> str:
        separator = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.registry}/{self.repository}{separator}{self.reference}"


@dataclass
class PulledConfig:
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"


def parse_reference(tag: str) -> Reference:
    """`python:3.11-slim`, `ghcr.io/org/app@sha256:...` or `localhost:5000/team/app:v1`, as docker reads them."""
    name, digest = (tag.split("@", 1) + [""])[:2]
    reference = digest
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag_part = name.rsplit(":", 1)
        reference = reference or tag_part
    reference = reference or "latest"
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = _DOCKER_HUB, name
        if "/" not in repository:
            repository = "library/" + repository
    if not re.fullmatch(r"[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*", repository):
        raise RegistryError(f"{tag!r} is not an image reference (expected e.g. python:3.11-slim)")
    return Reference(registry, repository, reference)


class RegistryClient:
    """One repository on one registry, with the token its auth challenge asked for."""

    def __init__(self, ref: Reference, log: Callable[[str], None]) -> None:
        self.ref = ref
        self._log = log
        self._base = f"{_scheme(ref.registry)}://{ref.registry}/v2/{ref.repository}"
        self._http = httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0, connect=15.0),
                                  verify=os.environ.get("SSL_CERT_FILE") or True)
        self._auth: dict[str, str] = {}

    def close(self) -> None:
        self._http.close()

    def manifest(self) -> dict:
        """This machine's platform's image manifest for the reference."""
        manifest = self._manifest(self.ref.reference)
        if manifest.get("mediaType") in _INDEX_TYPES or "manifests" in manifest:
            manifest = self._manifest(_pick_platform(manifest, self.ref))
        if "layers" not in manifest or "config" not in manifest:
            raise RegistryError(f"{self.ref} is not an image manifest (media type {manifest.get('mediaType')!r})")
        return manifest

    def config(self, manifest: dict) -> PulledConfig:
        with self._blob(manifest["config"]) as blob:
            document = json.loads(blob.read())
        settings = document.get("config") or {}
        env = dict(item.split("=", 1) for item in settings.get("Env") or [] if "=" in item)
        return PulledConfig(env=env, workdir=settings.get("WorkingDir") or "/")

    def unpack_layer(self, descriptor: dict, directory: str) -> None:
        """Unpack one layer into `directory`, in overlayfs' format."""
        with self._blob(descriptor) as blob:
            magic = blob.read(4)
            blob.seek(0)
            if magic == b"\x28\xb5\x2f\xfd":
                import zstandard

                with zstandard.ZstdDecompressor().stream_reader(blob) as stream:
                    _unpack(tarfile.open(fileobj=stream, mode="r|"), directory, self.ref)
            else:  # gzip or plain: tarfile tells them apart
                with tarfile.open(fileobj=blob, mode="r:*") as archive:
                    _unpack(archive, directory, self.ref)

    def _manifest(self, reference: str) -> dict:
        response = self._send(f"{self._base}/manifests/{reference}", _MANIFEST_TYPES, stream=False)
        try:
            return response.json()
        except ValueError:
            raise RegistryError(f"{self.ref}: the registry's manifest is not JSON") from None

    def _blob(self, descriptor: dict) -> IO[bytes]:
        """The blob downloaded to a temporary file, its digest checked."""
        digest = descriptor["digest"]
        algorithm, _, expected = digest.partition(":")
        if algorithm != "sha256":
            raise RegistryError(f"{self.ref}: layer digest {digest} uses {algorithm}, not sha256")
        size = int(descriptor.get("size") or 0)
        self._log(f"pulling {digest[:19]} ({size / 1e6:.1f} MB)\n")
        sink = tempfile.TemporaryFile()
        hasher = hashlib.sha256()
        with self._stream(f"{self._base}/blobs/{digest}") as response:
            for chunk in response.iter_bytes(1 << 20):
                hasher.update(chunk)
                sink.write(chunk)
        if hasher.hexdigest() != expected:
            sink.close()
            raise RegistryError(f"{self.ref}: blob {digest} arrived with digest sha256:{hasher.hexdigest()}")
        sink.seek(0)
        return sink

    def _stream(self, url: str) -> closing[httpx.Response]:
        return closing(self._send(url, "*/*", stream=True))

    def _send(self, url: str, accept: str, stream: bool) -> httpx.Response:
        for attempt in range(2):
            request = self._http.build_request("GET", url, headers={"Accept": accept, **self._auth})
            try:
                response = self._http.send(request, stream=stream)
            except httpx.HTTPError as exc:
                raise RegistryError(f"cannot reach registry {self.ref.registry}: {exc}") from None
            if response.status_code == 401 and attempt == 0:
                challenge = response.headers.get("www-authenticate", "")
                response.close()
                self._authenticate(challenge)
                continue
            if response.status_code >= 400:
                if stream:
                    response.read()
                response.close()
                raise RegistryError(_describe_failure(self.ref, response))
            return response
        raise RegistryError(f"registry {self.ref.registry} refused the credentials for {self.ref.repository} "
                            "(401); check ~/.docker/config.json on the worker")

    def _authenticate(self, challenge: str) -> None:
        """Answer a `Basic` or `Bearer` challenge (RFC 6750, as Docker's token service speaks it)."""
        scheme, _, params_text = challenge.partition(" ")
        credentials = _docker_credentials(self.ref.registry)
        if scheme.lower() == "basic":
            if credentials is None:
                raise RegistryError(f"registry {self.ref.registry} needs a login for {self.ref.repository}; "
                                    "add it to ~/.docker/config.json on the worker (docker login)")
            self._auth = {"Authorization": "Basic " + base64.b64encode(":".join(credentials).encode()).decode()}
            return
        if scheme.lower() != "bearer":
            raise RegistryError(f"registry {self.ref.registry} asks for {scheme or 'an unknown'} auth, "
                                "which skyloft does not speak")
        params = dict(re.findall(r'(\w+)="([^"]*)"', params_text))
        if "realm" not in params:
            raise RegistryError(f"registry {self.ref.registry} sent a bearer challenge without a realm")
        query = {key: params[key] for key in ("service", "scope") if key in params}
        query.setdefault("scope", f"repository:{self.ref.repository}:pull")
        try:
            response = self._http.get(params["realm"], params=query, auth=credentials)
        except httpx.HTTPError as exc:
            raise RegistryError(f"cannot reach the token service of {self.ref.registry}: {exc}") from None
        if response.status_code != 200:
            hint = (" (no login for it in the worker's ~/.docker/config.json: run `docker login` there)"
                    if credentials is None else " (check the login in the worker's ~/.docker/config.json)")
            raise RegistryError(f"the token service of {self.ref.registry} refused access to "
                                f"{self.ref.repository} ({response.status_code}){hint}: {response.text[:300]}")
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"the token service of {self.ref.registry} answered without a token")
        self._auth = {"Authorization": f"Bearer {token}"}


def _scheme(registry: str) -> str:
    """Plain HTTP for registries on this machine (as docker does) and those the worker lists as insecure."""
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    insecure = {name.strip() for name in os.environ.get("SKYLOFT_INSECURE_REGISTRIES", "").split(",") if name}
    if host in ("localhost", "127.0.0.1", "[::1]") or registry in insecure:
        return "http"
    return "https"


def _describe_failure(ref: Reference, response: httpx.Response) -> str:
    """The registry's own error codes and messages, with what to do for the common ones."""
    try:
        errors = response.json().get("errors") or []
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
    except ValueError:
        detail = response.text[:300]
    if response.status_code == 404:
        return f"registry {ref.registry} has no image {ref.repository}:{ref.reference} (404 {detail}); check the tag"
    return f"registry {ref.registry} answered {response.status_code} for {ref}: {detail}"


def _pick_platform(index: dict, ref: Reference) -> str:
    """The digest of the index's entry for linux on this machine's architecture."""
    arch = _ARCHITECTURES.get(platform.machine(), platform.machine())
    offered = []
    for entry in index.get("manifests", []):
        wanted = entry.get("platform") or {}
        offered.append(f"{wanted.get('os')}/{wanted.get('architecture')}")
        if wanted.get("os") == "linux" and wanted.get("architecture") == arch:
            return entry["digest"]
    raise RegistryError(f"{ref} has no linux/{arch} image (it has: {', '.join(offered) or 'none'})")


def _unpack(archive: tarfile.TarFile, root: str, ref: Reference) -> None:
    """Extract a layer, turning OCI whiteouts into overlayfs ones and refusing paths that leave `root`."""
    real_root = os.path.realpath(root)
    for member in archive:
        name = os.path.normpath(member.name.lstrip("/"))
        if name in (".", ""):
            continue
        if name.startswith("..") or os.path.isabs(name):
            raise RegistryError(f"{ref}: a layer holds the path {member.name!r}, outside the image")
        parent, base = os.path.split(name)
        parent_path = os.path.join(root, parent)
        # Checked before anything is made there: a link in the layer must not lead a write onto the host.
        if not (os.path.realpath(parent_path) + "/").startswith(real_root + "/"):
            raise RegistryError(f"{ref}: a layer writes {member.name!r} through a link out of the image")
        os.makedirs(parent_path, exist_ok=True)
        if base == _OPAQUE:
            os.setxattr(parent_path, "trusted.overlay.opaque", b"y")
            continue
        if base.startswith(_WHITEOUT):
            os.mknod(os.path.join(parent_path, base[len(_WHITEOUT):]), stat.S_IFCHR | 0o000, os.makedev(0, 0))
            continue
        if member.ischr() or member.isblk() or member.isfifo():
            continue  # the runtime provides /dev
        if member.islnk():
            member.linkname = os.path.normpath(member.linkname.lstrip("/"))
            if member.linkname.startswith(".."):
                raise RegistryError(f"{ref}: a layer hard-links {member.linkname!r}, outside the image")
        member.name = name
        target = os.path.join(root, name)
        if os.path.islink(target) or (os.path.lexists(target) and not os.path.isdir(target)):
            os.unlink(target)  # a later entry replaces an earlier one; never write through a link
        archive.extract(member, root, set_attrs=True, numeric_owner=True, filter="fully_trusted")


def _docker_credentials(registry: str) -> tuple[str, str] | None:
    """The login `docker login` stored for `registry` on this machine, if any."""
    path = os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json")
    try:
        with open(path) as f:
            auths = json.load(f).get("auths") or {}
    except (OSError, ValueError):
        return None
    keys = [registry, f"https://{registry}", f"http://{registry}"]
    if registry == _DOCKER_HUB:
        keys += ["https://index.docker.io/v1/", "docker.io", "index.docker.io"]
    for key in keys:
        encoded = (auths.get(key) or {}).get("auth")
        if encoded:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
            return user, password
    return None
