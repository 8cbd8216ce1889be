//! The [`Funder`](super::Funder)'s one timer queue: a binary heap of `(deadline, slot, key)` for
//! every session, with lazy invalidation.
//!
//! Re-arming a session pushes a new entry and leaves the old one in the heap: an entry is live
//! only while its slot still holds the same session and is armed for exactly that deadline, and
//! stale entries are dropped when they reach the top (or when the heap is compacted). Arming is
//! O(log n), with no search for the entry it replaces.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use livepay_core::Instant;

use super::SessionKey;

/// Stale entries tolerated beyond the live ones before the heap is rebuilt.
const SLACK: usize = 1024;

/// Deadlines by slot index. See the [module docs](self).
#[derive(Debug, Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, u32, SessionKey)>>,
    /// The live deadline of each slot, and the session it is for.
    armed: Vec<Option<(SessionKey, Instant)>>,
    live: usize,
}

impl Timers {
    /// No timer armed.
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// Arms slot `index` (holding session `key`) for `at`, or disarms it (`None`). Arming it again
    /// for the same instant changes nothing.
    pub(super) fn set(&mut self, index: u32, key: SessionKey, at: Option<Instant>) {
        let i = index as usize;
        if self.armed.len() <= i {
            self.armed.resize(i + 1, None);
        }
        let wanted = at.map(|at| (key, at));
        if self.armed[i] == wanted {
            return;
        }
        match (self.armed[i].is_some(), wanted.is_some()) {
            (false, true) => self.live += 1,
            (true, false) => self.live -= 1,
            _ => {}
        }
        self.armed[i] = wanted;
        if let Some(at) = at {
            self.heap.push(Reverse((at, index, key)));
            if self.heap.len() > 2 * self.live + SLACK {
                self.compact();
            }
        }
    }

    /// Disarms slot `index` (its session left).
    pub(super) fn clear(&mut self, index: u32) {
        if let Some(armed) = self.armed.get_mut(index as usize)
            && armed.take().is_some()
        {
            self.live -= 1;
        }
    }

    /// The deadline armed for slot `index`.
    #[cfg(test)]
    pub(super) fn armed(&self, index: u32) -> Option<Instant> {
        self.armed
            .get(index as usize)
            .copied()
            .flatten()
            .map(|(_, at)| at)
    }

    fn is_live(&self, &(at, index, key): &(Instant, u32, SessionKey)) -> bool {
        self.armed.get(index as usize).copied().flatten() == Some((key, at))
    }

    /// The earliest live deadline, dropping stale entries on top of the heap.
    pub(super) fn next_deadline(&mut self) -> Option<Instant> {
        while let Some(Reverse(top)) = self.heap.peek() {
            if self.is_live(top) {
                return Some(top.0);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes every slot due by `now`, earliest first, and disarms each.
    pub(super) fn take_due(&mut self, now: Instant) -> Vec<u32> {
        let mut due = Vec::new();
        while let Some(at) = self.next_deadline() {
            if at > now {
                break;
            }
            if let Some(Reverse((_, index, _))) = self.heap.pop() {
                self.clear(index);
                due.push(index);
            }
        }
        due
    }

    /// Entries in the heap, stale ones included.
    #[cfg(test)]
    pub(super) fn entries(&self) -> usize {
        self.heap.len()
    }

    /// Drops every stale entry.
    fn compact(&mut self) {
        let heap = std::mem::take(&mut self.heap);
        self.heap = heap
            .into_iter()
            .filter(|Reverse(entry)| self.is_live(entry))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Option<Instant> {
        Some(Instant::from_millis(ms))
    }

    const A: SessionKey = SessionKey(1);
    const B: SessionKey = SessionKey(2);

    #[test]
    fn due_slots_come_out_earliest_first() {
        let mut timers = Timers::new();
        timers.set(0, A, at(30));
        timers.set(1, B, at(10));
        assert_eq!(timers.next_deadline(), at(10));
        assert_eq!(timers.take_due(Instant::from_millis(5)), Vec::<u32>::new());
        assert_eq!(timers.take_due(Instant::from_millis(30)), vec![1, 0]);
        assert_eq!(timers.next_deadline(), None);
        assert_eq!((timers.armed(0), timers.armed(1)), (None, None));
    }

    #[test]
    fn re_arming_invalidates_the_old_entry_lazily() {
        let mut timers = Timers::new();
        timers.set(0, A, at(10));
        timers.set(0, A, at(50));
        assert_eq!(timers.entries(), 2, "the old entry stays in the heap");
        assert_eq!(timers.next_deadline(), at(50), "but is never live");
        assert_eq!(timers.entries(), 1, "and is dropped once on top");
        assert_eq!(timers.take_due(Instant::from_millis(20)), Vec::<u32>::new());
        // Arming again for the same instant pushes nothing.
        timers.set(0, A, at(50));
        assert_eq!(timers.entries(), 1);
        // Earlier again: the later entry is stale and skipped when its time comes.
        timers.set(0, A, at(40));
        assert_eq!(timers.take_due(Instant::from_millis(45)), vec![0]);
        assert_eq!(timers.take_due(Instant::from_millis(100)), Vec::<u32>::new());
        assert_eq!(timers.entries(), 0);
    }

    #[test]
    fn a_reused_slot_ignores_the_previous_sessions_entries() {
        let mut timers = Timers::new();
        timers.set(3, A, at(10));
        timers.clear(3);
        assert_eq!(timers.next_deadline(), None);
        // Another session in the same slot, armed for the same instant as the old one was.
        timers.set(3, A, at(10));
        timers.clear(3);
        timers.set(3, B, at(10));
        assert_eq!(timers.take_due(Instant::from_millis(10)), vec![3]);
        assert_eq!(timers.take_due(Instant::from_millis(10)), Vec::<u32>::new());
    }

    #[test]
    fn disarming_and_compaction_keep_only_live_entries() {
        let mut timers = Timers::new();
        timers.set(0, A, at(5));
        timers.set(0, A, None);
        assert_eq!(timers.next_deadline(), None);
        // Many re-arms of one slot: the heap is rebuilt before it grows past the slack.
        for ms in 0..5_000 {
            timers.set(1, B, at(10_000 - ms));
        }
        assert!(timers.entries() <= 2 + SLACK, "{}", timers.entries());
        assert_eq!(timers.next_deadline(), at(5_001));
        assert_eq!(timers.take_due(Instant::from_millis(10_000)), vec![1]);
        assert_eq!(timers.next_deadline(), None);
    }
}
