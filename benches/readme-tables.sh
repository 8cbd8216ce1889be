#!/usr/bin/env bash
# Runs the benches whose figures the README's benchmark tables show, then writes those tables
# into README.md between the `bench tables` markers. Takes about 10 minutes on a 2-core machine.
# LIVEPAY_SCALE_SESSIONS (default 10000,20000) chooses the Funder scale points.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf target/livepay-bench
cargo bench -p livepay-benches --bench core_cycle --bench sim_throughput --bench http_cycle -- --noplot
LIVEPAY_SCALE_SESSIONS="${LIVEPAY_SCALE_SESSIONS:-10000,20000}" \
  cargo bench -p livepay-benches --bench http_scale
# The daemon beside the in-process Funder, 10,000 sessions each (about 3 minutes).
LIVEPAY_DAEMON_SCALE_SESSIONS="${LIVEPAY_DAEMON_SCALE_SESSIONS:-10000}" \
  cargo bench -p livepay-benches --bench daemon_scale
cargo run -q -p livepay-benches --bin bench-tables -- --write README.md
