#!/usr/bin/env python3
"""Choose a seeded random sample of sdist-only releases from PyPI (issue 8 measurements).

Reads PyPI's simple root index (the list of projects the crawler itself walks), shuffles it with a
fixed seed, and for each project in turn asks the JSON API for its releases; a project contributes
one release chosen at random (same seed) among those that have an sdist and no wheel. Stops at
--count releases. At most --jobs requests are in flight. Output lines:
    project<TAB>version<TAB>filename<TAB>sha256<TAB>url
"""
import argparse, concurrent.futures as cf, json, random, re, sys, time, urllib.parse, urllib.request

UA = "mach-nix-crawler measure-builds (issue 8)"

def get(url, accept=None, tries=4):
    for attempt in range(tries):
        try:
            req = urllib.request.Request(url, headers={"User-Agent": UA, **({"Accept": accept} if accept else {})})
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.read()
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            time.sleep(2 ** attempt)
        except Exception:
            time.sleep(2 ** attempt)
    return None

def pick(name, seed):
    body = get(f"https://pypi.org/pypi/{name}/json")
    if body is None:
        return None
    data = json.loads(body)
    candidates = []
    for version, files in sorted(data.get("releases", {}).items()):
        kinds = {f["packagetype"] for f in files if not f.get("yanked")}
        sdists = [f for f in files if f["packagetype"] == "sdist" and not f.get("yanked")]
        if sdists and "bdist_wheel" not in kinds:
            candidates.append((version, sdists[0]))
    if not candidates:
        return None
    version, f = random.Random(f"{seed}:{name}").choice(candidates)
    # The JSON API here may answer relative URLs (../../packages/packages/..): resolve them.
    url = urllib.parse.urljoin(f"https://pypi.org/pypi/{name}/json", f["url"])
    return "\t".join([name, version, f["filename"], f["digests"]["sha256"], url])

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--count", type=int, default=600)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    index = get("https://pypi.org/simple/").decode()
    names = re.findall(r'<a href="(?:/simple/)?([^/"]+)/"', index)
    random.Random(args.seed).shuffle(names)
    print(f"{len(names)} projects in the index", file=sys.stderr)
    found = []
    with cf.ThreadPoolExecutor(args.jobs) as pool:
        at = 0
        while len(found) < args.count and at < len(names):
            batch = names[at:at + 64]
            at += len(batch)
            for line in pool.map(lambda n: pick(n, args.seed), batch):
                if line and len(found) < args.count:
                    found.append(line)
            print(f"{at} projects asked, {len(found)} sdist-only releases", file=sys.stderr)
    with open(args.out, "w") as out:
        out.write(f"# seed {args.seed}: project, version, filename, sha256, url of sdist-only releases\n")
        out.write("\n".join(found) + "\n")

main()
