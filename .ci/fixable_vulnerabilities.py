"""Read pip-audit's JSON report; fail on known vulnerabilities that have a fix.

pip-audit has no option to fail only on fixable vulnerabilities, so this reads its report
(`--format json`) and decides. It also fails when pip-audit could not check a dependency
(for example when the vulnerability service does not know the package's version): an audit
that checked nothing must not pass as clean.

Usage: python3 .ci/fixable_vulnerabilities.py REPORT.json
Exit codes: 0 clean, 1 fixable vulnerabilities, 2 dependencies that could not be checked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(report_path: str) -> int:
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
        print(f"{len(unchecked)} packages could not be checked, for example:")
        for dependency in unchecked[:5]:
            print(f"  {dependency['skip_reason']}")
        return 2
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
