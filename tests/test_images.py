"""Images defined in code, built by the worker (mmdebstrap + bubblewrap steps,
per-file layers) and used as containers' roots by the bubblewrap runtime."""

import json
import os
import shutil
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

import skyloft
import skyloft.exception as exc
from skyloft.worker.runtime import BubblewrapRuntime

IMAGE_APP = """
import os
import sys

import skyloft

image = (
    skyloft.Image.debian_slim()
    .run_commands("echo built-in-image-RUN-TOKEN > /hello")
    .pip_install("six==1.16.0")
    .env({"GREETING": "from-image"})
    .workdir("/srv")
    .run_commands("touch made-in-workdir")
    .add_local_file("local-file.txt", "/opt/copied.txt", copy=True)
    .run_commands("cp /opt/copied.txt /opt/seen-by-a-later-step.txt")
    .add_local_dir("local-dir", "/mnt/data")
)
app = skyloft.App("images", image=image)


@app.function()
def inspect(host_path):
    import six

    return {
        "hello": open("/hello").read().strip(),
        "greeting": os.environ.get("GREETING"),
        "debian": os.path.exists("/etc/debian_version"),
        "python": "%d.%d" % sys.version_info[:2],
        "six": six.__version__,
        "cwd": os.getcwd(),
        "workdir_file": os.path.exists("/srv/made-in-workdir"),
        "sees_host_path": os.path.exists(host_path),
        "copied": open("/opt/seen-by-a-later-step.txt").read().strip(),
        "mounted": open("/mnt/data/sub/mounted.txt").read().strip(),
    }


@app.function(image=skyloft.Image.debian_slim().run_commands("echo step-output-marker; exit 7"))
def broken_run():
    return "unreachable"


@app.function(image=skyloft.Image.debian_slim().apt_install("skyloft-no-such-package"))
def broken_apt():
    return "unreachable"


def expect_build_error(function):
    try:
        function.remote()
    except skyloft.exception.ImageBuildError as e:
        return str(e).replace("\\n", " ")
    return "no error"


if __name__ == "__main__":
    with app.run():
        print("INSPECT=%r" % (inspect.remote(sys.argv[1]),))
        if sys.argv[2] == "errors":
            print("RUN-ERROR=" + expect_build_error(broken_run))
            print("APT-ERROR=" + expect_build_error(broken_apt))
"""

pytestmark = pytest.mark.skipif(
    not BubblewrapRuntime.available(),
    reason="bubblewrap cannot create namespaces here (scripts/bootstrap installs it; needs root or userns)",
)


@pytest.mark.timeout(600)
def test_image_build_run_cache_and_errors(server_factory, run_cmd_fixture, tmp_path):
    srv = server_factory(runtime="bubblewrap")
    script = tmp_path / "image_app.py"
    # A new image per run, built on the session's (cached) Debian base, even when the cache is kept.
    token = uuid.uuid4().hex[:12]
    script.write_text(textwrap.dedent(IMAGE_APP).replace("RUN-TOKEN", token))
    (tmp_path / "local-file.txt").write_text("copied-into-a-layer")
    (tmp_path / "local-dir" / "sub").mkdir(parents=True)
    (tmp_path / "local-dir" / "sub" / "mounted.txt").write_text("mounted-v1")
    host_path = str(tmp_path.parent)  # exists on the host, not in the image

    first = run_cmd_fixture([sys.executable, script, host_path, "errors"], env=srv.env, timeout=540, cwd=tmp_path)
    assert first.returncode == 0, first
    inspect = eval(first.stdout.split("INSPECT=", 1)[1].splitlines()[0])
    assert inspect == {
        "hello": f"built-in-image-{token}", "greeting": "from-image", "debian": True, "python": "3.11", "six": "1.16.0",
        "cwd": "/srv", "workdir_file": True, "sees_host_path": False, "copied": "copied-into-a-layer",
        "mounted": "mounted-v1",
    }, inspect
    # Build output streams to the caller, step by step.
    assert "building image" in first.stdout and "step 3/9" in first.stdout, first

    # A failing step raises ImageBuildError with the step and the tool's own output.
    run_error = first.stdout.split("RUN-ERROR=", 1)[1].splitlines()[0]
    assert "exit 7" in run_error and "exit code 7" in run_error and "step-output-marker" in run_error, run_error
    apt_error = first.stdout.split("APT-ERROR=", 1)[1].splitlines()[0]
    assert "skyloft-no-such-package" in apt_error and "Unable to locate package" in apt_error, apt_error

    # The same definition again is not built again.
    second = run_cmd_fixture([sys.executable, script, host_path, "no-errors"], env=srv.env, timeout=120,
                             cwd=tmp_path)
    assert second.returncode == 0, second
    assert "INSPECT=" in second.stdout and "building image" not in second.stdout, second

    # The CLI builds (here: finds built) and lists images.
    built = run_cmd_fixture([sys.executable, "-m", "skyloft", "image", "build", f"{script}::image"], env=srv.env,
                            timeout=120, cwd=tmp_path)
    assert built.returncode == 0, built
    image_id = built.stdout.strip().splitlines()[-1].split()[-1].rstrip(".")
    assert image_id.startswith("im-"), built
    listed = run_cmd_fixture([sys.executable, "-m", "skyloft", "image", "list"], env=srv.env, timeout=60)
    assert listed.returncode == 0 and image_id in listed.stdout, listed

    # A mounted (copy=False) file is read at container start: an edit needs no rebuild of earlier steps.
    (tmp_path / "local-dir" / "sub" / "mounted.txt").write_text("mounted-v2")
    third = run_cmd_fixture([sys.executable, script, host_path, "no-errors"], env=srv.env, timeout=120,
                            cwd=tmp_path)
    assert third.returncode == 0 and "'mounted': 'mounted-v2'" in third.stdout, third
    assert "RUN " not in third.stdout and "PIP " not in third.stdout, third

    # A stored file that no longer matches its hash is never served: the steps from the one that made
    # it are built again (not the Debian base below them).
    cache = Path(os.environ["SKYLOFT_IMAGE_CACHE"])
    blobs = cache / "blobs"
    hello_blob = hello_layer = None
    for record in (json.loads(p.read_text()) for p in (cache / "images").glob("*.json")):
        for layer in record["layers"]:
            for entry in json.loads((blobs / layer[:2] / layer).read_bytes())["entries"]:
                # this run's /hello (a kept SKYLOFT_TEST_IMAGE_CACHE holds earlier runs' too)
                if entry[0] == "hello" and entry[1] == "f" and \
                        (blobs / entry[5][:2] / entry[5]).read_text() == f"built-in-image-{token}\n":
                    hello_blob, hello_layer = entry[5], layer
    assert hello_blob is not None
    (blobs / hello_blob[:2] / hello_blob).write_text("tampered\n")
    # make the worker read the store again for that layer
    shutil.rmtree(cache / "layers" / hello_layer)
    for inode in (cache / "layers" / "inodes").glob(hello_blob + "-*"):
        inode.unlink()
    fourth = run_cmd_fixture([sys.executable, script, host_path, "no-errors"], env=srv.env, timeout=300,
                             cwd=tmp_path)
    assert fourth.returncode == 0 and "was corrupt on disk" in fourth.output, fourth
    assert "DEBIAN" not in fourth.output and "RUN echo built-in-image" in fourth.output, fourth
    assert f"'hello': 'built-in-image-{token}'" in fourth.stdout, fourth


def test_image_ids_hash_the_step_chain():
    base = skyloft.Image.debian_slim()
    assert base.pip_install("six").object_id == skyloft.Image.debian_slim().pip_install("six").object_id
    assert base.pip_install("six").object_id != base.pip_install("attrs").object_id
    assert base.object_id.startswith("im-")


def test_image_errors_name_the_fix():
    with pytest.raises(exc.InvalidError, match=r"3\.11 \(Debian bookworm\)"):
        skyloft.Image.debian_slim(python_version="3.9")
    with pytest.raises(exc.InvalidError, match="docker login"):
        skyloft.Image.from_registry("python:3.11", secret=object())
    with pytest.raises(exc.InvalidError, match="cannot read no-such-Dockerfile"):
        skyloft.Image.from_dockerfile("no-such-Dockerfile")
    with pytest.raises(exc.InvalidError, match="absolute"):
        skyloft.Image.debian_slim().workdir("relative/dir")
    with pytest.raises(exc.InvalidError, match="skyloft.Image"):
        skyloft.App("bad-image", image="debian:bookworm")


def test_requirements_and_pyproject_become_pip_steps(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six==1.16.0\n")
    one = skyloft.Image.debian_slim().pip_install_from_requirements(str(requirements))
    requirements.write_text("six==1.15.0\n")
    two = skyloft.Image.debian_slim().pip_install_from_requirements(str(requirements))
    assert one.object_id != two.object_id  # the file's content is part of the id
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["six"]\n'
                         '[project.optional-dependencies]\nfast = ["attrs"]\n')
    from_pyproject = skyloft.Image.debian_slim().pip_install_from_pyproject(str(pyproject), ["fast"])
    assert from_pyproject.object_id == skyloft.Image.debian_slim().pip_install("six", "attrs").object_id
    with pytest.raises(exc.InvalidError, match="slow"):
        skyloft.Image.debian_slim().pip_install_from_pyproject(str(pyproject), ["slow"])
    with pytest.raises(exc.InvalidError, match="cannot read"):
        skyloft.Image.debian_slim().pip_install_from_requirements(str(tmp_path / "missing.txt"))


def test_copy_false_files_come_last(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    mounted = skyloft.Image.debian_slim().add_local_file(str(tmp_path / "f.txt"), "/opt/f.txt")
    with pytest.raises(exc.InvalidError, match="copy=True"):
        mounted.run_commands("true")
    assert mounted.env({"A": "1"}).object_id != mounted.object_id  # metadata may still follow
    with pytest.raises(exc.InvalidError, match="absolute"):
        skyloft.Image.debian_slim().add_local_dir(str(tmp_path), "relative")


def test_force_build_changes_the_id_and_imports_tolerates_local_absence():
    assert skyloft.Image.debian_slim(force_build=True).object_id != skyloft.Image.debian_slim().object_id
    image = skyloft.Image.debian_slim()
    with image.imports():
        import skyloft_package_only_in_the_image  # noqa: F401


RUN_FUNCTION_APP = """
import time

import skyloft

MARKER = "RUN-TOKEN"  # a global the function uses: it travels with the function, by value


def download(copies, *, name):
    import os

    os.makedirs("/models", exist_ok=True)
    with open("/models/" + name, "w") as f:
        f.write(MARKER * copies)
    print("downloaded", name, flush=True)


def broken():
    raise RuntimeError("no weights at " + MARKER)


def slow():
    time.sleep(60)


base = skyloft.Image.debian_slim()
app = skyloft.App("run-function")


@app.function(image=base.run_function(download, args=(2,), kwargs={"name": "weights.txt"}))
def read():
    return open("/models/weights.txt").read()


@app.function(image=base.run_function(broken))
def uses_broken():
    return "unreachable"


@app.function(image=base.run_function(slow, timeout=1))
def uses_slow():
    return "unreachable"


def build_error(function):
    try:
        function.remote()
    except skyloft.exception.ImageBuildError as e:
        return str(e).replace("\\n", " ")
    return "no error"


@app.local_entrypoint()
def main(errors: bool = False):
    print("READ=" + read.remote())
    if errors:
        print("BROKEN=" + build_error(uses_broken))
        print("SLOW=" + build_error(uses_slow))
"""


def test_run_function_writes_a_layer(cli, tmp_path):
    token = uuid.uuid4().hex[:12]  # new images even when the session's image cache is kept
    script = tmp_path / "run_function_app.py"
    script.write_text(RUN_FUNCTION_APP.replace("RUN-TOKEN", token))

    first = cli("run", script, "--errors", timeout=300)
    assert first.returncode == 0, first
    assert f"READ={token * 2}" in first.stdout, first
    assert "RUN_FUNCTION download" in first.output and "downloaded weights.txt" in first.output, first
    broken = first.stdout.split("BROKEN=", 1)[1].splitlines()[0]
    assert f"RuntimeError: no weights at {token}" in broken and "run_function_app.py" in broken, broken
    slow = first.stdout.split("SLOW=", 1)[1].splitlines()[0]
    assert "timed out after 1 s" in slow, slow

    # Same function, same arguments: the same image, not built again.
    second = cli("run", script, timeout=120)
    assert second.returncode == 0 and f"READ={token * 2}" in second.stdout, second
    assert "building image" not in second.output, second


def test_run_function_takes_plain_functions():
    @skyloft.App("x").function()
    def decorated():
        pass

    with pytest.raises(exc.InvalidError, match="plain Python function"):
        skyloft.Image.debian_slim().run_function(decorated)
    with pytest.raises(exc.InvalidError, match="gpu=.*not supported"):
        skyloft.Image.debian_slim().run_function(print, gpu="A100")
