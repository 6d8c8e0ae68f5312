#!/usr/bin/env bash
# Prints the CHANGELOG.md section of one version: the lines under its `## VERSION …` heading, up
# to the next `## ` heading, without the heading itself and without leading or trailing blank
# lines. The release workflow uses it as the GitHub release's notes.
#
# Usage: scripts/release-notes.sh [--released] VERSION [CHANGELOG]
#   VERSION     0.1.0, or the tag v0.1.0 (a leading v is dropped)
#   CHANGELOG   default: CHANGELOG.md at the top of this checkout
#   --released  also fail when the heading still says "unreleased" (a tag is being cut)
#
# A heading matches when `## ` is followed by exactly VERSION and then the end of the line, a
# space or a parenthesis: `## 0.1.0 (2026-12-01)` is 0.1.0, `## 0.1.0-rc.1` is not.
# Exits 1 (with a message on stderr) when there is no such section or it is empty.
set -euo pipefail

released=false
if [ "${1:-}" = --released ]; then released=true; shift; fi
[ $# -ge 1 ] && [ $# -le 2 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
version="${1#v}"
changelog="${2:-$(dirname "$0")/../CHANGELOG.md}"
[ -f "$changelog" ] || { echo "release-notes.sh: no file $changelog" >&2; exit 1; }

heading=$(V="$version" awk '{ v = ENVIRON["V"] } index($0, "## " v) == 1 && substr($0, length(v) + 4, 1) ~ /^$|[ (]/ { print; exit }' "$changelog")
[ -n "$heading" ] || { echo "release-notes.sh: $changelog has no '## $version' section" >&2; exit 1; }
if $released && grep -qi 'unreleased' <<<"$heading"; then
  echo "release-notes.sh: the heading in $changelog still says unreleased: '$heading'" >&2
  echo "  (replace it with the release date, e.g. '## $version ($(date -u +%F))', and commit before tagging)" >&2
  exit 1
fi

# The section's lines, leading blank lines dropped (the command substitution drops the trailing
# ones; blank lines inside stay).
body=$(H="$heading" awk 'BEGIN { h = ENVIRON["H"] }
  found && /^## / { exit }
  found { print }
  $0 == h { found = 1 }
' "$changelog" | awk 'NF { started = 1 } started')
[ -n "$body" ] || { echo "release-notes.sh: the '$heading' section of $changelog is empty" >&2; exit 1; }
printf '%s\n' "$body"
