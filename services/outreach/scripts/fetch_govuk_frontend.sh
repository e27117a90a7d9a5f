#!/usr/bin/env bash
# Fetch the GOV.UK Frontend CSS, JavaScript, fonts and images that the officer service and
# the residents' pages use, into src/outreach/static/govuk/ (git-ignored; set-up fetches it).
# The version must match the one govuk-frontend-jinja was written for (4.x → GOV.UK Frontend 6.x).
# Without these files the pages still work, unstyled.
set -euo pipefail
VERSION="${GOVUK_FRONTEND_VERSION:-6.3.0}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="$HERE/src/outreach/static/govuk"
if [[ -f "$TARGET/VERSION" && "$(cat "$TARGET/VERSION")" == "$VERSION" ]]; then
  exit 0
fi
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm pack --silent "govuk-frontend@$VERSION" >/dev/null)
tar -xzf "$WORK"/govuk-frontend-*.tgz -C "$WORK"
rm -rf "$TARGET"
mkdir -p "$TARGET"
cp "$WORK/package/dist/govuk/govuk-frontend.min.css" "$WORK/package/dist/govuk/govuk-frontend.min.js" "$TARGET/"
cp -r "$WORK/package/dist/govuk/assets" "$TARGET/assets"
echo "$VERSION" >"$TARGET/VERSION"
echo "GOV.UK Frontend $VERSION is in $TARGET"
