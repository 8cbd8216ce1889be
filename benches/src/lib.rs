#![doc = include_str!("../README.md")]

use livepay_mock::faults::{FaultPlan, Latency};

/// Clock ticks per second of `/proc` CPU times (`CLK_TCK`, 100 on Linux).
const CLK_TCK: f64 = 100.0;

/// utime + stime in seconds from a `/proc/.../stat` file (0 where it cannot be read).
#[must_use]
pub fn cpu_seconds(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    #[allow(clippy::cast_precision_loss)]
    let total = (ticks(11) + ticks(12)) as f64;
    total / CLK_TCK
}

/// CPU time of one thread, seconds: the scheduler's exact `se.sum_exec_runtime` (milliseconds)
/// from `<task_dir>/sched`, else utime + stime from `<task_dir>/stat` (clock ticks).
#[must_use]
pub fn thread_cpu_at(task_dir: &str) -> f64 {
    let exact = std::fs::read_to_string(format!("{task_dir}/sched"))
        .ok()
        .and_then(|sched| {
            sched
                .lines()
                .find_map(|l| l.strip_prefix("se.sum_exec_runtime"))
                .and_then(|rest| rest.split(':').nth(1))
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
    exact.map_or_else(|| cpu_seconds(&format!("{task_dir}/stat")), |ms| ms / 1e3)
}

/// CPU time of every live thread of process `pid` (`self` for this one), seconds.
#[must_use]
pub fn process_cpu(pid: &str) -> f64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .map(|task| thread_cpu_at(&task.path().to_string_lossy()))
                .sum()
        })
        .unwrap_or_else(|_| cpu_seconds(&format!("/proc/{pid}/stat")))
}

/// Gives every endpoint of `plan` (signer, payment, refresh, stop) a fixed simulated latency of
/// `ms` milliseconds.
pub fn set_fixed_latency(plan: &mut FaultPlan, ms: f64) {
    for faults in [
        &mut plan.signer,
        &mut plan.payment,
        &mut plan.refresh,
        &mut plan.stop,
    ] {
        faults.latency = Latency::Fixed { ms };
    }
}

/// Where the benches leave the figures the README's benchmark tables are made of
/// (`target/livepay-bench/`), read by the `bench-tables` binary.
#[must_use]
pub fn figures_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
            std::path::PathBuf::from,
        )
        .join("livepay-bench")
}

/// Records one figure of a full bench run (`name` = `value`, one line in
/// `target/livepay-bench/<bench>.txt`, replacing an earlier `name`). A figure that cannot be
/// written is reported on stderr, never fatal: the bench's own output stays the record.
#[allow(clippy::print_stderr)]
pub fn record_figure(bench: &str, name: &str, value: &str) {
    let dir = figures_dir();
    let path = dir.join(format!("{bench}.txt"));
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_once('=').is_none_or(|(k, _)| k != name))
        .map(str::to_owned)
        .collect();
    lines.push(format!("{name}={value}"));
    lines.sort();
    if let Err(e) =
        std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, lines.join("\n") + "\n"))
    {
        eprintln!("could not record {name} in {}: {e}", path.display());
    }
}
