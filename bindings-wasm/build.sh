#!/usr/bin/env bash
# Builds the npm package into bindings-wasm/js: wasm (size profile) → wasm-bindgen → wasm-opt.
# Needs wasm-bindgen-cli 0.2.130 and npm binaryen; scripts/test.sh installs both into the cache.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${BUCKETSYNC_CACHE:-$HOME/.cache/bucketsync}"
wasm_bindgen="${WASM_BINDGEN:-$cache/wasm-bindgen/bin/wasm-bindgen}"
wasm_opt="${WASM_OPT:-$cache/npm/node_modules/.bin/wasm-opt}"
cargo build -p bucketsync-wasm --target wasm32-unknown-unknown --profile wasm-release
"$wasm_bindgen" --target web --out-dir bindings-wasm/js/pkg --out-name bucketsync_wasm \
  target/wasm32-unknown-unknown/wasm-release/bucketsync_wasm.wasm
# --converge: -Oz again until nothing shrinks (about 2 KB gzipped less than one -Oz pass).
"$wasm_opt" -Oz --converge --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --strip-debug --strip-producers \
  bindings-wasm/js/pkg/bucketsync_wasm_bg.wasm -o bindings-wasm/js/pkg/bucketsync_wasm_bg.wasm
# The licence texts, which npm pack would skip as symlinks: copied (and ignored by git).
cp LICENSE-MIT LICENSE-APACHE bindings-wasm/js/
raw=$(wc -c < bindings-wasm/js/pkg/bucketsync_wasm_bg.wasm)
gz=$(gzip -9 -c bindings-wasm/js/pkg/bucketsync_wasm_bg.wasm | wc -c)
# The bar was 250,000 before files (issue 11) added the chunker, packs and the two transfer
# machines (+47 KB gzipped). Issue 12 asks for 150,000: what takes the space is in its notes
# (twiggy: sort and BTreeMap copies, serde of old state versions, the aws-sigv4 stack).
# Pack collection (state version 8) took it from 285,845 to about 293,200: the bar moved from
# 290,000 to 300,000. Resuming multipart packs (state version 9, +5.2 KB) and openFile
# (+3.8 KB) took it to about 302,250: the bar moved to 305,000. Repacking (bucket format 7: the
# redirect-following read, the survey of packs and redirects, the repack itself) took it from
# 304,315 to 317,115 (+12.8 KB, measured in one run before and after): the bar moved to 320,000.
# Background sync and export/import (issue 18) took it from 318,477 to 360,011 (measured in one
# run before and after): +18.1 KB for the loop (the schedule, the change-hint poll, the signal
# channel) and +23.4 KB for JSON Lines (serde_json, base64): the bar moved to 365,000.
# Sharing (identity, createShared/openShared, share, accept: ML-KEM-768, X25519 and Ed25519 from
# curve25519-dalek, SHA-3, the grants and home records) took it from 361,350 to 412,979
# (+51.6 KB, measured in one run before and after); the checks added after review (accept from
# an expected granter, a shared vault is not a home) took it to 414,724: the bar moved to 420,000.
# Roles enforced by readers and revocation (member statements and their resolution, signed
# objects, key generations and their grants, members/revoke) took it from 414,724 to 444,603
# (+29.9 KB), and the fixes after review (revocation order, one key per person, salted key
# grant names) to 450,914: the bar moved to 455,000. The issue's 150 KB bar is out of reach with the
# post-quantum sharing stack in the same module; splitting sharing into a second wasm module
# loaded on demand is the way there, not done yet. SyncReport.changed carried over failed
# syncs and starting over, an own write kept beyond the history policy, and one signer per
# device took it from 452,811 to about 455,250 (+2.4 KB, measured in one run before and
# after; the same tree measured 450,914 on an earlier toolchain): the bar moved to 458,000.
# Files sealed under key generations, the signer URL in invitations and invitationInfo took it
# to 457,108 (fresh-clone CI) and 457,569 (+0.5 KB, local): the bar moved to 461,000.
# One version of each crypto crate (chacha20, poly1305 and argon2 moved to the versions HPKE
# uses) took it from 457,777 to 455,363 (measured in one run before and after). The one place
# that printed a float (a refused autoSync timing) names what it was instead: the float printing
# code left the module, 455,363 -> 445,483. Maps and sets built by inserting instead of
# `collect` (which sorts first: one copy of the stable sort per type, about 2 KB gzipped each) in
# eight places, and unstable sorts where no two elements are equal, took it to 433,812
# (433,764 in fresh-clone CI): the bar moved down to 436,000, so the savings stay.
# Issue 37 moved rules from the JS layer and the bindings into the core: the vault's day
# settings, notify parsing, state names, the declared-size check of file sources and the
# listener registry with its fan-out (index.js keeps only the events() iterator): 433,812 ->
# 436,582 (+2.8 KB, measured in one run before and after): the bar moved to 437,000.
# Issue 38's fixes in the core (pack collection looks at each former id of the device in turn,
# an upload keeps only its own packs' chunks, a pack PUT's 412 counts as stored, a fixed
# entropy seed for simulations): 436,761 -> 437,679 (+0.9 KB): the bar moved to 438,500.
# Compressed chunks (bucket format 10: raw deflate and inflate from miniz_oxide, pure Rust) add
# about 22.7 KB gzipped, as measured by an earlier build of the same change: the bar moved by
# 24,000, to 462,500 (measured since: 459,666).
# putFiles (many files in one upload, sharing packs) took it from 459,666 to 468,063 (+8.4 KB,
# measured in one run before and after): the core's batch upload (Session::put_files with its
# two hash maps and the stable sort of the files left when a batch fails, the Upload's many-file
# steps) enters the module, and the upload machine, now reached from putFile and putFiles, is
# no longer inlined into putFile alone. The binding's own part is small (a FileBatch over the JS
# sources, ~1 KB raw); the core's maps and sort are where a few KB could be won back. The bar
# moved to 469,000.
# Journal version 10 (a push's cleaned keys as one list) and bucket format 11 (segments and
# checkpoints deflated as a whole: the codec byte read and written around them, inflating into
# the segment's place) took it from 468,066 (fresh-clone CI before both) to 469,765 (+1.7 KB,
# local): the bar moved to 471,000.
# Issue 53 moved the shared-vault workflows into the core (create, open and accept end to end,
# and the one rule for what a vault opened through a home takes of it: the JS layer's
# sharedConnection is gone) and parses the JS connection in Rust: 470,641 -> 476,386 (+5.7 KB,
# measured in one run before and after): the bar moved to 477,000. The state lock's rules, which
# the JS layer's fileStorage now takes from the core so that Node and native processes follow one
# protocol, took it to 477,517 (+1.1 KB): the bar moved to 478,000.
# One cancel for every call (the core's Cancel, a class the JS layer makes per sync, transfer or
# read, in place of a promise per transfer and the session's flag for syncs): 477,453 -> 478,383
# (+0.9 KB, measured in one run before and after): the bar moved to 479,000.
# A read to a Node path follows the core's partial-file rule (Session::get_file_through: the
# partial file named, checked, resumed from and put in place by the core, where index.js had a
# copy without resume); streams and Blobs are read through the same export, so the download
# loop is in the module once: 478,383 -> 481,851 (+3.5 KB, measured in one run before and
# after): the bar moved to 482,500.
# No known way to lose a write (issue 54), in the core every platform runs: the segments of a
# manifest held for its clock read and merged within the bound, a lower manifest number taken
# from a replica restored from a backup, checkpoints no manifest names listed and adopted when
# deleted segments need them (a request kind), a clock in doubt without a leap: 482,186 ->
# 485,112 (+2.9 KB, measured in one run at the start and the end of the session): the bar moved
# to 485,500.
# Objects sealed unreadable passed over (issue 54: the segment and checkpoint openers tell an
# object that did not authenticate from one sealed so, and the engine keeps the checkpoints it
# refused) and the folder guard's error, whose message every platform's errors carry: 485,112 ->
# 486,129 (+1.0 KB, measured in one run at the start and the end of the session; a list rather
# than a hash set for the refused checkpoints saved 52 bytes): the bar moved to 486,500.
# Encryption at rest and storage classes from the store URL (issue 56: the parameters, their
# checks and messages, the headers on every write) took it from 486,129 to 488,706 (+2.6 KB,
# fresh-clone CI): the bar moved to 489,500.
# Bit rot met at the edges (issue 54), in the core every platform runs: a damaged segment read
# from a checkpoint that covers it (in the same sync; the checkpoints that failed to
# authenticate remembered), a damaged own manifest read twice then written again, a retired
# device's unread manifest holding up no segment deletion, an empty former id passed at once:
# 488,712 -> 489,512 (+0.8 KB, measured in one run at the start and the end of the session):
# the bar moved to 490,000.
# Clocks apart reported (issue 54: Error::ClockApart, its check after the manifests and its
# message), a checkpoint written for a device stranded by a rotted one, and journal entries and
# checkpoints written into their sealed buffers once (a Delta handed to the journal, the coded
# plaintext deflated in place): 489,512 (the last fresh-clone CI) -> 490,457 (+0.9 KB, local;
# a message cut by half saved 61 bytes, and was not kept): the bar
# moved to 491,000.
# A former id's log collected (issue 54: closing its manifest, listing and deleting its segments
# and checkpoints, a request kind), the deleting device reading its checkpoint back for a
# device stranded below its deletion, and uploads that reference nothing a stale state's
# records name: 490,457 -> 494,621 (+4.2 KB, fresh-clone CI): the bar moved to 495,000. What
# the former-id code costs was not measured apart; issue 57's smaller wasm should look there.
bar=495000
echo "wasm size: $raw bytes raw, $gz bytes gzipped (bar: $bar)"
[ "$gz" -le "$bar" ] || { echo "the wasm is over the $bar bytes gzipped bar" >&2; exit 1; }
