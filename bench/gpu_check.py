"""Runs the parts of the GPU check (bench/gpu_check_parts.py), each in its own process under a
time limit, and writes the summary: PASS / FAIL / SKIP per part with its numbers.

Called by bench/gpu_check.sh after the build (it passes the build's outcome); alone:

    python bench/gpu_check.py --out gpu_check_results [--parts ops model] [--budget 400]

Files written in --out: gpu_check_summary.txt (the table and every part's lines) and
gpu_check_results.json (the same, machine-readable). A part that crashes, hangs past its limit
or raises is a FAIL with its last output lines; the parts after it still run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_check_parts import PARTS  # noqa: E402

RESERVE_S = 10  # kept back at the end for the summary


def run_part(name: str, limit: float, work: Path) -> dict:
    """One part in a fresh interpreter; its result JSON, or a FAIL saying what happened."""
    result_file = work / f"{name}.json"
    result_file.unlink(missing_ok=True)
    command = [sys.executable, "-u", str(Path(__file__).resolve().parent / "gpu_check_parts.py"),
               name, str(result_file), str(work)]  # fmt: skip
    print(f"\n===== {name} (limit {limit:.0f} s)", flush=True)
    start = time.monotonic()
    tail: list[str] = []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               errors="replace", start_new_session=True)  # fmt: skip

    def echo() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            print(f"  {line.rstrip()}", flush=True)
            tail.append(line.rstrip())
            del tail[:-15]

    reader = threading.Thread(target=echo, daemon=True)
    reader.start()
    try:
        process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()
        reader.join(timeout=5)
        return {"status": "FAIL", "lines": [f"timed out after {limit:.0f} s; its last lines:"] + tail[-12:], "numbers": {},
                "seconds": round(limit, 1)}  # fmt: skip
    reader.join(timeout=5)
    seconds = time.monotonic() - start
    if result_file.exists():
        result = json.loads(result_file.read_text())
    else:
        result = {"status": "FAIL", "lines": [f"exited with status {process.returncode} without a result"] + tail[-8:],
                  "numbers": {}}  # fmt: skip
    result["seconds"] = round(seconds, 1)
    return result


def summary_text(results: dict[str, dict], header: list[str]) -> str:
    lines = header + ["", "| part | status | seconds | what |", "|---|---|---:|---|"]
    for name, r in results.items():
        first = r["lines"][0] if r["lines"] else ""
        lines.append(f"| {name} | {r['status']} | {r.get('seconds', 0):.0f} | {first} |")
    for name, r in results.items():
        lines.append(f"\n## {name}: {r['status']}")
        lines.extend(f"  {line}" for line in r["lines"])
        for key, value in r.get("numbers", {}).items():
            lines.append(f"  {key} = {value}")
    counts = {s: sum(r["status"] == s for r in results.values()) for s in ("PASS", "FAIL", "SKIP")}
    lines.append(f"\n{counts['PASS']} PASS, {counts['FAIL']} FAIL, {counts['SKIP']} SKIP")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("gpu_check_results"))
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default: a new temporary one)")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for all parts together")
    parser.add_argument("--parts", nargs="+", choices=[name for name, _ in PARTS], default=None)
    parser.add_argument("--build-status", type=int, default=None, help="exit status of the build (gpu_check.sh)")
    parser.add_argument("--build-seconds", type=float, default=0.0)
    parser.add_argument("--stage", default="", help="where gpu_check.sh installed the freshly built package")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="metamlip-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["GPU_CHECK_STAGE"] = args.stage
    deadline = time.monotonic() + args.budget
    results: dict[str, dict] = {}
    if args.build_status is not None:
        ok = args.build_status == 0
        results["build"] = {
            "status": "PASS" if ok else "FAIL",
            "lines": [f"cmake configure + build {'succeeded' if ok else f'failed (exit status {args.build_status})'}; "
                      "see configure.log and build.log"],  # fmt: skip
            "numbers": {"build_seconds": args.build_seconds},
            "seconds": args.build_seconds,
        }
    header = [f"# metamlip GPU check, started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}"]

    def write(final: bool) -> str:
        """The summary so far (written after every part: a run cut short keeps what it found)."""
        text = summary_text(results, header + ([] if final else ["# (incomplete: parts still running)"]))
        for file, content in (("gpu_check_summary.txt", text), ("gpu_check_results.json", json.dumps(results, indent=1) + "\n")):
            (args.out / (file + ".tmp")).write_text(content)
            (args.out / (file + ".tmp")).replace(args.out / file)
        return text

    for name, limit in PARTS:
        if args.parts is not None and name not in args.parts:
            continue
        left = deadline - time.monotonic() - RESERVE_S
        if left < 15:
            results[name] = {"status": "SKIP", "lines": [f"no time left in the {args.budget:.0f} s budget"], "numbers": {}}
            continue
        results[name] = run_part(name, min(limit, left), work)
        print(f"----- {name}: {results[name]['status']} ({results[name]['seconds']:.0f} s)", flush=True)
        write(final=False)
    print("\n" + write(final=True), flush=True)
    return 1 if any(r["status"] == "FAIL" for r in results.values()) else 0

if __name__ == "__main__":
    sys.exit(main())
