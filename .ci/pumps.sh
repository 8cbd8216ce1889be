#!/usr/bin/env bash
# Every driver is a pump (issue 16): no status number read and no request name compared as a
# string outside `core/`. Scans the drivers; the model's own answers (transport-mock/src/model,
# the fast model's answer types in sim/fast.rs) and tests are the server side or test code, and
# the daemon's API module answers its own callers (axum), never reads a peer's status.
# Also keeps ARCHITECTURE.md's "where a change goes" table honest: every file it names exists.
set -euo pipefail
cd "$(dirname "$0")/.."

paths=(transport-hyper/src daemon/src cli/src transport-mock/src/memory.rs transport-mock/src/sim python/src python/livepay)
excluded='(/tests/|/tests\.rs:|_test\.rs:|transport-mock/src/sim/fast\.rs:|daemon/src/api\.rs:)'
patterns=(
  # a status compared, matched or ranged
  '[.]status[[:space:]]*(==|!=|<|>)'
  '(==|!=)[[:space:]]*[A-Za-z_.]*status\b'
  '(==|!=)[[:space:]]*Reply::Status'
  'Reply::Status\([0-9]+\)[[:space:]]*(==|!=)'
  'matches!\([^)]*Reply::Status\([0-9]'
  '\((1|2|3|4|5)[0-9][0-9][.][.]=?[0-9]+\)'
  'match[[:space:]]+[A-Za-z_.]*status[[:space:]]*\{'
  # a request's name compared as a string
  '(==|!=)[[:space:]]*"(signer|payment|repost|refresh|stop|reservation|paid-reservation|sign-orchestrator-info|generate-live-payment|discovery|events)"'
  '[.]as_str\(\)[[:space:]]*(==|!=)'
  '[.]what\b'
)
found=0
for pattern in "${patterns[@]}"; do
  hits=$(grep -rnE --include='*.rs' --include='*.py' "$pattern" "${paths[@]}" | grep -vE "$excluded" | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//' || true)
  if [[ -n "$hits" ]]; then
    printf 'a driver decides what the core decides (pattern %s):\n%s\n' "$pattern" "$hits"
    found=1
  fi
done

missing=0
table=$(sed -n '/^## Where a change goes/,/^## /p' ARCHITECTURE.md)
for file in $(printf '%s\n' "$table" | grep -oE '`[A-Za-z0-9_./-]+\.(rs|md|toml)`' | tr -d '`' | sort -u); do
  if [[ ! -e "$file" ]]; then
    echo "ARCHITECTURE.md names a file that does not exist: $file"
    missing=1
  fi
done
if [[ $found -ne 0 || $missing -ne 0 ]]; then
  exit 1
fi
echo "pumps: no status read and no request name compared in the drivers; ARCHITECTURE.md's files exist"
