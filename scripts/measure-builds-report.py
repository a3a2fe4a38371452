#!/usr/bin/env python3
"""Summarize scripts/measure-builds.sh results: share by method, build times, grouped failures."""
import collections, json, statistics, sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
n = len(rows)
methods = collections.Counter(r["method"] for r in rows)
print(f"{n} sdist-only releases")
for method, count in methods.most_common():
    with_deps = sum(1 for r in rows if r["method"] == method and r.get("requires_dist", 0) > 0)
    print(f"  {method:16} {count:4} ({100 * count / n:.1f}%), {with_deps} of them with >= 1 dependency")
known = methods["static"] + methods["build"]
print(f"known: {known} ({100 * known / n:.1f}%), unknown: {n - known} ({100 * (n - known) / n:.1f}%)")
static_sources = collections.Counter(r["source"] for r in rows if r["method"] == "static")
print("static sources:", dict(static_sources.most_common()))
times = sorted(r["seconds"] for r in rows if r["method"] in ("build", "build-failed"))
if times:
    print(f"build time per sdist (s), {len(times)} builds: median {statistics.median(times):.1f}, "
          f"p90 {times[int(0.9 * (len(times) - 1))]:.1f}, max {times[-1]:.1f}, total {sum(times):.0f}")
ok = sorted(r["seconds"] for r in rows if r["method"] == "build")
if ok:
    print(f"  successful builds: median {statistics.median(ok):.1f}s")
failures = collections.Counter(r["detail"] for r in rows if r["method"] not in ("static", "build"))
print("failure reasons (grouped):")
for reason, count in failures.most_common():
    print(f"  {count:4}  {reason}")
