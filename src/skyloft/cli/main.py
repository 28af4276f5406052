"""The `skyloft` command line."""

from __future__ import annotations

import os
import sys
import time

import click

from .. import __version__
from ..exception import Error

CONTEXT = {"help_option_names": ["-h", "--help"]}


def _fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(1)


def _client():
    from .._client.connection import get_client

    try:
        return get_client(autostart=False)
    except Error as exc:
        _fail(str(exc))


def _pb():
    from .._proto import pb

    return pb


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="skyloft")
def cli() -> None:
    """Run Python functions in containers, on this machine or your own cluster."""


# ---- run ----

@cli.command(context_settings={**CONTEXT, "ignore_unknown_options": True, "allow_extra_args": True})
@click.argument("target", metavar="FILE[::NAME]")
@click.option("--detach", is_flag=True, help="Keep the app running after this command exits, until its work is done.")
@click.option("-q", "--quiet", is_flag=True, help="Do not show the remote functions' output.")
@click.pass_context
def run(ctx: click.Context, target: str, detach: bool, quiet: bool) -> None:
    """Run a local entrypoint (or a function) of FILE in a new app.

    The entrypoint's parameters become options: `def main(n: int = 1)` is run
    with `skyloft run app.py --n 5`.
    """
    from ..app import find_entrypoint
    from .entrypoint import entry_name, find_app, import_file, parse_arguments, run_target

    path, _, name = target.partition("::")
    try:
        module = import_file(path)
        app = find_app(module)
        entry = find_entrypoint(app, name or None)
        kwargs = parse_arguments(entry, name or entry_name(entry), ctx.args)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException:
        raise
    except Error as exc:
        _fail(str(exc))
    if quiet:
        from .._output import show_remote_output

        show_remote_output(False)
    try:
        with app.run(detach=detach):
            result = run_target(entry, kwargs)
        if result is not None:
            click.echo(result)
    except KeyboardInterrupt:
        _fail("interrupted; the app was stopped")
    except Error as exc:
        _fail(str(exc))
    except Exception as exc:
        from ..serialization import format_user_traceback

        sys.stderr.write(format_user_traceback(exc))
        sys.exit(1)


# ---- server ----

@cli.group(context_settings=CONTEXT)
def server() -> None:
    """Start, stop and inspect the skyloft server (control plane + worker)."""


@server.command("start", context_settings=CONTEXT)
@click.option("--foreground", is_flag=True, help="Run in this terminal instead of as a daemon.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, type=int, help="Port to listen on (default: any free port).")
@click.option("--no-worker", is_flag=True, help="Do not run a worker inside the server; join `skyloft worker`s instead.")
@click.option("--runtime", type=click.Choice(["process", "bubblewrap"]), default=None,
              help="Container runtime of the embedded worker (default: bubblewrap where it can make namespaces, else process).")
def server_start(foreground: bool, host: str, port: int, no_worker: bool, runtime: str | None) -> None:
    """Start the server; its state lives in $SKYLOFT_HOME (default ~/.skyloft)."""
    from .._client.config import default_home
    from .._client.local_server import read_server_file, start_daemon

    home = default_home()
    running = read_server_file(home)
    if running is not None:
        click.echo(f"A skyloft server is running already at {running.url} (pid {running.pid}).")
        return
    if foreground:
        from ..server.__main__ import serve

        serve(home, host, port, not no_worker, runtime)
        return
    try:
        info = start_daemon(home, host, port, with_worker=not no_worker, quiet=True, runtime=runtime)
    except Error as exc:
        _fail(str(exc))
    click.echo(f"Started the skyloft server at {info.url} (pid {info.pid}); state in {home}.")


@server.command("stop", context_settings=CONTEXT)
def server_stop() -> None:
    """Stop the local server; accepted inputs stay stored and resume at the next start."""
    from .._client.config import default_home
    from .._client.local_server import stop_daemon

    info = stop_daemon(default_home())
    if info is None:
        click.echo("No local skyloft server is running.")
    else:
        click.echo(f"Stopped the skyloft server at {info.url} (pid {info.pid}).")


@server.command("status", context_settings=CONTEXT)
def server_status() -> None:
    """Say whether the server is reachable; exit code 1 if it is not."""
    client = _client()
    try:
        pong = client.call("Ping", _pb().Empty(), timeout=5)
    except Error as exc:
        _fail(str(exc))
    click.echo(f"skyloft server {pong.server_version} is running at {client.url}.")


# ---- worker ----

@cli.command(context_settings=CONTEXT)
@click.option("--server", "server_url", required=True, help="Control plane address, HOST:PORT.")
@click.option("--token", default=None, help="The server's token (default: $SKYLOFT_TOKEN).")
@click.option("--runtime", type=click.Choice(["process", "bubblewrap"]), default=None,
              help="Container runtime (default: bubblewrap where it can make namespaces, else process).")
def worker(server_url: str, token: str | None, runtime: str | None) -> None:
    """Run a worker agent that joins the server at --server and runs its containers."""
    import logging

    from .._client.config import default_home
    from .._client.connection import Client
    from ..worker.remote import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    token = token or os.environ.get("SKYLOFT_TOKEN")
    if not token:
        _fail("the worker needs the server's token: pass --token or set SKYLOFT_TOKEN")
    client = Client(server_url, token, server_url)
    try:
        client.call("Ping", _pb().Empty(), timeout=10, retry=True)
    except Error as exc:
        _fail(str(exc))
    home = os.path.join(default_home(), "worker-" + server_url.replace(":", "-").replace("/", "-"))
    try:
        run_worker(client, home, runtime)
    except KeyboardInterrupt:
        pass


# ---- apps ----

@cli.group(context_settings=CONTEXT)
def app() -> None:
    """List, follow and stop apps."""


def _table(headers: list[str], rows: list[list[str]]) -> None:
    """A rich table on a terminal; plain aligned columns, never cut short, when piped."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers, box=None, pad_edge=False)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    for row in [headers, *rows]:
        click.echo("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else "-"


@app.command("list", context_settings=CONTEXT)
def app_list() -> None:
    """List apps with their state and number of running containers."""
    apps = _client().call("AppList", _pb().Empty()).apps
    _table(["App ID", "Name", "State", "Containers", "Created"],
           [[a.app_id, a.name, a.state, str(a.n_containers), _when(a.created_at)] for a in apps])


def _print_logs(method: str, object_id: str, follow: bool) -> None:
    pb = _pb()
    try:
        for batch in _client().stream(method, pb.LogsRequest(id=object_id, follow=follow)):
            for line in batch.lines:
                out = sys.stderr if line.stream == pb.LogLine.STDERR else sys.stdout
                out.write(line.text)
                out.flush()
    except Error as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        pass


@app.command("logs", context_settings=CONTEXT)
@click.argument("app_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output until the app stops.")
def app_logs(app_id: str, follow: bool) -> None:
    """Print the output of an app's containers."""
    _print_logs("AppLogs", app_id, follow)


@app.command("stop", context_settings=CONTEXT)
@click.argument("app_id")
def app_stop(app_id: str) -> None:
    """Stop an app: its pending inputs are cancelled and its containers stopped."""
    try:
        _client().call("AppStop", _pb().AppStopRequest(app_id=app_id))
    except Error as exc:
        _fail(str(exc))
    click.echo(f"Stopped app {app_id}.")


# ---- images ----

@cli.group(context_settings=CONTEXT)
def image() -> None:
    """Build, list and prune images."""


@image.command("build", context_settings=CONTEXT)
@click.argument("target", metavar="FILE[::NAME]")
def image_build(target: str) -> None:
    """Build an image defined in FILE (the variable NAME, or the file's only image) on the server."""
    from .._client.code_sync import upload_files
    from .entrypoint import find_image, import_file

    path, _, name = target.partition("::")
    try:
        built = find_image(import_file(path), name or None)
        client = _client()
        upload_files(client, built.local_files)
        for batch in client.stream("ImageBuild", built.to_proto()):
            for line in batch.lines:
                sys.stdout.write(line.text)
                sys.stdout.flush()
    except Error as exc:
        _fail(str(exc))
    click.echo(f"Built image {built.object_id}.")


@image.command("list", context_settings=CONTEXT)
def image_list() -> None:
    """List the images the server's worker has built."""
    try:
        images = _client().call("ImageList", _pb().Empty()).images
    except Error as exc:
        _fail(str(exc))
    _table(["Image ID", "Layers", "Size", "Built"],
           [[i.image_id, str(i.n_layers), f"{i.size_bytes / (1 << 20):.1f} MiB", _when(i.built_at)] for i in images])


@image.command("prune", context_settings=CONTEXT)
@click.option("--all", "all_images", is_flag=True,
              help="Also remove the images that no function of a running app uses.")
def image_prune(all_images: bool) -> None:
    """Delete stored files that no image, app, input or output references.

    Built images are kept unless --all is given; files written in the last hour are kept.
    """
    try:
        result = _client().call("ImagePrune", _pb().ImagePruneRequest(all=all_images))
    except Error as exc:
        _fail(str(exc))
    images = f"{result.images_removed} image{'s' if result.images_removed != 1 else ''} and " if all_images else ""
    click.echo(f"Removed {images}{result.files_removed} stored file{'s' if result.files_removed != 1 else ''}; "
               f"freed {result.bytes_freed / (1 << 20):.1f} MiB.")


# ---- containers ----

@cli.group(context_settings=CONTEXT)
def container() -> None:
    """List, follow and stop containers."""


@container.command("list", context_settings=CONTEXT)
@click.option("--app-id", default="", help="Only the containers of this app.")
def container_list(app_id: str) -> None:
    """List running containers."""
    rows = _client().call("ContainerList", _pb().ContainerListRequest(app_id=app_id)).containers
    _table(["Container ID", "App ID", "Function", "State", "PID", "Inputs", "Started"],
           [[c.container_id, c.app_id, c.function_name, c.state, str(c.pid), str(c.n_inputs),
             _when(c.started_at)] for c in rows])


@container.command("logs", context_settings=CONTEXT)
@click.argument("container_id")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output.")
def container_logs(container_id: str, follow: bool) -> None:
    """Print the output of one container."""
    _print_logs("ContainerLogs", container_id, follow)


@container.command("stop", context_settings=CONTEXT)
@click.argument("container_id")
def container_stop(container_id: str) -> None:
    """Stop a container; the inputs it held are given to another one."""
    try:
        _client().call("ContainerStop", _pb().ContainerRef(container_id=container_id))
    except Error as exc:
        _fail(str(exc))
    click.echo(f"Stopped container {container_id}.")
