"""Referrals matched per second: the `DirectoryIndex` against a brute-force scan, on the same directory and requests.

Run from the repository root::

    .venv/bin/python -m bench.matching_bench                      # 1,000 / 10,000 / 100,000 partners
    .venv/bin/python -m bench.matching_bench --sizes 1000 10000 --requests 500

For every size it builds a seeded random directory (all service categories, a skewed spread of countries and
regions, languages, sectors, specialties, capacities and partner histories), loads it into a `DirectoryIndex`, and
times one fixed set of requests twice over the same directory in the same process:

- **index**: ``rank(index.candidates(category, markets), request, stats)``
- **brute force**: ``rank(brute_force_candidates(all_partners, request), request, stats)``

Both sides rank the same candidates, so the difference is retrieval alone; both rankings are checked to be equal.
The results are printed and written as a markdown table to docs/benchmarks/matching.md. This is not a test: no
timing is asserted anywhere.
"""

import argparse
import gc
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from goglobal_contract.enums import ServiceCategory
from matching.engine import (
    DirectoryIndex,
    Partner,
    PartnerStats,
    Request,
    brute_force_candidates,
    rank,
)

DEFAULT_SIZES = (1_000, 10_000, 100_000)
DEFAULT_SEED = 20260302
DEFAULT_OUTPUT = Path("docs/benchmarks/matching.md")
# Requests timed per size when --requests is not given: fewer for the bigger directories, whose brute-force scan is
# slow, so that the whole default run stays well under two minutes on two cores.
DEFAULT_REQUESTS = {1_000: 2_000, 10_000: 1_000, 100_000: 200}
WARMUP = 20
VERIFIED = 100  # requests whose index and brute-force rankings are compared before timing
T = TypeVar("T")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

# Where Hong Kong partners of mainland enterprises going abroad tend to work, with rough relative weights.
COUNTRY_WEIGHTS: dict[str, float] = {
    # ASEAN
    "SG": 10, "MY": 7, "VN": 7, "TH": 6, "ID": 6, "PH": 3, "KH": 1.5, "MM": 1, "LA": 1, "BN": 0.5,
    # Middle East
    "AE": 9, "SA": 8, "QA": 3, "KW": 1.5, "BH": 1, "OM": 1, "TR": 2, "EG": 2, "JO": 0.5, "IL": 0.5, "IQ": 0.5,
    "LB": 0.3,
    # Europe
    "GB": 6, "DE": 5, "FR": 4, "NL": 3, "IT": 2.5, "ES": 2.5, "PL": 1.5, "HU": 1.5, "CH": 1.5, "BE": 1, "SE": 1,
    "IE": 1, "AT": 1, "CZ": 1, "PT": 0.8, "DK": 0.8, "NO": 0.6, "FI": 0.6, "GR": 0.5, "RO": 0.5,
    # South America
    "BR": 4, "CL": 2, "AR": 1.5, "PE": 1.5, "CO": 1.5, "EC": 0.5, "UY": 0.5,
    # elsewhere
    "US": 6, "MX": 3, "CA": 2, "AU": 4, "NZ": 1, "JP": 4, "KR": 3, "IN": 3, "PK": 1, "BD": 1, "LK": 0.5,
    "KZ": 1.5, "UZ": 1, "ZA": 2, "NG": 1.5, "KE": 1, "ET": 1, "MA": 1,
}  # fmt: skip
REGION_WEIGHTS: dict[str, float] = {"ASEAN": 0.35, "MIDDLE_EAST": 0.30, "EUROPE": 0.25, "SOUTH_AMERICA": 0.10}
CATEGORY_WEIGHTS: dict[ServiceCategory, float] = {
    ServiceCategory.LEGAL: 3,
    ServiceCategory.ACCOUNTING: 2,
    ServiceCategory.TAX: 2,
    ServiceCategory.BANKING_AND_FUND_MANAGEMENT: 1,
    ServiceCategory.TALENT_RECRUITMENT: 1,
    ServiceCategory.REGULATORY_COMPLIANCE: 1.5,
    ServiceCategory.INTELLECTUAL_PROPERTY: 1,
    ServiceCategory.MARKET_ENTRY: 2,
    ServiceCategory.LOGISTICS: 1.5,
    ServiceCategory.MARKETING: 1.5,
}
SPECIALTIES: dict[ServiceCategory, list[str]] = {
    ServiceCategory.LEGAL: ["company formation", "commercial contracts", "distribution agreements", "employment law",
                            "dispute resolution", "joint ventures", "free zone setup"],
    ServiceCategory.ACCOUNTING: ["bookkeeping", "statutory audit", "ifrs reporting", "payroll", "consolidation"],
    ServiceCategory.TAX: ["transfer pricing", "vat registration", "tax treaties", "customs duties", "tax audit"],
    ServiceCategory.BANKING_AND_FUND_MANAGEMENT: ["account opening", "trade finance", "treasury", "fx hedging"],
    ServiceCategory.TALENT_RECRUITMENT: ["executive search", "work visas", "local hiring", "employer of record"],
    ServiceCategory.REGULATORY_COMPLIANCE: ["product certification", "data protection", "licensing", "sanctions"],
    ServiceCategory.INTELLECTUAL_PROPERTY: ["trademark registration", "patents", "brand protection", "ip audit"],
    ServiceCategory.MARKET_ENTRY: ["market research", "partner search", "site selection", "government relations"],
    ServiceCategory.LOGISTICS: ["freight forwarding", "customs clearance", "warehousing", "cold chain"],
    ServiceCategory.MARKETING: ["digital marketing", "e-commerce", "trade shows", "public relations", "branding"],
}  # fmt: skip
LOCAL_LANGUAGES: dict[str, str] = {
    "AE": "ar", "SA": "ar", "QA": "ar", "KW": "ar", "BH": "ar", "OM": "ar", "EG": "ar", "JO": "ar", "IQ": "ar",
    "LB": "ar", "MA": "ar", "TR": "tr", "MY": "ms", "BN": "ms", "ID": "id", "TH": "th", "VN": "vi", "JP": "ja",
    "KR": "ko", "DE": "de", "AT": "de", "CH": "de", "FR": "fr", "BE": "fr", "ES": "es", "MX": "es", "AR": "es",
    "CL": "es", "PE": "es", "CO": "es", "EC": "es", "UY": "es", "BR": "pt", "PT": "pt", "IT": "it", "NL": "nl",
    "PL": "pl", "RU": "ru", "KZ": "ru",
}  # fmt: skip
SECTORS = ["A", "C", "C10", "C13", "C20", "C21", "C26", "C27", "C28", "C29", "D35", "F", "G", "G46", "G47", "H52",
           "I", "J", "J62", "K", "K64", "L", "M", "M71", "Q86"]  # fmt: skip
FILLER = ["we", "plan", "to", "set", "up", "a", "subsidiary", "and", "need", "help", "with", "local", "rules", "for",
          "our", "products", "in", "the", "market", "next", "year"]  # fmt: skip


def weighted_sample(rng: random.Random, weights: dict[T, float], k: int) -> list[T]:
    """`k` distinct keys, each drawn with probability proportional to its weight."""
    keys, values = list(weights), list(weights.values())
    chosen: dict[T, None] = {}
    while len(chosen) < min(k, len(keys)):
        chosen[rng.choices(keys, values)[0]] = None
    return list(chosen)


def make_partner(rng: random.Random, number: int) -> Partner:
    markets = weighted_sample(rng, COUNTRY_WEIGHTS, rng.choice([1, 1, 2, 2, 3, 4, 5, 6]))
    if rng.random() < 0.25:
        markets.append(weighted_sample(rng, REGION_WEIGHTS, 1)[0])
    categories = weighted_sample(rng, CATEGORY_WEIGHTS, rng.choice([1, 1, 1, 2, 2, 3]))
    languages = {"en"} if rng.random() < 0.9 else set()
    languages |= {tag for tag, share in (("zh-Hant", 0.8), ("zh-Hans", 0.7)) if rng.random() < share}
    languages |= {LOCAL_LANGUAGES[m] for m in markets if m in LOCAL_LANGUAGES and rng.random() < 0.4}
    return Partner(
        id=f"partner-{number:06d}",
        name=f"Partner {number}",
        categories={
            c: frozenset(rng.sample(SPECIALTIES[c], rng.randint(0, min(4, len(SPECIALTIES[c]))))) for c in categories
        },
        markets=frozenset(markets),
        sectors=frozenset(rng.sample(SECTORS, rng.randint(1, 3))) if rng.random() < 0.5 else frozenset(),
        languages=frozenset(languages or {"en"}),
        capacity=rng.randint(3, 40),
        response_window_hours=rng.choice([24, 48, 48, 72]),
        active=rng.random() < 0.95,
    )


def make_stats(rng: random.Random, partner: Partner) -> PartnerStats | None:
    """A history for about 70% of partners; one in ten of those is at full capacity."""
    if rng.random() >= 0.7:
        return None
    offers = rng.randint(1, 200)
    accepted = rng.randint(0, offers)
    completed = rng.randint(0, accepted)
    ratings = rng.randint(0, completed)
    responses = rng.randint(0, offers)
    full = rng.random() < 0.1
    return PartnerStats(
        open_referrals=partner.capacity if full else rng.randint(0, partner.capacity - 1),
        offers=offers,
        accepted=accepted,
        declined=rng.randint(0, offers - accepted),
        expired=0,
        completed=completed,
        rating_sum=round(ratings * rng.uniform(2.5, 5.0)),
        rating_count=ratings,
        response_hours_sum=responses * rng.uniform(0.5, partner.response_window_hours * 0.8),
        responses=responses,
        last_offered_at=NOW - timedelta(minutes=rng.randint(1, 90 * 24 * 60)),
    )


def make_request(rng: random.Random) -> Request:
    category = weighted_sample(rng, CATEGORY_WEIGHTS, 1)[0]
    if rng.random() < 0.2:
        markets = weighted_sample(rng, REGION_WEIGHTS, 1)
    else:
        markets = weighted_sample(rng, COUNTRY_WEIGHTS, rng.choice([1, 1, 1, 2, 2, 3]))
    need_languages = [rng.choice(["en", "ar", "ms", "pt", "es"])] if rng.random() < 0.3 else []
    words = rng.sample(FILLER, 8) + rng.sample(SPECIALTIES[category], rng.randint(0, 2))
    rng.shuffle(words)
    return Request(
        category=category,
        markets=markets,
        languages=list(dict.fromkeys([*need_languages, "zh-Hans", *(["en"] if rng.random() < 0.5 else [])])),
        sector=rng.choice(SECTORS) if rng.random() < 0.8 else None,
        description=" ".join(words),
    )


@dataclass(frozen=True)
class Timing:
    rate: float  # matches per second
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Row:
    size: int
    requests: int
    build_s: float
    candidates: float  # mean partners the index returns per request
    index: Timing  # retrieval + rank
    brute: Timing  # scan + rank
    retrieval_ratio: float  # index.candidates vs brute_force_candidates alone, without rank

    @property
    def ratio(self) -> float:
        return self.index.rate / self.brute.rate


def measure(
    index_side: Callable[[Request], object], brute_side: Callable[[Request], object], requests: Sequence[Request]
) -> tuple[Timing, Timing]:
    """Times both sides request by request, alternating, so that a change in machine load hits both alike."""
    for request in requests[:WARMUP]:
        index_side(request)
        brute_side(request)
    gc.collect()
    latencies: tuple[list[float], list[float]] = ([], [])
    for request in requests:
        for side, found in zip((index_side, brute_side), latencies, strict=True):
            t0 = time.perf_counter()
            side(request)
            found.append(time.perf_counter() - t0)
    return timing(latencies[0]), timing(latencies[1])


def timing(latencies: list[float]) -> Timing:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return Timing(len(ordered) / sum(ordered), statistics.median(ordered) * 1e3, p99 * 1e3)


def run_size(size: int, n_requests: int, seed: int) -> Row:
    rng = random.Random(seed * 1_000_003 + size)
    partners = [make_partner(rng, i) for i in range(size)]
    stats = {p.id: s for p in partners if (s := make_stats(rng, p)) is not None}
    requests = [make_request(random.Random(seed + i)) for i in range(n_requests)]  # the same for every size

    started = time.perf_counter()
    index = DirectoryIndex()
    for partner in partners:
        index.upsert(partner, 1)
    build_s = time.perf_counter() - started

    for request in requests[:VERIFIED]:  # both ways give the same ranking
        by_index = rank(index.candidates(request.category, request.markets), request, stats)
        if by_index != rank(brute_force_candidates(partners, request), request, stats):
            raise AssertionError(f"index and brute force disagree on {request}")
    counts = [len(index.candidates(r.category, r.markets)) for r in requests]

    # The directory lives as long as the run: keep the cyclic garbage collector from walking it again and again
    # (a full collection over 100,000 partners would land in some matches' latency, at random).
    gc.collect()
    gc.freeze()
    try:
        index_timing, brute_timing = measure(
            lambda r: rank(index.candidates(r.category, r.markets), r, stats),
            lambda r: rank(brute_force_candidates(partners, r), r, stats),
            requests,
        )
        index_only, brute_only = measure(
            lambda r: index.candidates(r.category, r.markets),
            lambda r: brute_force_candidates(partners, r),
            requests[: max(WARMUP + 1, len(requests) // 4)],
        )
    finally:
        gc.unfreeze()
    return Row(
        size,
        n_requests,
        build_s,
        statistics.fmean(counts),
        index_timing,
        brute_timing,
        index_only.rate / brute_only.rate,
    )


HEADERS = [
    "partners",
    "requests",
    "index build",
    "avg candidates",
    "index matches/s",
    "brute matches/s",
    "index/brute",
    "retrieval only",
    "index p50",
    "index p99",
    "brute p50",
    "brute p99",
]


def cells(row: Row) -> list[str]:
    return [
        f"{row.size:,}",
        f"{row.requests:,}",
        f"{row.build_s:.2f} s",
        f"{row.candidates:,.0f}",
        f"{row.index.rate:,.0f}",
        f"{row.brute.rate:,.0f}",
        f"{row.ratio:,.1f}x",
        f"{row.retrieval_ratio:,.0f}x",
        f"{row.index.p50_ms:.2f} ms",
        f"{row.index.p99_ms:.2f} ms",
        f"{row.brute.p50_ms:.2f} ms",
        f"{row.brute.p99_ms:.2f} ms",
    ]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    cpu = cpu_model()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()} ({platform.python_implementation()})"
    )


def markdown(rows: list[Row], command: str, seed: int, when: datetime) -> str:
    lines = [
        "# Matching benchmark",
        "",
        "Referrals matched per second with the `DirectoryIndex` (`index.candidates` + `rank`) against a brute-force",
        "scan of the whole directory (`brute_force_candidates` + `rank`), on the same seeded directory and the same",
        "requests in one run. Both sides rank the same candidates (the rankings are checked equal on the first",
        f"{VERIFIED} requests), so the difference is retrieval. Latencies are per match (one request: retrieval and",
        "ranking); the two sides are timed alternately, request by request, single-threaded, with the directory",
        "frozen out of the garbage collector's way (`gc.freeze`). Generated by `bench/matching_bench.py` (see",
        "`bench/README.md`).",
        "",
        f"- date: {when:%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        f"- command: `{command}` (seed {seed})",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "| " + " | ".join(["---:"] * len(HEADERS)) + " |",
        *("| " + " | ".join(cells(row)) + " |" for row in rows),
        "",
        "`avg candidates` is the mean number of partners the index returns per request (before the capacity and",
        "exclusion filters of `rank`). `index/brute` compares whole matches (retrieval + ranking); `retrieval only`",
        "compares `index.candidates` with `brute_force_candidates` alone, on a quarter of the requests. `index build`",
        "is the time to upsert the whole directory into an empty index (including each partner's derived coverage).",
        "",
        "Reading it: retrieval is where the index wins (`retrieval only`); once the candidates are found, ranking",
        "them (about 10-20 us per candidate: seven factors and their reasons) is the same on both sides, so it",
        "bounds the whole-match speed-up, the more so the more candidates a request has.",
        "",
    ]
    return "\n".join(lines)


def show(rows: list[Row]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(cells(r)[i]) for r in rows)) for i, h in enumerate(HEADERS)]
        print("  ".join(h.rjust(w) for h, w in zip(HEADERS, widths, strict=True)))
        for row in rows:
            print("  ".join(c.rjust(w) for c, w in zip(cells(row), widths, strict=True)))
        return
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)  # a pipe or a file: do not squeeze the table into 80 columns
    table = Table(title="Matching: index vs brute force (matches = retrieval + rank)")
    for header in HEADERS:
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(*cells(row))
    console.print(table)


def main(argv: Sequence[str] | None = None) -> int:
    description = (__doc__ or "").split("\n\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.matching_bench", description=description)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="directory sizes")
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        help="requests timed per size (default: 2,000 / 1,000 / 200 for 1k / 10k / 100k partners, "
        "about 200,000,000 / size otherwise)",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="markdown file to write")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if any(size < 1 for size in args.sizes) or (args.requests is not None and args.requests < 1):
        parser.error("sizes and --requests must be >= 1")

    rows: list[Row] = []
    for size in args.sizes:
        n = args.requests or DEFAULT_REQUESTS.get(size, max(50, min(2_000, 200_000_000 // size)))
        print(f"{size:,} partners, {n:,} requests ...", file=sys.stderr, flush=True)
        rows.append(run_size(size, n, args.seed))
    show(rows)
    if not args.no_write:
        command = "python -m bench.matching_bench " + " ".join(sys.argv[1:] if argv is None else argv)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(markdown(rows, command.strip(), args.seed, datetime.now(UTC)), encoding="utf-8")
        print(f"written to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
