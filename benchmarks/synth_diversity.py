"""Distinct prompts, acceptance and diversity of a synth.exercises run, before and after prompt spaces.

Both runs ask a local teacher that answers deterministically from the prompt (the offline template
teacher, `offline:exercises`: its exercise is seeded by the whole prompt) for the same n exercises:
  before  today's grid: the packaged function names, each prompt sent ~n / names times (samples)
  after   the prompt space: the same names x difficulty x data type, no prompt sent twice
and prints, per run, the distinct prompts, the accepted fraction (kept over answered, after the
sandbox and the near-duplicate filter) and the diversity numbers of the kept exercises.

    PYTHONPATH=src python benchmarks/synth_diversity.py [--n 2000] [--out /tmp/synth_diversity]
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

from syllabus.synth.exercises import ExercisesParams, load_names, synth_exercises

AXES = {"difficulty": ["easy", "medium", "hard"], "data_type": ["integers", "strings", "lists", "dictionaries"]}


def run(name: str, params: ExercisesParams, out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    summary = synth_exercises(params, out, workers=1).manifest["summary"]["synth.exercises"]
    diversity = summary["diversity"]
    return {"run": name, "distinct_prompts": summary["prompts"]["distinct"], "n": params.n,
            "accepted": summary["records"], "accepted_fraction": summary["acceptance_rate"],
            "dropped": summary["rejected"], "distinct_4gram_ratio": diversity["distinct_4gram_ratio"],
            "near_duplicate_rate": diversity["near_duplicate_rate"],
            "mean_pairwise_cosine": diversity["mean_pairwise_cosine"],
            "distinct_openings": diversity["distinct_openings"],
            "top_openings": diversity["top_openings"],
            "embedding_clusters": diversity["embedding_clusters"]["coverage"],
            "names_covered": summary["coverage"]["names"]["ratio"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=Path("/tmp/synth_diversity"))
    args = parser.parse_args()
    names = len(load_names())
    common = {"teacher": "offline:exercises", "n": args.n, "batch_size": 250, "workers": 2}
    before = ExercisesParams(**common, max_repeats=math.ceil(args.n / names))
    after = ExercisesParams(**common, max_repeats=1, axes=AXES)
    rows = [run("before: names grid", before, args.out / "before"), run("after: names x axes", after, args.out / "after")]
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
