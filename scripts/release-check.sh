#!/usr/bin/env bash
# Checks that a tag can be released, before anything is built: the tag is v<VERSION>, every crate
# and package carries exactly VERSION (the list scripts/test.sh checks, plus the CLI's version
# requirement on the core), and CHANGELOG.md has a section for VERSION whose heading no longer
# says "unreleased". Prints VERSION on success.
#
# Usage: scripts/release-check.sh TAG        e.g. scripts/release-check.sh v0.1.0
#        scripts/release-check.sh --any-state TAG   the same, but an "unreleased" heading passes
#                                            (the release workflow run by hand, which publishes nothing)
set -euo pipefail
cd "$(dirname "$0")/.."

released=--released
if [ "${1:-}" = --any-state ]; then released=""; shift; fi
[ $# = 1 ] || { echo "usage: scripts/release-check.sh [--any-state] TAG" >&2; exit 2; }
tag="$1"
[[ "$tag" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] \
  || { echo "release-check.sh: '$tag' is not a release tag (v1.2.3 or v1.2.3-rc.1)" >&2; exit 1; }
version="${tag#v}"

problems=()
check() { # FILE FOUND
  [ "$2" = "$version" ] || problems+=("$1 says '${2:-nothing}', the tag says $version")
}
for manifest in core/Cargo.toml cli/Cargo.toml bindings-python/Cargo.toml bindings-uniffi/Cargo.toml \
  bindings-wasm/Cargo.toml bindings-python/pyproject.toml; do
  check "$manifest" "$(grep -m1 '^version *=' "$manifest" | sed 's/.*= *//' | tr -d '"')"
done
check bindings-wasm/js/package.json \
  "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' bindings-wasm/js/package.json)"
# The CLI's requirement on the core is what crates.io resolves: it must be this very version.
check "cli/Cargo.toml (its bucketsync dependency)" \
  "$(grep -m1 '^bucketsync *= *{.*path *= *"../core"' cli/Cargo.toml | sed -n 's/.*version *= *"=\{0,1\}\([^"]*\)".*/\1/p')"

if [ ${#problems[@]} -gt 0 ]; then
  printf 'release-check.sh: %s\n' "${problems[@]}" >&2
  exit 1
fi
# shellcheck disable=SC2086 # $released is one flag or nothing
scripts/release-notes.sh $released "$version" >/dev/null
echo "$version"
