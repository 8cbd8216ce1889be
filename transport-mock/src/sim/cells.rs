//! The cells grid: session lengths × fault profiles × ticket EVs, both policies in every cell,
//! the same seeds in every cell; a table, deterministic JSON, and the README's Markdown tables.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use embassy_time::Duration;
use serde::Serialize;

use super::criteria::{CriterionResult, check_criteria};
use super::report::{opt, round3, table};
use super::{PolicyKind, PolicyReport, SimConfig, SimError, simulate_valid};
use crate::faults::{FaultPlan, PROFILES, PlanError};

/// The session lengths of the full grid: 1, 3, 10, 30, 60 and 600 minutes.
pub const GRID_LENGTHS: [Duration; 6] = [
    Duration::from_secs(60),
    Duration::from_secs(180),
    Duration::from_secs(600),
    Duration::from_secs(1_800),
    Duration::from_secs(3_600),
    Duration::from_secs(36_000),
];

/// The ticket EVs of the full grid, in seconds of price: one ticket worth 1 s, 2.5 s, 10 s, 1 min
/// and 3 min of service (go-livepeer #4077 saw about 3 min).
pub const GRID_EVS: [f64; 5] = [1.0, 2.5, 10.0, 60.0, 180.0];

/// What [`cells`] runs: every combination of `lengths`, `profiles` and `evs`, each with both
/// policies, everything else from `base`.
#[derive(Debug, Clone, PartialEq)]
pub struct CellsConfig {
    /// Session lengths.
    pub lengths: Vec<Duration>,
    /// Fault plans (a plan's `"mid"` windows start at half each cell's length).
    pub profiles: Vec<FaultPlan>,
    /// Ticket EVs, seconds of price.
    pub evs: Vec<f64>,
    /// Sessions, seed, client and server configuration of every cell; its `duration`, `plan` and
    /// ticket EV are each cell's, its `trace_sessions` is ignored.
    pub base: SimConfig,
    /// Worker threads; 0: one per available core. The report does not depend on it.
    pub threads: usize,
}

impl CellsConfig {
    /// The full grid ([`GRID_LENGTHS`] × every profile of [`PROFILES`] × [`GRID_EVS`]) with
    /// `sessions` sessions per cell and policy, seed 1.
    ///
    /// # Errors
    ///
    /// Never in practice: a named profile failed to load.
    pub fn grid(sessions: u32) -> Result<Self, PlanError> {
        Ok(Self {
            lengths: GRID_LENGTHS.to_vec(),
            profiles: PROFILES
                .iter()
                .map(|name| FaultPlan::profile(name))
                .collect::<Result<_, _>>()?,
            evs: GRID_EVS.to_vec(),
            base: SimConfig {
                sessions,
                ..SimConfig::default()
            },
            threads: 0,
        })
    }

    /// The configuration of one cell.
    fn cell(&self, length: Duration, plan: &FaultPlan, ev: f64) -> SimConfig {
        SimConfig {
            duration: length,
            plan: plan.clone(),
            trace_sessions: 0,
            ..self.base.clone()
        }
        .with_ev_seconds(ev)
    }
}

/// One cell: both policies under one length, profile and EV.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cell {
    /// Session length, seconds.
    pub length_s: u64,
    /// The fault profile's name.
    pub profile: String,
    /// The ticket EV, seconds of price.
    pub ev_seconds: f64,
    /// livepay's report.
    pub livepay: PolicyReport,
    /// The livepeer-gateway 1.0.0 baseline's report.
    pub sdk: PolicyReport,
}

impl Cell {
    /// `10m clean EV 2.5 s`: how a criterion names the cell.
    pub fn label(&self) -> String {
        format!(
            "{} {} EV {} s",
            length_label(self.length_s),
            self.profile,
            self.ev_seconds
        )
    }
}

/// The whole grid.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellReport {
    /// The seed every cell used.
    pub seed: u64,
    /// Sessions per cell and policy.
    pub sessions: u32,
    /// The cells, by length, then profile, then EV, in the configuration's order.
    pub cells: Vec<Cell>,
    /// The project's cost-and-safety criteria, and the cells that fail each
    /// ([`check_criteria`]).
    pub criteria: Vec<CriterionResult>,
}

/// `1m`, `10m`, `1h`, `10h`, `90s`.
pub(crate) fn length_label(secs: u64) -> String {
    match secs {
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// Runs every cell of `config` (in parallel, on [`CellsConfig::threads`] threads; the result is
/// the same for any number).
///
/// # Errors
///
/// The grid is empty or names a zero length or a non-positive EV ([`SimError::Grid`]), or a
/// cell cannot be simulated ([`SimConfig::validate`]).
pub fn cells(config: &CellsConfig) -> Result<CellReport, SimError> {
    if config.lengths.is_empty() || config.profiles.is_empty() || config.evs.is_empty() {
        return Err(SimError::Grid(
            "a grid needs a length, a profile and an EV".into(),
        ));
    }
    if config.lengths.iter().any(|l| l.as_ticks() == 0) {
        return Err(SimError::Grid("a session length is zero".into()));
    }
    if let Some(ev) = config.evs.iter().find(|ev| !(ev.is_finite() && **ev > 0.0)) {
        return Err(SimError::Grid(format!(
            "ticket EV {ev} s is not a positive number"
        )));
    }
    let mut specs = Vec::new();
    for &length in &config.lengths {
        for plan in &config.profiles {
            for &ev in &config.evs {
                let sim = config.cell(length, plan, ev);
                sim.validate()?;
                specs.push(sim);
            }
        }
    }
    // One task per cell and policy, the longest first so the workers finish together.
    let mut tasks: Vec<(usize, PolicyKind)> = (0..specs.len())
        .flat_map(|i| [(i, PolicyKind::Livepay), (i, PolicyKind::Sdk10)])
        .collect();
    tasks.sort_by_key(|&(i, _)| std::cmp::Reverse(specs[i].duration.as_ticks()));
    let results: Vec<Mutex<[Option<PolicyReport>; 2]>> =
        specs.iter().map(|_| Mutex::new([None, None])).collect();
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<SimError>> = Mutex::new(None);
    let threads = match config.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
    .min(tasks.len());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(i, policy)) = tasks.get(k) else {
                        break;
                    };
                    match simulate_valid(&specs[i], policy) {
                        Ok(report) => {
                            let slot = usize::from(policy == PolicyKind::Sdk10);
                            results[i]
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner)[slot] = Some(report);
                        }
                        Err(e) => {
                            *failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                            break;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(e);
    }
    let cells: Vec<Cell> = specs
        .iter()
        .zip(results)
        .filter_map(|(sim, slot)| {
            let [livepay, sdk] = slot
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Some(Cell {
                length_s: sim.duration.as_secs(),
                profile: sim.plan.name.clone(),
                ev_seconds: sim.ev_seconds(),
                livepay: livepay?,
                sdk: sdk?,
            })
        })
        .collect();
    let mut report = CellReport {
        seed: config.base.seed,
        sessions: config.base.sessions,
        cells,
        criteria: Vec::new(),
    };
    report.criteria = check_criteria(&report);
    Ok(report)
}

fn pair(a: impl fmt::Display, b: impl fmt::Display) -> String {
    format!("{a} / {b}")
}

impl CellReport {
    /// The report as JSON (deterministic: same configuration, same bytes).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The cells of `profile` with EV `ev` and length `length_s`, if run.
    fn find(&self, length_s: u64, profile: &str, ev: f64) -> Option<&Cell> {
        self.cells
            .iter()
            .find(|c| c.length_s == length_s && c.profile == profile && c.ev_seconds == ev)
    }

    fn axes(&self) -> (Vec<u64>, Vec<String>, Vec<f64>) {
        let mut lengths: Vec<u64> = Vec::new();
        let mut profiles: Vec<String> = Vec::new();
        let mut evs: Vec<f64> = Vec::new();
        for c in &self.cells {
            if !lengths.contains(&c.length_s) {
                lengths.push(c.length_s);
            }
            if !profiles.contains(&c.profile) {
                profiles.push(c.profile.clone());
            }
            if !evs.contains(&c.ev_seconds) {
                evs.push(c.ev_seconds);
            }
        }
        (lengths, profiles, evs)
    }

    /// The README's cost and drops tables, in Markdown, from these cells: over-payment and signer
    /// calls per session-hour on the clean profile (length × EV), and drops per profile and EV
    /// (summed over the lengths). Each cell reads "livepay / SDK 1.0".
    pub fn readme_markdown(&self) -> String {
        let (lengths, profiles, evs) = self.axes();
        let ev_header: Vec<String> = evs.iter().map(|ev| format!("EV {ev} s")).collect();
        let mut header: Vec<&str> = vec!["session"];
        header.extend(ev_header.iter().map(String::as_str));
        let clean_rows = |value: &dyn Fn(&Cell) -> String| -> Vec<Vec<String>> {
            lengths
                .iter()
                .map(|&l| {
                    let mut row = vec![length_label(l)];
                    row.extend(
                        evs.iter()
                            .map(|&ev| self.find(l, "clean", ev).map_or("-".into(), value)),
                    );
                    row
                })
                .collect()
        };
        let mut out = format!(
            "Generated by `livepay sim --readme` ({} sessions per cell and policy, seed {}); each cell reads \
             livepay / SDK 1.0.\n\n",
            self.sessions, self.seed
        );
        if profiles.iter().any(|p| p == "clean") {
            out.push_str(
                "Over-payment on the clean profile (credit the orchestrator received ÷ service debited):\n\n",
            );
            out.push_str(&table(
                &header,
                &clean_rows(&|c| {
                    pair(
                        format!("{:.3}", c.livepay.overpayment),
                        format!("{:.3}", c.sdk.overpayment),
                    )
                }),
            ));
            out.push_str("\nSigner calls per session-hour on the clean profile:\n\n");
            out.push_str(&table(
                &header,
                &clean_rows(&|c| {
                    pair(
                        format!("{:.0}", c.livepay.signer_calls_per_session_hour),
                        format!("{:.0}", c.sdk.signer_calls_per_session_hour),
                    )
                }),
            ));
            out.push('\n');
        }
        let mut drops_header: Vec<&str> = vec!["profile"];
        drops_header.extend(ev_header.iter().map(String::as_str));
        let rows: Vec<Vec<String>> = profiles
            .iter()
            .map(|p| {
                let mut row = vec![p.clone()];
                row.extend(evs.iter().map(|&ev| {
                    let (ours, sdk) = self
                        .cells
                        .iter()
                        .filter(|c| &c.profile == p && c.ev_seconds == ev)
                        .fold((0, 0), |(a, b), c| (a + c.livepay.drops, b + c.sdk.drops));
                    pair(ours, sdk)
                }));
                row
            })
            .collect();
        let _ = fmt::Write::write_fmt(
            &mut out,
            format_args!(
                "Drops (sessions the orchestrator released before their end), summed over the lengths {}:\n\n",
                lengths
                    .iter()
                    .map(|&l| length_label(l))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
        out.push_str(&table(&drops_header, &rows));
        out.push_str(
            "\nThe project's criteria over this grid, with every cell that fails one (and what the SDK's \
             cheaper figure came with):\n\n```text\n",
        );
        for c in &self.criteria {
            let _ = fmt::Write::write_fmt(&mut out, format_args!("{c}\n"));
        }
        out.push_str("```\n");
        out
    }
}

/// The cell table: one row per cell, "livepay / SDK 1.0" in each pair of columns, then the
/// criteria and the cells that fail them.
impl fmt::Display for CellReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} cells · {} sessions per cell and policy · seed {} · pairs read livepay / sdk-1.0",
            self.cells.len(),
            self.sessions,
            self.seed
        )?;
        let header = [
            "length",
            "profile",
            "EV s",
            "drops",
            "over-payment",
            "minted/debited",
            "signer calls/session-h",
            "replays (refused)",
            "warned: at risk/lapsed (lead min s)",
        ];
        let rows: Vec<Vec<String>> = self
            .cells
            .iter()
            .map(|c| {
                let (ours, sdk) = (&c.livepay, &c.sdk);
                vec![
                    length_label(c.length_s),
                    c.profile.clone(),
                    c.ev_seconds.to_string(),
                    pair(ours.drops, sdk.drops),
                    pair(
                        format!("{:.3}", ours.overpayment),
                        format!("{:.3}", sdk.overpayment),
                    ),
                    pair(
                        format!("{:.3}", ours.minted_per_debited),
                        format!("{:.3}", sdk.minted_per_debited),
                    ),
                    pair(
                        format!("{:.0}", ours.signer_calls_per_session_hour),
                        format!("{:.0}", sdk.signer_calls_per_session_hour),
                    ),
                    format!("{} ({})", ours.replays, ours.replays_refused),
                    format!(
                        "{}/{} of {} ({})",
                        ours.at_risk_before_release,
                        ours.warned_before_release,
                        ours.drops,
                        opt(ours.lapse_lead_min_s.map(round3))
                    ),
                ]
            })
            .collect();
        f.write_str(&table(&header, &rows))?;
        writeln!(f)?;
        for c in &self.criteria {
            writeln!(f, "{c}")?;
        }
        Ok(())
    }
}
