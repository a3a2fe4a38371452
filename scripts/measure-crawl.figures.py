#!/usr/bin/env python3
"""Figures of a measurement crawl (see scripts/measure-crawl.sh).

    python3 scripts/measure-crawl.figures.py OUT_DIR WALL_SECONDS [REPORT_JSON]

Reads OUT_DIR/report.json (requests and bytes by kind, as written by `crawl --report`), the
state OUT_DIR/state/state.sqlite and the snapshot named in OUT_DIR/published.txt; writes
OUT_DIR/figures.md and prints it.
"""
import json, os, sqlite3, sys
out, wall = sys.argv[1], int(sys.argv[2])
report = json.load(open(sys.argv[3] if len(sys.argv) > 3 else os.path.join(out, "report.json")))
db = sqlite3.connect(os.path.join(out, "state", "state.sqlite"))
q = lambda sql: db.execute(sql).fetchall()
kinds = report["by_kind"]
releases = q("SELECT COUNT(*) FROM (SELECT DISTINCT project, version FROM files)")[0][0]
files = q("SELECT COUNT(*) FROM files")[0][0]
projects = q("SELECT COUNT(DISTINCT project) FROM files")[0][0]
wheel_rel = q("SELECT COUNT(*) FROM (SELECT DISTINCT project, version FROM files WHERE kind=1 AND method IS NOT NULL AND method != 'cached')")[0][0]
sdist_rel = q("SELECT COUNT(*) FROM (SELECT DISTINCT project, version FROM files WHERE kind=0 AND method IS NOT NULL)")[0][0]
wheel_req = sum(kinds[k]["requests"] for k in ("pep658-metadata", "wheel-range", "wheel-download"))
wheel_bytes = sum(kinds[k]["bytes"] for k in ("pep658-metadata", "wheel-range", "wheel-download"))
whole_wheels = q("SELECT COALESCE(SUM(size),0), COUNT(*) FROM files WHERE kind=1 AND method IN ('pep658','range','wheel-download')")[0]
# Share of releases by the source of their dependency record: a release counts under the
# source of its sdist record when it has no wheel record (wheels first: that is what resolves).
rows = q("""SELECT f.project, f.version, f.kind, d.source FROM files f JOIN deps d ON d.id = f.deps""")
by_release = {}
for project, version, kind, source in rows:
    best = by_release.get((project, version))
    rank = (kind == 1, source != "unknown")
    if best is None or rank > best[0]:
        by_release[(project, version)] = (rank, source)
counts = {}
for _, source in by_release.values():
    counts[source] = counts.get(source, 0) + 1
sdist_sources = dict(q("SELECT d.source, COUNT(*) FROM files f JOIN deps d ON d.id=f.deps WHERE f.kind=0 GROUP BY 1"))
wheel_methods = dict(q("SELECT method, COUNT(*) FROM files WHERE kind=1 AND method IS NOT NULL GROUP BY 1"))
snapshot = open(os.path.join(out, "published.txt")).read().strip()
size = os.path.getsize(os.path.join(out, "snapshots", snapshot + ".mnxdb"))
examined_rel = len(by_release)
lines = [
    f"- wall time {wall} s; {projects} projects, {releases} releases, {files} files "
    f"({report['report']['failed'].__len__()} projects failed, {len(report['report']['missing'])} missing)",
    f"- releases/s: {releases / max(wall, 1):.2f}",
    f"- requests: {report['requests']} total ({report['retries']} retries), {report['bytes'] / 1e6:.1f} MB",
    f"- wheels: {wheel_req} requests, {wheel_bytes / 1e6:.2f} MB for {whole_wheels[1]} wheels in {wheel_rel} releases "
    f"= {wheel_req / max(wheel_rel, 1):.2f} requests and {wheel_bytes / max(wheel_rel, 1) / 1e3:.1f} kB per release",
    f"- sdists: {kinds['sdist-download']['requests']} requests, {kinds['sdist-download']['bytes'] / 1e6:.1f} MB in {sdist_rel} releases "
    f"= {kinds['sdist-download']['requests'] / max(sdist_rel, 1):.2f} requests and {kinds['sdist-download']['bytes'] / max(sdist_rel, 1) / 1e3:.1f} kB per release",
    f"- project pages: {kinds['page']['requests']} requests, {kinds['page']['bytes'] / 1e6:.1f} MB",
    f"- bytes fetched for wheel dependencies vs the whole wheels: {wheel_bytes / 1e6:.2f} MB vs {whole_wheels[0] / 1e6:.1f} MB "
    f"= {whole_wheels[0] / max(wheel_bytes, 1):.0f}x fewer",
    f"- wheel METADATA by method: {wheel_methods}",
    f"- releases by dependency source (wheel record preferred): "
    + ", ".join(f"{k} {v} ({100 * v / max(examined_rel, 1):.1f}%)" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])),
    f"- sdist records by source: "
    + ", ".join(f"{k} {v} ({100 * v / max(sum(sdist_sources.values()), 1):.1f}%)" for k, v in sorted(sdist_sources.items(), key=lambda kv: -kv[1])),
    f"- snapshot {size} bytes: {size / max(releases, 1):.0f} bytes per release, {size / max(files, 1):.0f} bytes per file",
]
text = "\n".join(lines) + "\n"
open(os.path.join(out, "figures.md"), "w").write(text)
print(text)
