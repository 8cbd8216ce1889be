//! The [`Funder`](super::Funder)'s concurrency lanes: one per signer URL and one per
//! orchestrator origin, each with a limit on requests in flight and a FIFO queue of the sessions
//! waiting for room.
//!
//! A lane only counts: the multiplexer asks it for room before it takes a request from an engine
//! (so that no request is built, nor its send time stamped, while it waits), and a session waits
//! in the queue until a request of that lane is answered. A session that no longer needs the
//! lane (it was stopped, or its next request goes elsewhere) leaves its entry behind: an entry
//! carries a ticket, and the multiplexer skips the entries whose ticket its session no longer
//! holds.

use std::collections::{HashMap, VecDeque};

use livepay_core::Peer;

use super::SessionKey;

/// Names a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct LaneId(usize);

/// A session waiting in a lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Waiter {
    /// Its slot.
    pub(super) index: u32,
    /// The session in that slot when it queued.
    pub(super) key: SessionKey,
    /// Unique per queueing: the entry is live while the session still holds it.
    pub(super) ticket: u64,
}

#[derive(Debug)]
struct Lane {
    peer: Peer,
    limit: usize,
    in_flight: usize,
    waiting: VecDeque<Waiter>,
}

/// Every lane. See the [module docs](self).
#[derive(Debug)]
pub(super) struct Lanes {
    lanes: Vec<Lane>,
    ids: HashMap<(Peer, String), LaneId>,
    signer_limit: usize,
    orchestrator_limit: usize,
    next_ticket: u64,
}

impl Lanes {
    /// No lane yet; signer lanes will allow `signer_limit` requests in flight, orchestrator lanes
    /// `orchestrator_limit` (zero counts as one).
    pub(super) fn new(signer_limit: usize, orchestrator_limit: usize) -> Self {
        Self {
            lanes: Vec::new(),
            ids: HashMap::new(),
            signer_limit: signer_limit.max(1),
            orchestrator_limit: orchestrator_limit.max(1),
            next_ticket: 1,
        }
    }

    /// The lane of `name` (a signer URL, an orchestrator origin) at `peer`, created on first use.
    pub(super) fn lane(&mut self, peer: Peer, name: &str) -> LaneId {
        if let Some(&id) = self.ids.get(&(peer, name.to_owned())) {
            return id;
        }
        let limit = match peer {
            Peer::Signer => self.signer_limit,
            Peer::Orchestrator => self.orchestrator_limit,
        };
        let id = LaneId(self.lanes.len());
        self.lanes.push(Lane {
            peer,
            limit,
            in_flight: 0,
            waiting: VecDeque::new(),
        });
        self.ids.insert((peer, name.to_owned()), id);
        id
    }

    /// The peer a lane's requests go to.
    pub(super) fn peer(&self, id: LaneId) -> Peer {
        self.lanes[id.0].peer
    }

    /// Whether one more request may go out on lane `id` now.
    pub(super) fn has_room(&self, id: LaneId) -> bool {
        let lane = &self.lanes[id.0];
        lane.in_flight < lane.limit
    }

    /// One more request in flight on lane `id`; returns how many are now. Call only with room.
    pub(super) fn acquire(&mut self, id: LaneId) -> usize {
        let lane = &mut self.lanes[id.0];
        debug_assert!(lane.in_flight < lane.limit, "a lane was overfilled");
        lane.in_flight += 1;
        lane.in_flight
    }

    /// A request of lane `id` was answered.
    pub(super) fn release(&mut self, id: LaneId) {
        let lane = &mut self.lanes[id.0];
        lane.in_flight = lane.in_flight.saturating_sub(1);
    }

    /// Queues the session in slot `index` (`key`) on lane `id`; returns its ticket.
    pub(super) fn enqueue(&mut self, id: LaneId, index: u32, key: SessionKey) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.lanes[id.0].waiting.push_back(Waiter { index, key, ticket });
        ticket
    }

    /// The oldest live waiter of lane `id`, taken, when the lane has room; entries `is_live`
    /// refuses are dropped on the way.
    pub(super) fn next_waiter(
        &mut self,
        id: LaneId,
        mut is_live: impl FnMut(&Waiter) -> bool,
    ) -> Option<Waiter> {
        if !self.has_room(id) {
            return None;
        }
        let waiting = &mut self.lanes[id.0].waiting;
        while let Some(waiter) = waiting.pop_front() {
            if is_live(&waiter) {
                return Some(waiter);
            }
        }
        None
    }

    /// Requests in flight on lane `id`.
    #[cfg(test)]
    pub(super) fn in_flight(&self, id: LaneId) -> usize {
        self.lanes[id.0].in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u64) -> SessionKey {
        SessionKey(n)
    }

    #[test]
    fn lanes_are_per_peer_and_name() {
        let mut lanes = Lanes::new(2, 3);
        let signer = lanes.lane(Peer::Signer, "http://signer");
        assert_eq!(lanes.lane(Peer::Signer, "http://signer"), signer);
        let other = lanes.lane(Peer::Signer, "http://other-signer");
        let orchestrator = lanes.lane(Peer::Orchestrator, "http://signer");
        assert_ne!(signer, other);
        assert_ne!(signer, orchestrator);
        assert_eq!(lanes.peer(signer), Peer::Signer);
        assert_eq!(lanes.peer(orchestrator), Peer::Orchestrator);
    }

    #[test]
    fn the_limit_holds_and_zero_counts_as_one() {
        let mut lanes = Lanes::new(2, 0);
        let signer = lanes.lane(Peer::Signer, "s");
        assert_eq!(lanes.acquire(signer), 1);
        assert_eq!(lanes.acquire(signer), 2);
        assert!(!lanes.has_room(signer));
        lanes.release(signer);
        assert!(lanes.has_room(signer));
        assert_eq!(lanes.in_flight(signer), 1);

        let orchestrator = lanes.lane(Peer::Orchestrator, "o");
        assert!(lanes.has_room(orchestrator));
        lanes.acquire(orchestrator);
        assert!(!lanes.has_room(orchestrator), "a zero limit is one");
    }

    #[test]
    fn waiters_leave_in_order_only_when_there_is_room() {
        let mut lanes = Lanes::new(1, 1);
        let lane = lanes.lane(Peer::Signer, "s");
        lanes.acquire(lane);
        let tickets: Vec<u64> = (0..3)
            .map(|i| lanes.enqueue(lane, i, key(u64::from(i))))
            .collect();
        assert!(tickets.windows(2).all(|w| w[0] < w[1]), "tickets are unique");
        assert_eq!(lanes.next_waiter(lane, |_| true), None, "the lane is full");
        lanes.release(lane);
        let first = lanes.next_waiter(lane, |_| true).map(|w| w.index);
        assert_eq!(first, Some(0));
        lanes.acquire(lane);
        lanes.release(lane);
        assert_eq!(lanes.next_waiter(lane, |_| true).map(|w| w.index), Some(1));
        assert_eq!(lanes.next_waiter(lane, |_| true).map(|w| w.index), Some(2));
        assert_eq!(lanes.next_waiter(lane, |_| true), None);
    }

    #[test]
    fn stale_waiters_are_skipped() {
        let mut lanes = Lanes::new(4, 4);
        let lane = lanes.lane(Peer::Orchestrator, "o");
        let stale = lanes.enqueue(lane, 7, key(1));
        lanes.enqueue(lane, 8, key(2));
        let mut seen = Vec::new();
        let next = lanes.next_waiter(lane, |w| {
            seen.push(w.ticket);
            w.ticket != stale
        });
        assert_eq!(next.map(|w| (w.index, w.key)), Some((8, key(2))));
        assert_eq!(seen.len(), 2, "the stale entry was looked at once and dropped");
        assert_eq!(lanes.next_waiter(lane, |_| true), None);
    }
}
