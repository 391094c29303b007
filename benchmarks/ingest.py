"""Ingest throughput on the standard library: `syllabus data ingest` vs a naive peer.

Peer: the loop most scripts start with — os.walk, read each .py file, json.dumps it to one plain
JSONL file — with no skipping rules, no provenance, no shards, no hashes. Each side runs in its own
subprocess so peak memory (max RSS) is measured per side.

    python benchmarks/ingest.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import textwrap

OURS = """
import json, resource, sys, time
from syllabus.ingest import IngestParams, ingest
t = time.perf_counter()
ds = ingest(IngestParams(sources=["stdlib"]), sys.argv[1])
s = time.perf_counter() - t
stats = ds.manifest["summary"]["data.ingest"]
print(json.dumps({"seconds": s, "files": len(ds), "mb": stats["kept_bytes"] / 1e6,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

PEER = """
import json, os, resource, sys, sysconfig, time
t = time.perf_counter(); n = 0; size = 0
with open(sys.argv[1] + ".jsonl", "w") as out:
    for d, dirs, files in os.walk(sysconfig.get_paths()["stdlib"]):
        dirs[:] = [x for x in dirs if x not in ("site-packages", "__pycache__")]
        for f in files:
            if f.endswith(".py"):
                try:
                    text = open(os.path.join(d, f), encoding="utf-8").read()
                except (UnicodeDecodeError, OSError):
                    continue
                out.write(json.dumps({"text": text, "path": f}) + "\\n"); n += 1; size += len(text.encode("utf-8", "surrogatepass"))
print(json.dumps({"seconds": time.perf_counter() - t, "files": n, "mb": size / 1e6,
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(code: str, out: str) -> dict:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code), out], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ours = measure(OURS, f"{tmp}/ours")
        peer = measure(PEER, f"{tmp}/peer")
    for name, m in (("syllabus ingest", ours), ("naive os.walk+json peer", peer)):
        print(f"{name:26s} {m['files']:6d} files {m['mb']:7.1f} MB {m['seconds']:6.2f} s "
              f"{m['files'] / m['seconds']:8.0f} files/s {m['mb'] / m['seconds']:6.1f} MB/s peak RSS {m['maxrss_mb']:.0f} MB")
    ratio = (ours["mb"] / ours["seconds"]) / (peer["mb"] / peer["seconds"])
    print(f"throughput ratio ours/peer (MB/s): {ratio:.2f}x "
          "(ours also hashes, compresses, shards and records provenance)")


if __name__ == "__main__":
    main()
