//! [`Commands`]: application commands delivered on virtual time.

use core::pin::Pin;
use core::task::{Context, Poll};
use std::collections::VecDeque;
use std::vec::Vec;

use futures::Stream;
use livepay_core::{Command, Instant, VirtualClock};

/// A schedule of [`Command`]s, each delivered once virtual time reaches its instant. Commands
/// due at the same instant keep the order they were added in.
#[derive(Debug, Clone, Default)]
pub struct Commands {
    schedule: Vec<(Instant, Command)>,
}

impl Commands {
    /// No commands.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `command` at `at`.
    #[must_use]
    pub fn at(mut self, at: Instant, command: Command) -> Self {
        let pos = self.schedule.partition_point(|&(t, _)| t <= at);
        self.schedule.insert(pos, (at, command));
        self
    }

    /// The schedule, in delivery order.
    pub fn schedule(&self) -> &[(Instant, Command)] {
        &self.schedule
    }

    /// The schedule as a [`Stream`] on `clock`.
    pub fn stream(self, clock: &VirtualClock) -> CommandStream<'_> {
        CommandStream {
            clock,
            pending: self.schedule.into(),
            delivered: Vec::new(),
        }
    }
}

/// A [`Commands`] schedule as a [`Stream`]: yields each command once the clock reaches its
/// instant, and registers the next instant with
/// [`VirtualClock::wake_no_later_than`] so that time stops there. After the last command it stays
/// pending forever, like an application's command channel that is never closed.
#[derive(Debug)]
pub struct CommandStream<'c> {
    clock: &'c VirtualClock,
    pending: VecDeque<(Instant, Command)>,
    delivered: Vec<(Instant, Command)>,
}

impl CommandStream<'_> {
    /// The commands delivered so far, with the virtual instant of delivery.
    pub fn delivered(&self) -> &[(Instant, Command)] {
        &self.delivered
    }

    /// The commands not delivered yet.
    pub fn pending(&self) -> impl Iterator<Item = &(Instant, Command)> {
        self.pending.iter()
    }
}

impl Stream for CommandStream<'_> {
    type Item = Command;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Command>> {
        let this = self.get_mut();
        let now = this.clock.now();
        match this.pending.front() {
            Some(&(at, command)) if at <= now => {
                this.pending.pop_front();
                this.delivered.push((now, command));
                Poll::Ready(Some(command))
            }
            Some(&(at, _)) => {
                this.clock.wake_no_later_than(at);
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            None => Poll::Pending,
        }
    }
}
