"""The license of ingested code, as an SPDX expression where its package declares one; else "unknown".

Where a declaration is read, first match wins:
- an installed distribution (a `*.dist-info/METADATA` in site-packages): `License-Expression`
  (PEP 639), else a `License` field that is exactly an SPDX identifier, else the license
  classifiers that name one license (`MIT License` -> MIT; `BSD License`, which names no clause
  count, names none);
- a source tree: `project.license` of its pyproject.toml (an SPDX expression, or `{text = ID}`),
  else its classifiers, as above;
- the Python standard library: PSF-2.0.
A LICENSE file's text is never guessed from.
"""

from __future__ import annotations

import posixpath
import sysconfig
import tomllib
from collections.abc import Callable, Iterable
from email.message import Message
from importlib import metadata
from pathlib import Path

UNKNOWN = "unknown"
STDLIB_LICENSE = "PSF-2.0"
SPDX_IDS = {spdx.lower(): spdx for spdx in (
    "0BSD", "AGPL-3.0-only", "AGPL-3.0-or-later", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "BSL-1.0",
    "CC0-1.0", "EPL-2.0", "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only", "GPL-3.0-or-later", "HPND", "ISC",
    "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only", "LGPL-3.0-or-later", "MIT", "MIT-0", "MPL-2.0",
    "PSF-2.0", "Python-2.0", "Unlicense", "Zlib",
)}
CLASSIFIERS = {
    "MIT License": "MIT",
    "MIT No Attribution License (MIT-0)": "MIT-0",
    "Apache Software License": "Apache-2.0",  # the classifier has no version; every release in use is 2.0
    "ISC License (ISCL)": "ISC",
    "Python Software Foundation License": "PSF-2.0",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "The Unlicense (Unlicense)": "Unlicense",
    "zlib/libpng License": "Zlib",
    "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0",
    "Historical Permission Notice and Disclaimer (HPND)": "HPND",
}


def _from_classifiers(classifiers: Iterable[str]) -> str | None:
    named = sorted({CLASSIFIERS[c.strip().split(" :: ")[-1]] for c in classifiers
                    if c.strip().startswith("License ::") and c.strip().split(" :: ")[-1] in CLASSIFIERS})
    return " OR ".join(named) or None  # several license classifiers offer a choice


def metadata_license(meta: Message) -> str:
    """The SPDX expression a distribution's METADATA declares, or "unknown"."""
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        return expression
    field = (meta.get("License") or "").strip()
    if field.lower() in SPDX_IDS:
        return SPDX_IDS[field.lower()]
    return _from_classifiers(meta.get_all("Classifier") or []) or UNKNOWN


def pyproject_license(root: Path) -> str:
    """The SPDX expression a source tree's pyproject.toml declares, or "unknown"."""
    try:
        project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return UNKNOWN
    value = project.get("license")
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, dict) and str(value.get("text", "")).strip().lower() in SPDX_IDS:
        return SPDX_IDS[value["text"].strip().lower()]
    return _from_classifiers(project.get("classifiers", [])) or UNKNOWN


def _installed_licenses(root: Path) -> dict[str, str]:
    """Every file an installed distribution under `root` lists in its RECORD (relative to `root`) -> its license."""
    licenses = {}
    for dist in metadata.distributions(path=[str(root)]):
        license = metadata_license(dist.metadata)
        for file in dist.files or ():
            licenses[posixpath.normpath(file.as_posix())] = license
    return licenses


def tree_licenses(root: Path) -> Callable[[str], str]:
    """The license of each file under `root`: a function of its path relative to `root` (posix)."""
    if root.resolve() == Path(sysconfig.get_paths()["stdlib"]).resolve():
        return lambda path: STDLIB_LICENSE
    installed = _installed_licenses(root) if any(root.glob("*.dist-info")) else {}
    if installed:
        return lambda path: installed.get(posixpath.normpath(path), UNKNOWN)
    license = pyproject_license(root)
    return lambda path: license
