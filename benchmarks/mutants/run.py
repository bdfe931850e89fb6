"""Run the hand-written mutant catalogue (benchmarks/mutants/catalogue.py) and score it per package.

    python -m benchmarks.mutants.run --package compress          # one package (the usual way: CPU-heavy)
    python -m benchmarks.mutants.run --package lora --package mlm
    python -m benchmarks.mutants.run --id compress/static-written-in-place   # one mutant
    python -m benchmarks.mutants.run --id lora/head-frozen --against tests/test_x.py::test_y   # one test red?
    python -m benchmarks.mutants.run --list                       # the catalogue, nothing run

Each mutant is put into a temporary copy of the repository (the committed HEAD, or with
``--working-tree`` the files as they are now), never into the checkout itself; its test files
run there with ``pytest -x -q``. A mutant is **killed** when they fail, **survived** when they
pass, **stale** when its snippet no longer occurs exactly once in its file (the code moved on:
rewrite the mutant; it is not counted either way). Each test file runs once unmutated first; a
file that is already red is left out of every mutant's run and listed (a mutant cannot be
scored against a failing file). Results are merged into benchmarks/results/mutants.json per
package after every mutant (``complete`` stays false until the package's last), with the date,
commit and machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.mutants.catalogue import MUTANTS, PACKAGES, Mutant

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results" / "mutants.json"


def copy_repository(target: Path, working_tree: bool = False) -> None:
    """The committed tree (HEAD), or with ``working_tree`` the files as they are now (tracked and
    untracked-but-not-ignored): others' half-done edits would otherwise decide the baseline."""
    if not working_tree:
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        return
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def pytest(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[int | None, float, str]:
    """(exit code or None on timeout, seconds, last lines) of the tests in the copy."""
    env = os.environ | {"PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1", "HF_HUB_OFFLINE": "1",
                        "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *tests]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, time.perf_counter() - start, "timeout"
    tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])
    return done.returncode, time.perf_counter() - start, tail


def check_imports_from(copy: Path) -> None:
    """The copy's packages, not the checkout's (an editable install points at the checkout)."""
    env = os.environ | {"PYTHONPATH": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    where = subprocess.run([sys.executable, "-c", "import tweetcls.lora, tweetcls.commands.tune as t; print(tweetcls.lora.__file__, t.__file__)"],
                           cwd=copy, env=env, capture_output=True, text=True, check=True).stdout
    if str(REPO) + "/" in where and str(copy) not in where:
        raise SystemExit(f"the copy imports the checkout's modules ({where.strip()}); refusing to run mutants there")


def run_mutant(copy: Path, mutant: Mutant, timeout: float) -> dict:
    path = copy / mutant.file
    original = path.read_text(encoding="utf-8")
    found = original.count(mutant.original)
    record = {"id": mutant.id, "file": mutant.file, "why": mutant.why, "tests": list(mutant.tests)}
    if not mutant.tests:
        return record | {"status": "error", "detail": "every test file listed for it is red at baseline"}
    if found != 1:
        return record | {"status": "stale", "detail": f"snippet found {found} times in {mutant.file}"}
    path.write_text(original.replace(mutant.original, mutant.replacement), encoding="utf-8")
    try:
        code, seconds, tail = pytest(copy, mutant.tests, timeout)
    finally:
        path.write_text(original, encoding="utf-8")
    status = "timeout" if code is None else "survived" if code == 0 else "error" if code in (4, 5) else "killed"
    return record | {"status": status, "seconds": round(seconds, 1), "detail": tail}


def score(results: list[dict]) -> dict:
    """Killed over killed + survived + timed out (a timeout is not counted as a kill: here it means slow
    tests, not a mutant that hangs); stale mutants and collection errors are left out and listed."""
    count = {s: sum(r["status"] == s for r in results) for s in ("killed", "timeout", "survived", "stale", "error")}
    scored = count["killed"] + count["timeout"] + count["survived"]
    return count | {"score": round(count["killed"] / scored, 3) if scored else None}


def commit(working_tree: bool) -> str:
    """The commit the copy is made from (the working tree: marked as holding uncommitted edits)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout
    return head.strip() + (" + working tree" if working_tree else "")


def baseline(copy: Path, test_file: str, timeout: float, cache: dict[str, bool]) -> bool:
    """Whether ``test_file`` passes unmutated in the copy (once per file and copy)."""
    if test_file not in cache:
        code, seconds, tail = pytest(copy, (test_file,), timeout)
        cache[test_file] = code == 0
        print(f"baseline {test_file}: {'green' if code == 0 else 'RED: ' + tail} in {seconds:.0f} s", flush=True)
    return cache[test_file]


def save(output: Path, package: str, result: dict, rerun_ids: bool) -> dict:
    """Merge one package's result into ``output`` (re-read first: another run may have written it)."""
    stored = json.loads(output.read_text()) if output.is_file() else {}
    if rerun_ids:  # a few mutants re-run: update their rows, keep the package's others
        old = {r["id"]: r for r in stored.get("packages", {}).get(package, {}).get("mutants", [])}
        old.update({r["id"]: r for r in result["mutants"]})
        result = result | score(list(old.values())) | {"mutants": list(old.values())}
    stored.setdefault("packages", {})[package] = result
    stored["command"] = "nice -n 10 python -m benchmarks.mutants.run --package <package>"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(stored, indent=2) + "\n")
    return result


def run_package(copy: Path, source: str, package: str, mutants: list[Mutant], timeout: float,
                cache: dict[str, bool], output: Path, rerun_ids: bool) -> dict:
    """Score one package; the file is updated after every mutant (``complete`` false until the last)."""
    files = dict.fromkeys(t.split("::")[0] for m in mutants for t in m.tests)
    red = [f for f in files if not baseline(copy, f, timeout * 3, cache)]
    if red:  # a mutant cannot be scored against a file that already fails: left out, and said
        mutants = [replace(m, tests=tuple(t for t in m.tests if t.split("::")[0] not in red)) for m in mutants]
    results, summary = [], {}
    for n, mutant in enumerate(mutants, start=1):
        result = run_mutant(copy, mutant, timeout)
        print(f"  {result['status']:8} {mutant.id} ({result.get('seconds', 0)} s)", flush=True)
        results.append(result)
        summary = save(output, package, {
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "commit": source, "complete": n == len(mutants),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "red_at_baseline": red, **score(results),
            "mutants": results}, rerun_ids)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--package", action="append", choices=PACKAGES, help="score these packages (default: all)")
    p.add_argument("--id", action="append", help="run only these mutants (package/name)")
    p.add_argument("--timeout", type=float, default=900, help="seconds per mutant's tests")
    p.add_argument("--list", action="store_true", help="print the catalogue and stop")
    p.add_argument("--check", action="store_true", help="report stale snippets in the checkout and stop")
    p.add_argument("--output", type=Path, default=RESULTS)
    p.add_argument("--against", action="append", metavar="TEST",
                   help="run the chosen mutants against these tests (pytest node ids) instead of their own; "
                        "nothing is saved: for showing that one test goes red on one bug")
    p.add_argument("--working-tree", action="store_true",
                   help="mutate a copy of the working tree as it is now (default: the committed HEAD)")
    args = p.parse_args(argv)
    if args.list:
        for m in MUTANTS:
            print(f"{m.id:45} {m.file}: {m.why}")
        return 0
    if args.check:
        stale = [m for m in MUTANTS if (REPO / m.file).read_text(encoding="utf-8").count(m.original) != 1]
        for m in stale:
            print(f"stale: {m.id} ({m.file})")
        print(f"{len(MUTANTS) - len(stale)} of {len(MUTANTS)} mutants apply")
        return 1 if stale else 0
    chosen = [m for m in MUTANTS if (not args.package or m.package in args.package) and (not args.id or m.id in args.id)]
    if not chosen:
        print("no mutant matches", file=sys.stderr)
        return 2
    if args.against:
        chosen = [replace(m, tests=tuple(args.against)) for m in chosen]
        with tempfile.TemporaryDirectory(prefix="mutants-against-") as tmp:
            copy_repository(Path(tmp), args.working_tree)
            check_imports_from(Path(tmp))
            for mutant in chosen:
                result = run_mutant(Path(tmp), mutant, args.timeout)
                print(f"{result['status']:8} {mutant.id} against {' '.join(args.against)} ({result.get('seconds')} s)")
        return 0
    with tempfile.TemporaryDirectory(prefix="mutants-") as tmp:
        copy, source, cache = Path(tmp), commit(args.working_tree), {}
        copy_repository(copy, args.working_tree)
        check_imports_from(copy)
        for package in dict.fromkeys(m.package for m in chosen):
            result = run_package(copy, source, package, [m for m in chosen if m.package == package], args.timeout,
                                 cache, args.output, bool(args.id))
            print(f"{package}: {result['killed']} of {result['killed'] + result['timeout'] + result['survived']} "
                  f"killed (score {result['score']}), {result['stale']} stale, {result['error']} errors", flush=True)
    stored = json.loads(args.output.read_text())
    print("\n| package | mutants | killed | survived | stale | score |\n|---|---|---|---|---|---|")
    for package, r in stored.get("packages", {}).items():
        print(f"| {package} | {len(r['mutants'])} | {r['killed']} | {r['survived'] + r['timeout']} | {r['stale']} | "
              + (f"{r['score']:.0%}" if r['score'] is not None else "") + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
