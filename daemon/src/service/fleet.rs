//! The daemon in a fleet: leases renewed in batches, sessions claimed from daemons that went
//! away, sessions lost to another daemon stopped at once, stops asked on any daemon carried
//! out by the owner, and the app's lease. `docs/fleet.md` states the invariants.
//!
//! Every [`FleetConfig::tick`], one round: renew every lease held (one store operation), then
//! act on what the renewal says (lost sessions, stop requests, app leases), then claim at most
//! this daemon's fair share of the sessions whose lease has expired. A single-process store
//! (SQLite, whose lock proves the previous owner gone) is claimed whole at start.

use std::sync::PoisonError;
use std::time::Duration as StdDuration;

use livepay_core::engine::Snapshot;
use livepay_core::{ReleaseReason, State};
use tokio::sync::mpsc;

use super::{Service, ServiceError, SessionView, Summary, ended_line, spend_of, unix_ms};
use crate::spec::SessionSpec;
use crate::store::LeaseTerms;

/// The release reason of a session whose app's lease lapsed.
pub const APP_GONE: &str = "stopped: the app went away (its lease lapsed)";

/// The reason a `DELETE` on a daemon that does not fund the session asks for.
const CLOSED_BY_API: &str = "closed by client";

/// How often a `DELETE` of a session funded elsewhere looks at the store for its close.
const CLOSE_POLL: StdDuration = StdDuration::from_millis(100);

/// The longest lease plus claim interval accepted: a takeover must fit well inside the
/// smallest runway (the orchestrator's 10 s prepay), with room for the new owner's signer call
/// and payment.
pub const MAX_TAKEOVER: StdDuration = StdDuration::from_secs(6);

/// Leases and claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetConfig {
    /// How long a lease holds after its renewal. Default 3 s.
    pub lease: StdDuration,
    /// How often leases are renewed and expired ones claimed. Default 1 s.
    pub tick: StdDuration,
    /// The store admits one process (SQLite's lock): claim every open session at start.
    pub single_process: bool,
}

impl Default for FleetConfig {
    fn default() -> FleetConfig {
        FleetConfig {
            lease: StdDuration::from_secs(3),
            tick: StdDuration::from_secs(1),
            single_process: true,
        }
    }
}

impl FleetConfig {
    /// Refuses settings under which a session could not be taken over in time, or a lease
    /// could lapse between two renewals.
    ///
    /// # Errors
    ///
    /// Why, in words.
    pub fn check(&self) -> Result<(), String> {
        if self.tick < StdDuration::from_millis(100) {
            return Err("the claim interval must be at least 100 ms".into());
        }
        if self.lease < self.tick.saturating_mul(2) {
            return Err(format!(
                "the lease ({:?}) must be at least twice the claim interval ({:?}): it is renewed once per interval",
                self.lease, self.tick
            ));
        }
        if self.lease.saturating_add(self.tick) > MAX_TAKEOVER {
            return Err(format!(
                "the lease plus the claim interval ({:?}) must be at most {MAX_TAKEOVER:?}, so that another daemon takes a session over well inside the orchestrator's 10 s prepay",
                self.lease.saturating_add(self.tick)
            ));
        }
        Ok(())
    }

    /// The lease in milliseconds.
    pub fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }

    /// The margin kept between the end of a lease as this daemon computes it and its end in
    /// the store: half a tick, at least 200 ms (a POST decided just before it goes out).
    fn margin(&self) -> StdDuration {
        (self.tick / 2).max(StdDuration::from_millis(200))
    }
}

/// An app's lease on one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AppLease {
    /// Its length, ms.
    pub(crate) every_ms: u64,
    /// When it lapses, unix ms.
    pub(crate) until_ms: u64,
    /// What the store holds (so that a claimer after this daemon sees an open stream's renewals).
    pub(crate) stored_until_ms: u64,
}

impl AppLease {
    /// The lease a new session of `spec` starts with, at `now_ms`.
    pub(crate) fn of(spec: &SessionSpec, now_ms: u64) -> Option<AppLease> {
        let seconds = spec.app_lease_s?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let every_ms = (seconds * 1e3) as u64;
        let until_ms = now_ms.saturating_add(every_ms);
        Some(AppLease {
            every_ms,
            until_ms,
            stored_until_ms: until_ms,
        })
    }
}

impl Service {
    /// Starts the fleet's loop (and the pump of fenced writes); the first round runs now, and
    /// its claims are counted in the return value.
    pub async fn start_fleet(&self, fenced: mpsc::UnboundedReceiver<String>) -> usize {
        let claimed = self.fleet_round(true).await;
        let health = std::sync::Arc::clone(&self.shared.health);
        drop(health.watch("fenced pump", tokio::spawn(self.clone().pump_fenced(fenced))));
        let service = self.clone();
        let tick = self.shared.config.fleet.tick;
        drop(health.watch(
            "fleet",
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(tick);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                interval.tick().await;
                loop {
                    interval.tick().await;
                    service.fleet_round(false).await;
                }
            }),
        ));
        claimed
    }

    /// Sessions whose writes were fenced: another daemon owns them.
    async fn pump_fenced(self, mut fenced: mpsc::UnboundedReceiver<String>) {
        while let Some(id) = fenced.recv().await {
            self.lose(&id);
        }
    }

    /// One round: renew, act on the renewal, claim. The number of sessions claimed.
    pub(super) async fn fleet_round(&self, first: bool) -> usize {
        let fleet = self.shared.config.fleet;
        let held: Vec<(String, u64)> = self
            .shared
            .registry()
            .by_id
            .iter()
            .filter(|(_, e)| e.key.is_some())
            .map(|(id, e)| (id.clone(), e.epoch))
            .collect();
        let mine = held.len();
        let owner = self.shared.owner.clone();
        let lease_ms = fleet.lease_ms();
        let sent = tokio::time::Instant::now();
        let now_ms = unix_ms();
        let renewal = self
            .shared
            .writer
            .with_store(move |store| {
                store.renew(
                    LeaseTerms {
                        owner: &owner,
                        now_ms,
                        lease_ms,
                    },
                    &held,
                )
            })
            .await;
        let renewal = match renewal {
            Ok(renewal) => renewal,
            Err(error) => {
                // The leases are not extended: past their end here, no new state is posted, and
                // once they have certainly ended another daemon may have claimed every session:
                // funding stops here (the sessions are not stopped; their new owner funds them).
                tracing::warn!(%error, "livepay daemon: lease renewal failed");
                self.shared.metrics.observe_renewal_failure();
                if !self.shared.lease_holds() {
                    let ids: Vec<String> = self
                        .shared
                        .registry()
                        .by_id
                        .iter()
                        .filter(|(_, e)| e.key.is_some())
                        .map(|(id, _)| id.clone())
                        .collect();
                    if !ids.is_empty() {
                        tracing::warn!(
                            sessions = ids.len(),
                            "livepay daemon: leases lapsed without the store; funding stops here"
                        );
                    }
                    for id in &ids {
                        self.lose(id);
                    }
                }
                return 0;
            }
        };
        *self
            .shared
            .lease_valid_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            sent.checked_add(fleet.lease.saturating_sub(fleet.margin()));
        for id in &renewal.lost {
            self.lose(id);
        }
        for (id, _) in &renewal.close_requested {
            self.close_here(id, None);
        }
        self.tend_app_leases(&renewal.app_leases, now_ms).await;
        let all = first && fleet.single_process;
        let max = if all {
            usize::MAX
        } else {
            renewal
                .open_sessions
                .div_ceil(renewal.daemons_alive.max(1))
                .saturating_sub(mine.saturating_sub(renewal.lost.len()))
        };
        if max == 0 {
            return 0;
        }
        let owner = self.shared.owner.clone();
        let claimed = self
            .shared
            .writer
            .with_store(move |store| {
                store.claim(
                    LeaseTerms {
                        owner: &owner,
                        now_ms,
                        lease_ms,
                    },
                    max,
                    all,
                )
            })
            .await;
        match claimed {
            Ok(records) if records.is_empty() => 0,
            Ok(records) => {
                let n = records.len();
                tracing::info!(sessions = n, "livepay daemon: sessions claimed");
                self.shared.metrics.observe_claimed(n);
                self.resume_claimed(records)
            }
            Err(error) => {
                tracing::warn!(%error, "livepay daemon: claim failed");
                0
            }
        }
    }

    /// Stops funding `id` here without stopping the session: another daemon owns it now.
    pub(super) fn lose(&self, id: &str) {
        let mut registry = self.shared.registry();
        let Some(entry) = registry.by_id.remove(id) else {
            return;
        };
        let Some(key) = entry.key else {
            // Ended here already: keep what is known of it.
            registry.by_id.insert(id.to_owned(), entry);
            return;
        };
        registry.by_key.remove(&key);
        drop(registry);
        tracing::warn!(%id, "livepay daemon: session taken over by another daemon; funding stopped here");
        self.shared.metrics.observe_taken_over();
        if let Some(events) = &entry.events {
            let _ = events.send(ended_line("taken over by another daemon"));
        }
        // A `DELETE` waiting here is answered by the store's close (its waiter is dropped: the
        // caller retries, and the new owner or the store answers).
        if let Ok(stopped) = self.handle.stop(key) {
            // The engine is dropped, never stopped: the session is the new owner's.
            drop(tokio::spawn(async move { drop(stopped.await) }));
        }
    }

    /// Stops session `id` funded here, recording `reason` instead of the engine's if given.
    fn close_here(&self, id: &str, reason: Option<&str>) {
        let mut registry = self.shared.registry();
        let Some(entry) = registry.by_id.get_mut(id) else {
            return;
        };
        let Some(key) = entry
            .key
            .filter(|_| entry.release.is_none() && !entry.handing_off)
        else {
            return;
        };
        if entry.close_reason.is_none() {
            entry.close_reason = reason.map(str::to_owned);
        }
        drop(registry);
        if self.handle.close(key).is_err() {
            tracing::warn!(%id, "livepay daemon: the funder is gone; the session could not be stopped");
        }
    }

    /// After a claim: the app's lease and any stop asked while nobody held the session.
    pub(super) fn adopt_stored_leases(
        &self,
        id: &str,
        app_until_ms: Option<u64>,
        close_requested: Option<&str>,
    ) {
        if let Some(until) = app_until_ms {
            let mut registry = self.shared.registry();
            if let Some(lease) = registry.by_id.get_mut(id).and_then(|e| e.app_lease.as_mut()) {
                lease.until_ms = until;
                lease.stored_until_ms = until;
            }
        }
        if close_requested.is_some() {
            self.close_here(id, None);
        }
    }

    /// App leases: renewed by open events streams (and stored, for a claimer), raised by
    /// renewals made on other daemons, and the lapsed ones stopped.
    async fn tend_app_leases(&self, stored: &[(String, u64)], now_ms: u64) {
        let mut lapsed = Vec::new();
        let mut to_store = Vec::new();
        {
            let mut registry = self.shared.registry();
            for (id, until) in stored {
                if let Some(lease) = registry.by_id.get_mut(id).and_then(|e| e.app_lease.as_mut()) {
                    lease.until_ms = lease.until_ms.max(*until);
                    lease.stored_until_ms = *until;
                }
            }
            for (id, entry) in &mut registry.by_id {
                if entry.key.is_none() {
                    continue;
                }
                let streaming = entry.events.as_ref().is_some_and(|e| e.receiver_count() > 0);
                let Some(lease) = entry.app_lease.as_mut() else {
                    continue;
                };
                if streaming {
                    lease.until_ms = lease.until_ms.max(now_ms.saturating_add(lease.every_ms));
                    if lease.until_ms.saturating_sub(lease.stored_until_ms) > lease.every_ms / 2 {
                        lease.stored_until_ms = lease.until_ms;
                        to_store.push((id.clone(), lease.until_ms));
                    }
                }
                if lease.until_ms < now_ms && entry.close_reason.is_none() {
                    lapsed.push(id.clone());
                }
            }
        }
        for id in lapsed {
            tracing::info!(%id, "livepay daemon: the app's lease lapsed; stopping the session");
            self.shared.metrics.observe_app_gone();
            self.close_here(&id, Some(APP_GONE));
        }
        if !to_store.is_empty() {
            let stored = self
                .shared
                .writer
                .with_store(move |store| {
                    for (id, until) in &to_store {
                        store.renew_app(id, *until)?;
                    }
                    Ok(())
                })
                .await;
            if let Err(error) = stored {
                tracing::warn!(%error, "livepay daemon: app leases could not be stored");
            }
        }
    }

    /// `POST /v1/sessions/{id}/renew`: the app is alive; the lease's new end (unix ms).
    ///
    /// # Errors
    ///
    /// [`ServiceError::NotFound`] (unknown or ended), [`ServiceError::BadBody`] (the session
    /// has no app lease), [`ServiceError::Store`].
    pub async fn renew_app(&self, id: &str) -> Result<u64, ServiceError> {
        let now_ms = unix_ms();
        let local = {
            let mut registry = self.shared.registry();
            match registry.by_id.get_mut(id) {
                Some(entry) if entry.key.is_some() => Some(entry.app_lease.as_mut().map(|lease| {
                    lease.until_ms = now_ms.saturating_add(lease.every_ms);
                    lease.stored_until_ms = lease.until_ms;
                    lease.until_ms
                })),
                Some(_) => return Err(ServiceError::NotFound),
                None => None,
            }
        };
        let until = match local {
            Some(Some(until)) => until,
            Some(None) => return Err(no_app_lease()),
            None => {
                // Funded elsewhere: its spec says how long the lease is.
                let record = self.stored(id).await?.ok_or(ServiceError::NotFound)?;
                if record.closed.is_some() {
                    return Err(ServiceError::NotFound);
                }
                let spec: SessionSpec =
                    serde_json::from_str(&record.spec).map_err(|e| ServiceError::Store(e.to_string()))?;
                AppLease::of(&spec, now_ms).ok_or_else(no_app_lease)?.until_ms
            }
        };
        let key = id.to_owned();
        let renewed = self
            .shared
            .writer
            .with_store(move |store| store.renew_app(&key, until))
            .await
            .map_err(|e| ServiceError::Store(e.to_string()))?;
        if renewed {
            Ok(until)
        } else {
            Err(ServiceError::NotFound)
        }
    }

    async fn stored(&self, id: &str) -> Result<Option<crate::store::SessionRecord>, ServiceError> {
        let key = id.to_owned();
        self.shared
            .writer
            .with_store(move |store| store.get(&key))
            .await
            .map_err(|e| ServiceError::Store(e.to_string()))
    }

    /// The view of a session this daemon does not fund, from its record.
    pub(super) async fn stored_view(&self, id: &str) -> Option<SessionView> {
        let record = self.stored(id).await.ok()??;
        let spec: SessionSpec = serde_json::from_str(&record.spec).ok()?;
        let snapshot: Snapshot = serde_json::from_str(&record.snapshot).ok()?;
        let spend = spend_of(
            &snapshot,
            &self.shared.config.session_config,
            &spec,
            self.shared.config.eth_usd,
        );
        let last = Summary {
            runway_ms: snapshot.funding.runway_ms,
            taken_ms: record.updated_ms,
            stats: snapshot.funding.stats.into(),
            spend,
        };
        let state = if record.closed.is_some() {
            State::Released {
                reason: ReleaseReason::ClosedByClient,
            }
        } else {
            State::Funding
        };
        Some(super::render_view(id, &spec, state, record.closed, Some(last)))
    }

    /// `DELETE` of a session this daemon does not fund: the stop is asked through the store,
    /// carried out by its owner (or by whoever claims it next, if the owner is gone), and
    /// answered once the store records the close.
    pub(super) async fn close_elsewhere(&self, id: &str) -> Result<String, ServiceError> {
        let key = id.to_owned();
        let asked = self
            .shared
            .writer
            .with_store(move |store| store.request_close(&key, CLOSED_BY_API))
            .await
            .map_err(|e| ServiceError::Store(e.to_string()))?;
        let record = asked.ok_or(ServiceError::NotFound)?;
        if let Some(reason) = record.closed {
            return Ok(reason);
        }
        let deadline = tokio::time::Instant::now() + self.shared.config.close_timeout;
        loop {
            tokio::time::sleep(CLOSE_POLL).await;
            if let Some(reason) = self.stored(id).await?.and_then(|r| r.closed) {
                return Ok(reason);
            }
            // Claimed here meanwhile (its owner died): the local close answers.
            let claimed_here = self.shared.registry().by_id.contains_key(id);
            if claimed_here {
                return self.close_local(id).await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServiceError::CloseTimeout);
            }
        }
    }

    /// Gives up this daemon's leases (a graceful stop, after funding stopped and the writes
    /// are flushed): another daemon may claim its sessions at once.
    pub async fn release_leases(&self) {
        let owner = self.shared.owner.clone();
        if let Err(error) = self
            .shared
            .writer
            .with_store(move |store| store.release(&owner))
            .await
        {
            tracing::warn!(%error, "livepay daemon: leases could not be released; they expire instead");
        }
    }
}

fn no_app_lease() -> ServiceError {
    ServiceError::BadBody(crate::spec::BadBody::field(
        "app_lease_s",
        "the session was created without an app lease",
    ))
}
