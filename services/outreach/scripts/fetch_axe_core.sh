#!/usr/bin/env bash
# Fetch axe-core, the accessibility engine the browser tests run in each page to check it
# against WCAG 2.2 AA, into tests/vendor/axe-core/ (git-ignored; `make assets` fetches it).
# It is only ever loaded by the tests, never served. Without it those checks are skipped.
set -euo pipefail
VERSION="${AXE_CORE_VERSION:-4.14.1}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="$HERE/tests/vendor/axe-core"
if [[ -f "$TARGET/VERSION" && "$(cat "$TARGET/VERSION")" == "$VERSION" ]]; then
  exit 0
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "axe-core@$VERSION" >/dev/null)
tar -xzf "$WORK"/axe-core-*.tgz -C "$WORK"
rm -rf "$TARGET"
mkdir -p "$TARGET"
cp "$WORK/package/axe.min.js" "$WORK/package/LICENSE" "$TARGET/"
echo "$VERSION" >"$TARGET/VERSION"
echo "axe-core $VERSION is in $TARGET"
