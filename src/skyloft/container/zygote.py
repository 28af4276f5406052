"""A warm Python per image that forks containers, so a container start costs a fork, not an interpreter.

The worker starts one zygote per image in a bubblewrap sandbox whose root is
that image, with skyloft's container runtime already imported. For each
container the worker sends a request (and the container's stdout and stderr)
over a SOCK_SEQPACKET socket; the zygote forks a child that makes the same
sandbox bubblewrap would: new PID, mount, IPC and UTS namespaces, a writable
overlay root of the image's layers, /proc, /dev, a tmpfs /tmp and /run, and
the container's bind mounts. Three processes per container:

- the child of the zygote (its PID is the container's PID for the worker,
  and its process group, made before the worker hears the PID, the
  container's), which waits for
- the namespace's init, which reaps orphans and waits for
- the container's runtime, which serves the function.

Each ends with the exit status of the one it waits for (128 + N for a
signal N); each dies when its parent does.
"""

import ctypes
import json
import os
import select
import signal
import socket
import sys
import traceback

import cloudpickle  # noqa: F401 - imported here once, so that no container imports them again
import tblib  # noqa: F401

import skyloft
import skyloft.container.runtime

_CLONE_NEWNS, _CLONE_NEWUTS, _CLONE_NEWIPC, _CLONE_NEWPID = 0x00020000, 0x04000000, 0x08000000, 0x20000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20, 0x1000, 0x4000, 0x40000
_MNT_DETACH = 2
_PR_SET_PDEATHSIG = 1
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(),
                       ctypes.c_ulong(flags), data and data.encode()), f"mount {target}")


def _die_with_parent() -> None:
    _check(_libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")


def _exit_code(status: int) -> int:
    """A wait status as a shell would report it: the exit code, or 128 + the signal."""
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _make_root(request: dict) -> None:
    """In the container's new mount namespace: build its root, then make it `/`."""
    root = request["root"]
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount("overlay", root, "overlay", 0, request["overlay"])
    for path in ("proc", "dev", "tmp", "run"):
        os.makedirs(os.path.join(root, path), exist_ok=True)
    _mount("proc", root + "/proc", "proc", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC)
    _mount("/dev", root + "/dev", None, _MS_BIND | _MS_REC)
    _mount("tmpfs", root + "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=1777")
    _mount("tmpfs", root + "/run", "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=755")
    for source, target, read_only in request["binds"]:
        inside = root + target
        if os.path.isdir(source):
            os.makedirs(inside, exist_ok=True)
        else:
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            open(inside, "a").close()
        _mount(source, inside, None, _MS_BIND | _MS_REC)
        if read_only:
            _mount(None, inside, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | _MS_REC)
    os.makedirs(root + request["cwd"], exist_ok=True)
    os.chdir(root)
    _check(_libc.syscall(_SYS_PIVOT_ROOT[os.uname().machine], b".", b"."), "pivot_root")
    _check(_libc.umount2(b".", _MNT_DETACH), "umount the old root")
    os.chdir("/")


def _serve_function(request: dict, out: int, err: int) -> None:
    """The container's runtime, in the interpreter the zygote warmed up."""
    null = os.open("/dev/null", os.O_RDONLY)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = sys.argv[:1]
    os.chdir(request["cwd"])
    sys.path_importer_cache.clear()  # the code directory did not exist in the zygote
    code = 0
    try:
        skyloft.container.runtime.main()
    except SystemExit as exc:  # as the interpreter ends: an int is the code, anything else is printed
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 - what a Python process would print before exiting with 1
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _init(request: dict, out: int, err: int) -> None:
    """PID 1 of the container: set up its root, start its runtime, reap until the runtime ends."""
    _die_with_parent()
    _make_root(request)
    _check(_libc.sethostname(request["hostname"].encode(), len(request["hostname"].encode())), "sethostname")
    runtime = os.fork()
    if runtime == 0:
        _die_with_parent()
        _serve_function(request, out, err)
    os.close(out)
    os.close(err)
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == runtime:
            os._exit(_exit_code(status))


def _container(request: dict, out: int, err: int, closing: list[int]) -> None:
    """The zygote's child: a process group of its own, new namespaces, and their init."""
    for fd in closing:
        os.close(fd)
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setpgid(0, 0)  # the zygote does it too, so the group exists once the worker hears the PID
    _die_with_parent()
    _check(_libc.unshare(_CLONE_NEWNS | _CLONE_NEWPID | _CLONE_NEWIPC | _CLONE_NEWUTS), "unshare")
    init = os.fork()
    if init == 0:
        _init(request, out, err)
    os.close(out)
    os.close(err)
    _, status = os.waitpid(init, 0)
    os._exit(_exit_code(status))


def _spawn(channel: socket.socket, closing: list[int]) -> bool:
    """Fork the container one request asks for; False when the worker has gone."""
    data, fds, _, _ = socket.recv_fds(channel, 1 << 20, 2)
    if not data:
        return False
    request = json.loads(data)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        try:
            _container(request, fds[0], fds[1], closing)
        except BaseException:  # noqa: BLE001 - the container fails to start; its stderr says why
            os.write(fds[1], traceback.format_exc().encode())
        os._exit(127)
    try:
        os.setpgid(pid, pid)
    except ProcessLookupError:  # already gone; the worker hears how it exited next
        pass
    for fd in fds:
        os.close(fd)
    channel.send(json.dumps({"id": request["id"], "pid": pid}).encode())
    return True


def _reap(channel: socket.socket) -> None:
    """Tell the worker how each finished container ended."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        # As `subprocess` reports it: a container killed by a signal N is -N.
        channel.send(json.dumps({"pid": pid, "exit": os.waitstatus_to_exitcode(status)}).encode())


def main(fd: int) -> None:
    channel = socket.socket(fileno=fd)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_write, warn_on_full_buffer=False)
    channel.send(json.dumps({"ready": True}).encode())
    closing = [fd, wake_read, wake_write]
    while True:
        readable, _, _ = select.select([fd, wake_read], [], [])
        if wake_read in readable:
            os.read(wake_read, 4096)
        if fd in readable and not _spawn(channel, closing):
            return
        _reap(channel)


if __name__ == "__main__":
    main(int(sys.argv[1]))
