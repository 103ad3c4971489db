"""Lambda cold start: each function's package size, its init time, and where that time goes.

    python bench/bench_cold_start.py                        # sam build, then measure
    python bench/bench_cold_start.py --source DIR           # another checkout (a `git archive` of a commit)
    python bench/bench_cold_start.py --no-build             # measure the last build again
    python bench/bench_cold_start.py --before OLD.json      # and print a before/after table

1. `sam build` (.tools/sam/bin/sam, from `scripts/setup --with-sam`) builds the
   functions and layers of SOURCE/template.yaml into BUILD_DIR, as they deploy.
2. Per function: its package's size (files, and zipped as SAM uploads it), and each layer's.
3. Init, as Lambda runs it: the handler module imported in a fresh interpreter, RUNS
   times, and the median taken. The interpreter sees what Lambda's does: the standard
   library (`-S`: no site-packages), the function's folder and its layers' python/
   folders. `-B`, because /var/task and /opt are read-only on Lambda: what is compiled
   at import time is never kept. `-X importtime` gives the import's wall time (the
   handler module's cumulative time) and each module's own time, summed per top-level
   package for the three heaviest ones.
4. The imports the handlers defer to first use (boto3, Powertools parameters, the
   Slack webhook client), timed the same way from each layer: the cost that init no
   longer pays, paid by the first invocation that needs it.

The machine's load average is recorded with the results: on a shared machine it
moves every time.

Output: bench/out/cold_start.json (or --out) and Markdown tables on stdout.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import sys
import zipfile
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from threadline.twin.template import load_yaml

ROOT = Path(__file__).resolve().parents[1]
SAM = ROOT / ".tools" / "sam" / "bin" / "sam"
DEFERRED = ("boto3", "aws_lambda_powertools.utilities.parameters", "slack_sdk.webhook")
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| ( *)(\S+)$")


@dataclass
class ImportTiming:
    wall_ms: float  # median over the runs of the module's cumulative import time
    cpu_ms: float  # median CPU time of the import: less moved by other processes than wall time
    runs_ms: list[float]
    heaviest: list[tuple[str, float]]  # top-level packages, median summed own time (ms)


@dataclass
class FunctionResult:
    name: str
    handler: str
    package_bytes: int
    package_zip_bytes: int
    layers: list[str]
    init: ImportTiming


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=ROOT, help="the checkout to build (default: this one)")
    parser.add_argument("--build-dir", type=Path, help="default: SOURCE/.aws-sam/bench")
    parser.add_argument("--no-build", action="store_true", help="measure BUILD_DIR as it is")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "cold_start.json")
    parser.add_argument("--before", type=Path, help="an earlier --out file: adds a before/after table")
    args = parser.parse_args()

    source = args.source.resolve()
    build_dir = (args.build_dir or source / ".aws-sam" / "bench").resolve()
    if not args.no_build:
        sam_build(source, build_dir)
    load_before = os.getloadavg()[0]
    results = measure(build_dir, args.runs)
    results["load_average"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    results["source"] = str(source)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")

    print(report(results))
    if args.before:
        print()
        print(compare(json.loads(args.before.read_text(encoding="utf-8")), results))
    print(f"\nWritten: {args.out}")


def sam_build(source: Path, build_dir: Path) -> None:
    """`sam build` with this interpreter's folder first on PATH: it supplies the python3.13 the build needs."""
    if not SAM.exists():
        sys.exit(f"no SAM CLI at {SAM}: run scripts/setup --with-sam")
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    subprocess.run([str(SAM), "build", "--template-file", str(source / "template.yaml"),
                    "--build-dir", str(build_dir), "--parallel"], cwd=source, env=env, check=True)


def measure(build_dir: Path, runs: int) -> dict[str, Any]:
    resources = load_yaml(build_dir / "template.yaml")["Resources"]
    layers = {name: build_dir / str(r["Properties"]["ContentUri"]) for name, r in resources.items()
              if r["Type"] == "AWS::Serverless::LayerVersion"}
    functions = []
    for name, resource in sorted(resources.items()):
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        code = build_dir / str(props["CodeUri"])
        layer_names = [layer["Ref"] for layer in props.get("Layers", []) if isinstance(layer, dict)]
        path = [code, *(layers[layer] / "python" for layer in layer_names)]
        module = str(props["Handler"]).rsplit(".", 1)[0]
        functions.append(FunctionResult(name, str(props["Handler"]), folder_bytes(code), zipped_bytes(code),
                                        layer_names, time_import(module, path, code, runs)))
    deferred = {layer: {module: deferred_import(module, folder, runs) for module in DEFERRED}
                for layer, folder in layers.items()}
    return {
        "runs": runs,
        "python": sys.version.split()[0],
        "functions": [asdict(f) for f in functions],
        "layers": {name: {"bytes": folder_bytes(folder), "zip_bytes": zipped_bytes(folder)}
                   for name, folder in layers.items()},
        "deferred": deferred,
    }


def deferred_import(module: str, layer: Path, runs: int) -> dict[str, Any] | None:
    """A first-use import timed from the layer alone; None when the layer does not hold it."""
    try:
        return asdict(time_import(module, [layer / "python"], layer, runs))
    except ModuleNotFoundError:
        return None


def time_import(module: str, path: list[Path], cwd: Path, runs: int) -> ImportTiming:
    """Import `module` in `runs` fresh interpreters that see only the standard library and `path`."""
    env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8",
           "PYTHONPATH": os.pathsep.join(str(p) for p in path)}
    code = f"import time; start = time.process_time(); import {module}; print(time.process_time() - start)"
    walls, cpus, packages = [], [], defaultdict(list)
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-S", "-B", "-X", "importtime", "-c", code], cwd=cwd, env=env,
                              capture_output=True, text=True)
        if "ModuleNotFoundError" in done.stderr:
            raise ModuleNotFoundError(f"{module} (or what it imports) is not on {env['PYTHONPATH']}")
        if done.returncode != 0:
            raise RuntimeError(f"importing {module} failed:\n{done.stderr[-2000:]}")
        total, own = parse_importtime(done.stderr, module)
        walls.append(total)
        cpus.append(float(done.stdout.strip()) * 1000)
        for package, ms in own.items():
            packages[package].append(ms)
    heaviest = sorted(((p, statistics.median(v + [0.0] * (runs - len(v)))) for p, v in packages.items()),
                      key=lambda item: -item[1])[:3]
    return ImportTiming(round(statistics.median(walls), 1), round(statistics.median(cpus), 1),
                        [round(w, 1) for w in walls], [(p, round(ms, 1)) for p, ms in heaviest])


def parse_importtime(stderr: str, module: str) -> tuple[float, dict[str, float]]:
    """`module`'s cumulative import time (ms), and the own time (ms) of what it imported, per top-level package.

    `-X importtime` lists a module after everything it imported, indented one step
    deeper per level: `module`'s imports are the lines between the previous
    unindented line and its own.
    """
    subtree: list[tuple[str, float]] = []
    for line in stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if not match:
            continue
        own_us, total_us, indent, name = int(match[1]), int(match[2]), match[3], match[4]
        if indent:
            subtree.append((name, own_us / 1000))
        elif name == module:
            own: dict[str, float] = defaultdict(float)
            for child, ms in subtree:
                own[child.split(".")[0]] += ms
            return total_us / 1000, dict(own)
        else:
            subtree = []
    raise RuntimeError(f"-X importtime did not list {module}")


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def zipped_bytes(folder: Path) -> int:
    """The folder as a deflated zip, as `sam package` uploads it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder))
    return buffer.tell()


def report(results: dict[str, Any]) -> str:
    lines = [f"Python {results['python']}, median of {results['runs']} fresh interpreters, "
             f"load average {results['load_average'][0]} -> {results['load_average'][1]}", "",
             "| function | package (zip) | init ms (CPU ms) | heaviest packages, own ms |", "|---|---|---|---|"]
    for f in results["functions"]:
        heaviest = ", ".join(f"{p} {ms:.0f}" for p, ms in f["init"]["heaviest"])
        lines.append(f"| {f['name']} | {mb(f['package_bytes'])} ({mb(f['package_zip_bytes'])}) "
                     f"| {f['init']['wall_ms']:.0f} ({f['init']['cpu_ms']:.0f}) | {heaviest} |")
    for name, size in results["layers"].items():
        lines.append(f"| layer {name} | {mb(size['bytes'])} ({mb(size['zip_bytes'])}) | | |")
    lines += ["", "| deferred import (first use) | " + " | ".join(DEFERRED) + " |",
              "|---|" + "---|" * len(DEFERRED)]
    for layer, timings in results["deferred"].items():
        cells = [f"{timings[m]['wall_ms']:.0f}" if timings[m] else "not in the layer" for m in DEFERRED]
        lines.append(f"| from {layer}, ms | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare(before: dict[str, Any], after: dict[str, Any]) -> str:
    old = {f["name"]: f for f in before["functions"]}
    lines = ["| function | package before | package after | init ms before | init ms after |",
             "|---|---|---|---|---|"]
    for f in after["functions"]:
        was = old.get(f["name"])
        package_before = mb(was["package_bytes"]) if was else "-"
        init_before = f"{was['init']['wall_ms']:.0f}" if was else "-"
        lines.append(f"| {f['name']} | {package_before} | {mb(f['package_bytes'])} "
                     f"| {init_before} | {f['init']['wall_ms']:.0f} |")
    for name, size in after["layers"].items():
        was_size = before["layers"].get(name)
        lines.append(f"| layer {name} | {mb(was_size['bytes']) if was_size else '-'} | {mb(size['bytes'])} | | |")
    return "\n".join(lines)


def mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 100_000 else f"{size / 1e3:.1f} kB"


if __name__ == "__main__":
    main()
