"""Render benchmark results as markdown, and update the results section of docs/benchmarks.md.

Usage: ``python benchmarks/report.py [RESULTS.json] [--write-doc]`` (default: newest file in
benchmarks/results/).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from benchmarks.common import BENCHMARKS, TARGETS

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
DOC = REPO_ROOT / "docs" / "benchmarks.md"
DOC_START, DOC_END = "<!-- results:start -->", "<!-- results:end -->"
SYSTEM_ORDER = ("skyloft", "ray", "dask", "floor")


def _ms(value: float) -> str:
    """Format a duration given in milliseconds, in µs below 1 ms and in s from 1 s."""
    if value < 1:
        return f"{value * 1000:.0f} µs"
    return f"{value:.2f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def format_result(bench: str, row: dict) -> str:
    """Return the headline figures of one result row as text."""
    if "error" in row:
        return f"**error**: {row['error']}"
    if bench == "round_trip":
        return f"p50 {_ms(row['p50_ms'])} · p99 {_ms(row['p99_ms'])}"
    if bench == "cold_start":
        text = f"p50 {_ms(row['p50_ms'])} · max {_ms(row['max_ms'])}"
        if "with_app_run_p50_ms" in row:
            text += f" · incl. `app.run()` p50 {_ms(row['with_app_run_p50_ms'])}"
        return text
    if bench == "map_throughput":
        return f"{row['inputs_per_s']:,.0f} inputs/s"
    text = f"median {row['median_s']:.3f} s · min {row['min_s']:.3f} s"
    if "first_s" in row:
        text += f" · first {row['first_s']:.3f} s"
    return text


def target_status(bench: str, system: str, row: dict) -> str:
    """Say whether a skyloft row meets its target; empty for other systems."""
    key, op, bound = TARGETS[bench]
    if system != "skyloft" or key not in row:
        return ""
    met = row[key] <= bound if op == "<=" else row[key] >= bound
    return f"{'met' if met else 'missed'} ({BENCHMARKS[bench][1]})"


def machine_markdown(doc: dict) -> str:
    """Return a bullet list describing the machine and the package versions."""
    m = doc["machine"]
    versions = ", ".join(f"{name} {v or 'not installed'}" for name, v in doc["versions"].items())
    return "\n".join(
        [
            f"- Date: {m['date']} · host `{m['host']}`",
            f"- CPU: {m['nproc']} × {m['cpu_model']} · RAM {m['ram_gib']} GiB",
            f"- Kernel {m['kernel']} · Python {m['python']}",
            f"- Versions: {versions}",
        ]
    )


def benchmark_markdown(bench: str, by_system: dict) -> str:
    """Return a heading and a table with one line per (system, measurement)."""
    title, _ = BENCHMARKS[bench]
    lines = [f"### {title}", "", "| System | Measured | Result | Target |", "|---|---|---|---|"]
    for system in sorted(by_system, key=SYSTEM_ORDER.index):
        for row in by_system[system]["rows"]:
            result = format_result(bench, row)
            target = target_status(bench, system, row)
            lines.append(f"| {system} | {row['label']} | {result} | {target} |")
    return "\n".join(lines)


def render_markdown(doc: dict) -> str:
    """Render a whole results document: machine description, then one table per benchmark."""
    parts = [machine_markdown(doc)]
    if doc.get("quick"):
        parts.append("_Quick smoke run: small sizes, figures are indicative only._")
    parts += [benchmark_markdown(b, doc["results"][b]) for b in BENCHMARKS if b in doc["results"]]
    return "\n\n".join(parts)


def write_doc(markdown: str, path: Path = DOC) -> None:
    """Replace the text between the results markers of ``path`` with ``markdown``."""
    text = path.read_text()
    head, rest = text.split(DOC_START, 1)
    _, tail = rest.split(DOC_END, 1)
    path.write_text(f"{head}{DOC_START}\n{markdown}\n{DOC_END}{tail}")


def newest_results() -> Path:
    """Return the most recently modified results file."""
    files = sorted(RESULTS_DIR.glob("*.json"), key=lambda f: f.stat().st_mtime)
    if not files:
        raise SystemExit(f"no results in {RESULTS_DIR}; run benchmarks/run.py first")
    return files[-1]


def main(argv: list[str] | None = None) -> None:
    """Print the markdown for a results file, optionally writing it into the doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", type=Path, help="results JSON (default: newest)")
    parser.add_argument("--write-doc", action="store_true", help=f"update {DOC.relative_to(REPO_ROOT)}")
    args = parser.parse_args(argv)
    markdown = render_markdown(json.loads((args.results or newest_results()).read_text()))
    print(markdown)
    if args.write_doc:
        write_doc(markdown)


if __name__ == "__main__":
    main()
