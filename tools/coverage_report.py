"""The coverage of the last `make test`, by package: statements, missed, covered, and the total.

`python -m tools.coverage_report [data file]` reads the combined data (default: .coverage, as pytest-cov leaves it)."""

import sys
from collections import defaultdict
from pathlib import Path

from coverage import Coverage

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {  # source folder -> package, as the services' own pyproject.toml name them
    "contract/src/goglobal_contract": "goglobal_contract",
    "shared/src/goglobal_shared": "goglobal_shared",
    "services/intake/src/intake": "intake",
    "services/matching/src/matching": "matching",
    "services/notifications/src/notifications": "notifications",
}


def package_of(path: str) -> str:
    relative = Path(path).resolve().relative_to(REPO).as_posix()
    return next((name for folder, name in PACKAGES.items() if relative.startswith(f"{folder}/")), "other")


def by_package(data_file: str) -> dict[str, tuple[int, int]]:
    """Package -> (statements, missed)."""
    cov = Coverage(data_file=data_file)
    cov.load()
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for path in cov.get_data().measured_files():
        if not path.endswith(".py"):  # a template Jinja ran under its own file name (omitted in pyproject.toml)
            continue
        _, statements, _, missing, _ = cov.analysis2(path)
        total = totals[package_of(path)]
        total[0] += len(statements)
        total[1] += len(missing)
    return {name: (statements, missed) for name, (statements, missed) in sorted(totals.items())}


def main() -> None:
    rows = by_package(sys.argv[1] if len(sys.argv) > 1 else ".coverage")
    if not rows:
        raise SystemExit("no coverage data: run make test first")
    print(f"{'package':<20} {'statements':>10} {'missed':>8} {'cover':>7}")
    for name, (statements, missed) in [*rows.items(), ("TOTAL", tuple(map(sum, zip(*rows.values(), strict=True))))]:
        print(f"{name:<20} {statements:>10} {missed:>8} {100 * (statements - missed) / max(statements, 1):>6.1f}%")


if __name__ == "__main__":
    main()
