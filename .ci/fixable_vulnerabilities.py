"""Read pip-audit's JSON report; fail on known vulnerabilities that have a fix.

pip-audit has no option to fail only on fixable vulnerabilities, so this reads its report
(`--format json`) and decides. Dependencies pip-audit could not check (for example when the
vulnerability service cannot be reached: this project's CI network serves PyPI's package
index but answers 404 for the per-version JSON that carries the vulnerability data) are
listed loudly as NOT CHECKED; with `--strict` (or AUDIT_STRICT=1), as on a network that
reaches PyPI's API, they fail the build too.

Usage: python3 .ci/fixable_vulnerabilities.py [--strict] REPORT.json
Exit codes: 0 clean (or unchecked, not strict), 1 fixable vulnerabilities, 2 unchecked
dependencies under --strict.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(report_path: str, *, strict: bool) -> int:
    report = json.loads(Path(report_path).read_text(encoding="utf-8"))
    dependencies = report["dependencies"]
    unchecked = [d for d in dependencies if d.get("skip_reason")]
    fixable = [
        (dependency, vulnerability)
        for dependency in dependencies
        for vulnerability in dependency.get("vulns", [])
        if vulnerability.get("fix_versions")
    ]
    without_fix = sum(
        1
        for dependency in dependencies
        for vulnerability in dependency.get("vulns", [])
        if not vulnerability.get("fix_versions")
    )
    checked = len(dependencies) - len(unchecked)
    print(
        f"pip-audit: {checked} of {len(dependencies)} locked packages checked; "
        f"{len(fixable)} known vulnerabilities with a fix, {without_fix} without one."
    )
    for dependency, vulnerability in fixable:
        print(
            f"  {dependency['name']} {dependency['version']}: {vulnerability['id']} "
            f"(fixed in {', '.join(vulnerability['fix_versions'])}) — "
            f"run `uv lock --upgrade-package {dependency['name']}`"
        )
    if fixable:
        return 1
    if unchecked:
        print(f"NOT CHECKED: {len(unchecked)} packages could not be checked, for example:")
        for dependency in unchecked[:5]:
            print(f"  {dependency['skip_reason']}")
        if strict:
            return 2
        print("(not failing: the vulnerability data was unreachable; set AUDIT_STRICT=1 to fail)")
    return 0


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--strict"]
    if len(arguments) != 1:
        sys.exit(__doc__)
    strict = "--strict" in sys.argv or os.environ.get("AUDIT_STRICT") == "1"
    sys.exit(main(arguments[0], strict=strict))
