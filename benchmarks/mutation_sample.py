"""A mutation score per package from a seeded random sample of mutmut's mutants.

    mutmut run "nothing-matches"                            # once: generate the mutants, map tests
    python -m benchmarks.mutation_sample --per-package 40   # run a sample, print the scores

A full ``mutmut run`` over distill/, mlm/, compress/, datamodules/ and core/ is
thousands of mutants at ~30 s each on 2 cores: days. The share of killed mutants in a simple
random sample estimates the package's score, with a Wilson 95% interval that says how far
off it may be. mutmut does the mutating and the running; this script only picks the sample,
runs ``mutmut run`` on the names not checked yet (so a stopped run resumes) and counts;
``--recheck`` also re-runs the sampled survivors (after new tests: mutmut keeps old verdicts).
Run it from the folder mutmut runs in (its ``mutants/`` folder). "no tests" counts as
survived: no test reaches that function. Survivors judged equivalent (no observable change)
are listed with their reason in benchmarks/mutation_equivalent.txt and left out of the score.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
from datetime import date
from pathlib import Path

PACKAGES = ("distill", "mlm", "compress", "datamodules", "core")
KILLED = {1, 3, 37}  # failing tests, pytest internal error, caught by the type checker
SURVIVED = {0, 5, 33}  # tests pass, or no test reaches the function


def mutant_results(mutants: Path) -> dict[str, int | None]:
    """Every mutant's name -> mutmut's exit code (None: not checked yet), from its .meta files."""
    results = {}
    for meta in sorted(mutants.rglob("*.meta")):
        results.update(json.loads(meta.read_text())["exit_code_by_key"])
    return results


def sample(names: list[str], packages: tuple[str, ...], per_package: int, seed: int) -> dict[str, list[str]]:
    """A seeded simple random sample of each package's mutants (all of them where there are fewer)."""
    chosen = {}
    for package in packages:
        own = sorted(n for n in names if n.split(".")[0] == package)
        chosen[package] = sorted(random.Random(f"{seed}-{package}").sample(own, min(per_package, len(own))))
    return chosen


def wilson(killed: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion: sound at small n and near 100%, unlike p +- 2 sd."""
    if n == 0:
        return 0.0, 1.0
    p = killed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def equivalent_mutants(path: Path) -> dict[str, str]:
    """name -> why it is equivalent, from lines ``name  reason`` (# comments)."""
    if not path.exists():
        return {}
    pairs = (line.split(None, 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {name: (rest[0] if rest else "").strip() for name, *rest in pairs}


def to_run(chosen: dict[str, list[str]], results: dict[str, int | None], equivalent: dict[str, str],
           recheck: bool = False) -> list[str]:
    """The sampled mutants to hand to mutmut: the unchecked ones, and with ``recheck`` the
    survivors not judged equivalent (new tests may kill them now)."""
    names = [n for package in chosen.values() for n in package]
    return [n for n in names if results.get(n) is None
            or (recheck and results.get(n) in SURVIVED and n not in equivalent)]


def score(chosen: dict[str, list[str]], results: dict[str, int | None], equivalent: dict[str, str]) -> dict[str, dict]:
    table = {}
    for package, names in chosen.items():
        same = [n for n in names if n in equivalent and results.get(n) in SURVIVED]
        names = [n for n in names if n not in same]
        codes = [results.get(n) for n in names]
        killed = sum(c in KILLED for c in codes)
        survived = [n for n, c in zip(names, codes) if c in SURVIVED]
        other = [n for n, c in zip(names, codes) if c is not None and c not in KILLED | SURVIVED]  # timeouts...
        checked = killed + len(survived) + len(other)
        low, high = wilson(killed, checked)
        table[package] = {"mutants": sum(n.split(".")[0] == package for n in results),
                          "sampled": len(names) + len(same), "equivalent": same, "checked": checked,
                          "killed": killed, "survived": survived, "other": other,
                          "score": killed / checked if checked else None, "interval_95": [low, high]}
    return table


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--per-package", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--packages", default=",".join(PACKAGES))
    p.add_argument("--max-children", type=int, default=1)
    p.add_argument("--no-run", action="store_true", help="only count what has been checked")
    p.add_argument("--recheck", action="store_true",
                   help="re-run the sampled survivors too (mutmut keeps a verdict until the function changes, not when tests do)")
    p.add_argument("--equivalent", default=str(Path(__file__).with_name("mutation_equivalent.txt")))
    p.add_argument("--out", default="benchmarks/results/mutation_sample.json")
    args = p.parse_args(argv)
    mutants = Path("mutants")
    if not mutants.is_dir():
        print('mutation_sample: no mutants/ folder here; run `mutmut run "nothing-matches"` first '
              "(in the folder with the [mutmut] setup.cfg)", file=sys.stderr)
        return 2
    packages = tuple(args.packages.split(","))
    results = mutant_results(mutants)
    chosen = sample(list(results), packages, args.per_package, args.seed)
    equivalent = equivalent_mutants(Path(args.equivalent))
    todo = to_run(chosen, results, equivalent, recheck=args.recheck)
    if todo and not args.no_run:
        print(f"mutation_sample: running {len(todo)} mutants", file=sys.stderr)
        subprocess.run(["mutmut", "run", "--max-children", str(args.max_children), *todo], check=False)
    table = score(chosen, mutant_results(mutants), equivalent)
    for package, row in table.items():
        s = "-" if row["score"] is None else f"{row['score']:.0%} ({row['interval_95'][0]:.0%}-{row['interval_95'][1]:.0%})"
        print(f"{package:14} {row['mutants']:5} mutants, {row['checked']:3}/{row['sampled']} sampled checked: "
              f"{row['killed']} killed, {len(row['survived'])} survived, {len(row['other'])} other, "
              f"{len(row['equivalent'])} equivalent -> {s}")
        for name in row["survived"] + row["other"]:
            print(f"    {name}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"date": date.today().isoformat(), "seed": args.seed,
                                          "per_package": args.per_package, "packages": table}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
