"""The dataset card: README.md of a dataset dir, so the dir is a ready Hugging Face dataset repo.

Its YAML header names the shards as the data files (`configs`), so `datasets.load_dataset(DIR)`
reads the records and nothing else (not manifest.json); the body says what made the dataset from
the manifest: stage, params, parents, counts, drop reasons and the stage's summary read through its
model in summaries.py (teacher and judge provenance among it).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from syllabus.summaries import dataset_summary

# SPDX identifiers that are also Hugging Face Hub license ids (the Hub's ids are lowercase SPDX);
# any other declared license is "other" in the header and named in the body.
HUB_LICENSES = {
    "0bsd", "afl-3.0", "agpl-3.0", "apache-2.0", "artistic-2.0", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "bsl-1.0", "cc-by-4.0", "cc-by-sa-4.0", "cc0-1.0", "ecl-2.0", "epl-1.0",
    "epl-2.0", "eupl-1.1", "gpl-2.0", "gpl-3.0", "isc", "lgpl-2.1", "lgpl-3.0", "mit", "mpl-2.0",
    "ms-pl", "ncsa", "odbl", "osl-3.0", "postgresql", "unlicense", "wtfpl", "zlib",
}
UNKNOWN = "unknown"
SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
                   (10_000_000_000, "1B<n<10B")]


def hub_license(spdx: str) -> str:
    """The Hub's license id for an SPDX expression: itself lowercased if the Hub knows it."""
    if not spdx or spdx == UNKNOWN:
        return UNKNOWN
    family = spdx.lower().removesuffix("-only").removesuffix("-or-later")  # the Hub names GPL families only
    return family if family in HUB_LICENSES else "other"


def size_category(records: int) -> str:
    return next((name for bound, name in SIZE_CATEGORIES if records < bound), "n>10B")


def card_header(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    licenses = sorted({hub_license(spdx) for spdx in manifest.get("licenses", [])}) or [UNKNOWN]
    others = [spdx for spdx in manifest.get("licenses", []) if hub_license(spdx) == "other"]
    return {
        "pretty_name": name,
        "license": licenses[0] if len(licenses) == 1 else licenses,
        # the Hub's name for a license it has no id for (PSF-2.0 for the standard library)
        **({"license_name": others[0].lower()} if len(others) == 1 else {}),
        "language": ["code"],
        "size_categories": [size_category(manifest["records"])],
        "tags": ["syllabus", manifest["stage"]],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": data_files(manifest)}]}],
    }


def data_files(manifest: dict[str, Any]) -> list[str] | str:
    """The shards that hold records: an empty Parquet shard has no row group and no columns to
    agree with the others, so `load_dataset` must not be given it."""
    return [s["name"] for s in manifest["shards"] if s["records"]] or f"shard-*.{manifest['format']}"


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _json_block(obj: Any) -> str:
    return "```json\n" + json.dumps(obj, indent=2, default=str) + "\n```"


def _summary_sections(manifest: dict[str, Any]) -> list[str]:
    """What the stage reported, read through its summary model (summaries.py): each number with its
    label, unit and meaning (the teacher or judge among them), what it dropped and why, then the
    whole summary folded away."""
    if not manifest.get("summary"):
        return []
    summary = dataset_summary(manifest)
    parts = ["## What the stage reported\n"]
    if summary is not None:
        parts.append(_table([(f.label, f"{f.value:,}" if isinstance(f.value, int) and not isinstance(f.value, bool)
                              else f.value, f.unit, f.meaning) for f in summary.facts()],
                            ("", "value", "unit", "meaning")) + "\n")
        if summary.dropped():
            parts += ["Dropped, by reason:\n", _table(sorted(summary.dropped().items()), ("reason", "records")) + "\n"]
    parts.append("<details><summary>the summary as the stage wrote it (manifest.json)</summary>\n\n"
                 + _json_block(manifest["summary"]) + "\n\n</details>\n")
    return parts


def render_card(manifest: dict[str, Any], name: str) -> str:
    """README.md for a dataset dir whose manifest (the dict `DatasetWriter.close` writes) is given."""
    header = yaml.safe_dump(card_header(manifest, name), sort_keys=False, allow_unicode=True)
    shards = len(manifest["shards"])
    parts = [
        f"---\n{header}---\n",
        f"# {name}\n",
        f"Made by the syllabus stage `{manifest['stage']}` on {manifest['created']}: "
        f"{manifest['records']:,} records in {shards} {manifest['format']} shard{'s' * (shards != 1)} "
        f"({manifest['bytes']:,} bytes). Every record has at least `id` and `text`.\n",
        "```python\nfrom datasets import load_dataset\n\n"
        f"records = load_dataset(\"path/to/{name}\", split=\"train\")  # this dir, or its Hub repo id\n```\n",
        "## Parameters\n",
        _json_block(manifest["params"]) + "\n",
        "## Parents\n",
        (_table([(p["path"], f"`{p['stage']}`", f"{p['records']:,}") for p in manifest["parents"]],
                ("dataset dir", "stage", "records")) if manifest["parents"] else "None: this stage reads no dataset dir.")
        + "\n",
        "## Counts, summed over shards\n",
        (_table(sorted(manifest["stats"].items()), ("counter", "records")) if manifest["stats"]
         else "The stage counted nothing per shard.") + "\n",
        "## Licenses\n",
        (", ".join(f"`{spdx}`" for spdx in manifest["licenses"]) if manifest.get("licenses") else
         "Unknown: no record declares a license (records written by a teacher model are under its "
         "provider's terms; see the summary below).") + "\n",
    ]
    parts += _summary_sections(manifest)
    parts += ["## Files\n",
              "- `shard-NNNNN.*`: the records (JSON lines compressed with zstd, or Parquet).\n"
              "- `manifest.json`: written last, it marks the dataset complete and lists every shard with "
              "its record count and sha256 (`syllabus data verify DIR` checks them).\n"
              "- `.shard-NNNNN.*.json`, `.params.json`: what a re-run of the stage resumes from.\n"]
    return "\n".join(parts)
