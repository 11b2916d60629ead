//! Broken floors for the property tests to catch ([`super::props`]'s teeth tests).
//!
//! Each [`Mutant`] wraps the real [`Floor`] and breaks one rule from outside, through the
//! floor's public inputs and the events it emits, so the shipped machine carries neither a
//! defect nor a hook for one. [`Machine`] is what the property checker drives: the real
//! [`Floor`] or a mutant.

use std::collections::BTreeMap;
use std::vec::Vec;

use super::*;

type Ev = FloorEvent<u8>;

/// The inputs and views of a floor, as the property checker uses them.
pub(super) trait Machine {
    fn request(&mut self, now: Instant, who: u8, priority: u8, out: &mut dyn FnMut(Ev));
    fn release(&mut self, now: Instant, who: u8, out: &mut dyn FnMut(Ev))
    -> Result<(), FloorError>;
    fn ping(&mut self, now: Instant, who: u8, out: &mut dyn FnMut(Ev));
    fn activity(&mut self, now: Instant, who: u8);
    fn leave(&mut self, now: Instant, who: u8, out: &mut dyn FnMut(Ev));
    fn revoke(&mut self, now: Instant, cause: RevokeCause, out: &mut dyn FnMut(Ev));
    fn handle_timeout(&mut self, now: Instant, out: &mut dyn FnMut(Ev));
    fn poll_timeout(&self) -> Option<Instant>;
    fn holder(&self) -> Option<(u8, u8)>;
    fn queue(&self) -> Vec<(u8, u8)>;
    fn is_idle(&self) -> bool;
}

impl<const N: usize> Machine for Floor<u8, N> {
    fn request(&mut self, now: Instant, who: u8, priority: u8, out: &mut dyn FnMut(Ev)) {
        Floor::request(self, now, who, priority, &mut |e| out(e));
    }
    fn release(
        &mut self,
        now: Instant,
        who: u8,
        out: &mut dyn FnMut(Ev),
    ) -> Result<(), FloorError> {
        Floor::release(self, now, who, &mut |e| out(e))
    }
    fn ping(&mut self, now: Instant, who: u8, out: &mut dyn FnMut(Ev)) {
        Floor::ping(self, now, who, &mut |e| out(e));
    }
    fn activity(&mut self, now: Instant, who: u8) {
        Floor::activity(self, now, who);
    }
    fn leave(&mut self, now: Instant, who: u8, out: &mut dyn FnMut(Ev)) {
        Floor::leave(self, now, who, &mut |e| out(e));
    }
    fn revoke(&mut self, now: Instant, cause: RevokeCause, out: &mut dyn FnMut(Ev)) {
        Floor::revoke(self, now, cause, &mut |e| out(e));
    }
    fn handle_timeout(&mut self, now: Instant, out: &mut dyn FnMut(Ev)) {
        Floor::handle_timeout(self, now, &mut |e| out(e));
    }
    fn poll_timeout(&self) -> Option<Instant> {
        Floor::poll_timeout(self)
    }
    fn holder(&self) -> Option<(u8, u8)> {
        Floor::holder(self)
    }
    fn queue(&self) -> Vec<(u8, u8)> {
        Floor::queue(self).collect()
    }
    fn is_idle(&self) -> bool {
        Floor::is_idle(self)
    }
}

/// The defects, one rule broken each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// The real machine, unwrapped.
    None,
    /// Queue by arrival alone, ignoring priority.
    FifoQueue,
    /// A queued member that leaves stays queued.
    KeepOnLeave,
    /// The ping timer never fires: only the max timer revokes.
    IgnoreSilence,
    /// Queueing a request tells only the requester, not those it pushed back.
    QuietInsert,
}

/// A real [`Floor`] with one rule broken from outside (never [`Fault::None`]).
pub(super) struct Mutant<const N: usize> {
    fl: Floor<u8, N>,
    fault: Fault,
    max: Duration,
    /// `FifoQueue`: the priority each holder or queued member asked for. The inner floor
    /// holds every waiting request at 0, so its queue is in arrival order alone.
    asked: BTreeMap<u8, u8>,
    /// `IgnoreSilence`: when the current holder was granted, read from the events.
    granted_at: Option<Instant>,
}

impl<const N: usize> Mutant<N> {
    pub(super) fn new(timers: FloorTimers, fault: Fault) -> Self {
        assert_ne!(fault, Fault::None, "the real machine is driven unwrapped");
        Mutant {
            fl: Floor::new(timers),
            fault,
            max: timers.max,
            asked: BTreeMap::new(),
            granted_at: None,
        }
    }

    fn queued(&self, who: u8) -> bool {
        self.fl.queue().any(|(u, _)| u == who)
    }

    /// The priority to report for `who`: what it asked for under `FifoQueue`.
    fn priority(&self, who: u8, inner: u8) -> u8 {
        match self.fault {
            Fault::FifoQueue => self.asked.get(&who).copied().unwrap_or(inner),
            _ => inner,
        }
    }

    /// Passes the inner floor's events on, restoring the asked priority in `Taken` and
    /// noting grants for `IgnoreSilence`.
    fn forward(&mut self, now: Instant, events: Vec<Ev>, out: &mut dyn FnMut(Ev)) {
        for e in events {
            let e = match e {
                FloorEvent::Taken { holder, priority } => FloorEvent::Taken {
                    holder,
                    priority: self.priority(holder, priority),
                },
                e => e,
            };
            match e {
                FloorEvent::Granted { .. } => self.granted_at = Some(now),
                FloorEvent::Idle => self.granted_at = None,
                _ => {}
            }
            out(e);
        }
    }
}

fn collect(f: impl FnOnce(&mut dyn FnMut(Ev))) -> Vec<Ev> {
    let mut v = Vec::new();
    f(&mut |e| v.push(e));
    v
}

impl<const N: usize> Machine for Mutant<N> {
    fn request(&mut self, now: Instant, who: u8, priority: u8, out: &mut dyn FnMut(Ev)) {
        let holder_before = self.fl.holder().map(|h| h.0);
        let queued_before = self.queued(who);
        // FifoQueue: a request that does not preempt waits at 0, behind every earlier one.
        let inner_priority = match holder_before {
            Some(h) if self.fault == Fault::FifoQueue && h != who => {
                let holds_at = self.asked.get(&h).copied().unwrap_or(0);
                if priority > holds_at { priority } else { 0 }
            }
            _ => priority,
        };
        let fl = &mut self.fl;
        let mut events = collect(|o| fl.request(now, who, inner_priority, &mut |e| o(e)));
        let holds = self.fl.holder().map(|h| h.0) == Some(who);
        let queued = self.queued(who);
        if (holds && holder_before != Some(who)) || (queued && !queued_before) {
            self.asked.insert(who, priority);
        }
        // QuietInsert: a new entry in the queue is told to its requester alone.
        if self.fault == Fault::QuietInsert && queued && !queued_before {
            events.retain(|e| e.audience() == Audience::One(who));
        }
        self.forward(now, events, out);
    }

    fn release(
        &mut self,
        now: Instant,
        who: u8,
        out: &mut dyn FnMut(Ev),
    ) -> Result<(), FloorError> {
        let mut r = Ok(());
        let fl = &mut self.fl;
        let events = collect(|o| r = fl.release(now, who, &mut |e| o(e)));
        self.forward(now, events, out);
        r
    }

    fn ping(&mut self, now: Instant, who: u8, out: &mut dyn FnMut(Ev)) {
        let fl = &mut self.fl;
        let events = collect(|o| fl.ping(now, who, &mut |e| o(e)));
        self.forward(now, events, out);
    }

    fn activity(&mut self, now: Instant, who: u8) {
        self.fl.activity(now, who);
    }

    fn leave(&mut self, now: Instant, who: u8, out: &mut dyn FnMut(Ev)) {
        let holds = self.fl.holder().map(|h| h.0) == Some(who);
        // KeepOnLeave: a queued member's request outlives its membership.
        if self.fault == Fault::KeepOnLeave && !holds && self.queued(who) {
            return;
        }
        let fl = &mut self.fl;
        let events = collect(|o| fl.leave(now, who, &mut |e| o(e)));
        self.forward(now, events, out);
    }

    fn revoke(&mut self, now: Instant, cause: RevokeCause, out: &mut dyn FnMut(Ev)) {
        let fl = &mut self.fl;
        let events = collect(|o| fl.revoke(now, cause, &mut |e| o(e)));
        self.forward(now, events, out);
    }

    fn handle_timeout(&mut self, now: Instant, out: &mut dyn FnMut(Ev)) {
        if self.fault != Fault::IgnoreSilence {
            let fl = &mut self.fl;
            let events = collect(|o| fl.handle_timeout(now, &mut |e| o(e)));
            self.forward(now, events, out);
            return;
        }
        // IgnoreSilence: only a due max timer fires, and it names the cause (the inner floor,
        // whose ping deadline passed earlier, would say `timeout`).
        let max_due = self.granted_at.is_some_and(|g| g + self.max <= now);
        if !max_due {
            return;
        }
        let fl = &mut self.fl;
        let mut events = collect(|o| fl.handle_timeout(now, &mut |e| o(e)));
        if let Some(FloorEvent::Revoke { cause, .. }) = events.first_mut() {
            *cause = RevokeCause::MaxDuration;
        }
        self.forward(now, events, out);
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.fl.poll_timeout()
    }

    fn holder(&self) -> Option<(u8, u8)> {
        self.fl.holder().map(|(u, p)| (u, self.priority(u, p)))
    }

    fn queue(&self) -> Vec<(u8, u8)> {
        self.fl
            .queue()
            .map(|(u, p)| (u, self.priority(u, p)))
            .collect()
    }

    fn is_idle(&self) -> bool {
        self.fl.is_idle()
    }
}
