#!/usr/bin/env bash
# Side by side: the benches of a base revision and of the working tree, built separately and run
# alternately in one invocation, so that both meet the same machine state. Prints each bench's
# output, base then head, and a summary of the criterion medians.
#
#   benches/compare.sh [BASE]            (default BASE: 8171ddc, the revision issue 16 compares with)
#
# Knobs: COMPARE_ROUNDS (default 2: base, head, base, head), LIVEPAY_SCALE_SESSIONS and
# LIVEPAY_DAEMON_SCALE_SESSIONS (default 2000 each, to keep the run near 20 minutes on 2 cores;
# the README's tables use 10,000), LIVEPAY_SCALE_SECS (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-8171ddc}
rounds=${COMPARE_ROUNDS:-2}
out=target/compare
mkdir -p "$out"
tree=$out/base-tree
if [[ ! -d $tree ]]; then
  git worktree add --detach "$tree" "$base" >/dev/null
fi
git -C "$tree" checkout --quiet --detach "$base"
export LIVEPAY_SCALE_SESSIONS=${LIVEPAY_SCALE_SESSIONS:-2000}
export LIVEPAY_DAEMON_SCALE_SESSIONS=${LIVEPAY_DAEMON_SCALE_SESSIONS:-2000}
export LIVEPAY_SCALE_SECS=${LIVEPAY_SCALE_SECS:-20}
benches=(core_cycle http_cycle http_scale daemon_scale)
args=()
for b in "${benches[@]}"; do args+=(--bench "$b"); done
echo "building base ($base) and head benches (release)"
(cd "$tree" && CARGO_TARGET_DIR="$PWD/../base-target" cargo bench -p livepay-benches "${args[@]}" --no-run -q)
cargo bench -p livepay-benches "${args[@]}" --no-run -q
for round in $(seq 1 "$rounds"); do
  for side in base head; do
    for b in "${benches[@]}"; do
      log=$out/$side-$b-$round.txt
      echo "== round $round · $side · $b"
      if [[ $side == base ]]; then
        (cd "$tree" && CARGO_TARGET_DIR="$PWD/../base-target" cargo bench -q -p livepay-benches --bench "$b" -- --noplot) >"$log" 2>&1 || echo "(failed: see $log)"
      else
        cargo bench -q -p livepay-benches --bench "$b" -- --noplot >"$log" 2>&1 || echo "(failed: see $log)"
      fi
      grep -E "time:|sessions|payments|CPU|cpu|p50|p99|lapses|releases" "$log" | head -40 || true
    done
  done
done
echo
echo "criterion medians (ns or µs as printed), base vs head, per round:"
for b in core_cycle http_cycle; do
  for side in base head; do
    for round in $(seq 1 "$rounds"); do
      awk -v side="$side" -v round="$round" '
        /^[a-z_\/0-9 -]+$/ { name = $0 }
        /time:/ { gsub(/\[|\]/, ""); printf "%-5s r%s %-45s %s %s\n", side, round, name, $4, $5 }
      ' "$out/$side-$b-$round.txt"
    done
  done
done
