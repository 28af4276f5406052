"""Run the benchmark suite and record the results.

    python benchmarks/run.py                        # everything, full size
    python benchmarks/run.py --quick                # small sizes, a smoke run
    python benchmarks/run.py --only round_trip      # one benchmark (repeatable, or comma-separated)
    python benchmarks/run.py --systems ray,floor    # a subset of the systems

Each system runs in its own child process, one after the other, so that a crash or hang
in one framework is recorded as an error and the others still run. Results are merged
into benchmarks/results/<date>-<host>.json (``-quick`` appended for quick runs) and
printed as markdown tables.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from benchmarks import report
from benchmarks.common import BENCHMARKS, FULL, QUICK, Params
from benchmarks.machine import machine_info, package_versions
from benchmarks.skyloft_bench import stop_leftover_server

REPO_ROOT = Path(__file__).resolve().parent.parent
# System name -> module; the floor runs first, before any framework has started threads.
SYSTEMS = {
    "floor": "benchmarks.floor",
    "skyloft": "benchmarks.skyloft_bench",
    "ray": "benchmarks.ray_bench",
    "dask": "benchmarks.dask_bench",
}


def _error(exc: BaseException) -> str:
    """Describe an exception in one line."""
    return f"{type(exc).__name__}: {exc}".strip().splitlines()[0]


def implemented(system: str, benches: list[str]) -> list[str]:
    """Return those of ``benches`` that ``system`` implements (importing no framework)."""
    module = importlib.import_module(SYSTEMS[system])
    return [bench for bench in benches if hasattr(module, bench)]


def run_system(system: str, benches: list[str], params: Params, out: Path) -> None:
    """Run ``benches`` for one system in this process, saving rows per benchmark to ``out``.

    ``out`` is rewritten after every benchmark, so a run killed later keeps what it
    measured. A failing benchmark becomes an error row; a failing session start or stop
    becomes an error row for every benchmark that has no result yet.
    """
    results: dict[str, list[dict]] = {}
    try:
        module = importlib.import_module(SYSTEMS[system])
        with module.session() as ctx:
            for bench in benches:
                print(f"[{system}] {bench} ...", file=sys.stderr, flush=True)
                try:
                    results[bench] = getattr(module, bench)(ctx, params)
                except Exception as exc:
                    traceback.print_exc()
                    results[bench] = [{"label": bench, "error": _error(exc)}]
                for row in results[bench]:
                    result = report.format_result(bench, row)
                    print(f"[{system}] {bench}: {row['label']}: {result}", file=sys.stderr)
                out.write_text(json.dumps(results))
    except Exception as exc:
        traceback.print_exc()
        for bench in benches:
            results.setdefault(bench, [{"label": "session", "error": _error(exc)}])
    out.write_text(json.dumps(results))


def run_isolated(system: str, benches: list[str], quick: bool, timeout: float) -> dict:
    """Run one system in a child process with its own SKYLOFT_HOME, killed after ``timeout`` s."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{system}-") as scratch:
        out = Path(scratch) / "results.json"
        home = str(Path(scratch) / "skyloft-home")
        argv = [sys.executable, "-m", "benchmarks.run", "--child", system, "--child-out", str(out),
                "--only", ",".join(benches)] + (["--quick"] if quick else [])
        env = {**os.environ, "SKYLOFT_HOME": home}
        child = subprocess.Popen(argv, cwd=REPO_ROOT, env=env, start_new_session=True)
        try:
            child.wait(timeout=timeout)
            failure = f"child process exited with status {child.returncode}"
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            failure = f"timed out after {timeout:.0f} s"
        if system == "skyloft" and child.returncode != 0:
            stop_leftover_server(home)
        results = json.loads(out.read_text()) if out.exists() else {}
        for bench in benches:
            results.setdefault(bench, [{"label": "run", "error": failure}])
        return results


def results_path(quick: bool) -> Path:
    """Return benchmarks/results/<date>-<host>[-quick].json."""
    m = machine_info()
    name = f"{m['date'][:10]}-{m['host']}{'-quick' if quick else ''}.json"
    return REPO_ROOT / "benchmarks" / "results" / name


def merge_results(path: Path, quick: bool, params: Params, new: dict) -> dict:
    """Merge ``new`` rows (per benchmark, per system) into the document at ``path`` and save it."""
    earlier = json.loads(path.read_text())["results"] if path.exists() else {}
    doc = {"machine": machine_info(), "versions": package_versions(), "quick": quick, "results": earlier}
    measured_at = doc["machine"]["date"]
    for bench, by_system in new.items():
        for system, rows in by_system.items():
            entry = {"measured_at": measured_at, "params": params.to_dict(), "rows": rows}
            doc["results"].setdefault(bench, {})[system] = entry
    doc["results"] = {b: doc["results"][b] for b in BENCHMARKS if b in doc["results"]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def _names(values: list[str] | None, known: dict) -> list[str]:
    """Expand repeated/comma-separated names, in catalogue order; all of them if none given."""
    if not values:
        return list(known)
    wanted = {name for value in values for name in value.split(",") if name}
    unknown = wanted - set(known)
    if unknown:
        raise SystemExit(f"unknown: {', '.join(sorted(unknown))}; choose from {', '.join(known)}")
    return [name for name in known if name in wanted]


def compile_sources() -> None:
    """Byte-compile skyloft and the venv first, as an installed package would be.

    Where PYTHONDONTWRITEBYTECODE is set (as on these machines), Python would
    otherwise compile every module again in every process, which then weighs
    on start-up figures (`skyloft run`, cold start) without being ours.
    """
    import sysconfig

    for path in (REPO_ROOT / "src", Path(sysconfig.get_paths()["purelib"])):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(path)], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments; run each selected system in isolation, then save and print results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", metavar="NAME",
                        help=f"benchmarks: {', '.join(BENCHMARKS)}")
    parser.add_argument("--systems", action="append", metavar="NAME",
                        help=f"systems: {', '.join(SYSTEMS)}")
    parser.add_argument("--quick", action="store_true", help="small sizes for a fast smoke run")
    parser.add_argument("--timeout", type=float, help="seconds per system (default 900, quick 300)")
    parser.add_argument("--out", type=Path,
                        help="results file (default benchmarks/results/<date>-<host>.json)")
    parser.add_argument("--child", choices=SYSTEMS, help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    benches = _names(args.only, BENCHMARKS)
    params = QUICK if args.quick else FULL

    if args.child:
        run_system(args.child, benches, params, args.child_out)
        return

    compile_sources()
    timeout = args.timeout or (300 if args.quick else 900)
    new: dict[str, dict[str, list[dict]]] = {}
    for system in _names(args.systems, SYSTEMS):
        todo = implemented(system, benches)
        if not todo:
            continue
        for bench, rows in run_isolated(system, todo, args.quick, timeout).items():
            new.setdefault(bench, {})[system] = rows
    path = args.out or results_path(args.quick)
    doc = merge_results(path, args.quick, params, new)
    print(report.render_markdown(doc))
    print(f"\nresults: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
