//! Floor control (3GPP TS 24.380 section 6.3), one machine per channel.
//!
//! [`Floor`] is the arbitration logic of TS 24.380 section 6.3.4 ("general floor control
//! operation") cut down to the two states our protocol has: 'G: Floor Idle' (6.3.4.3, no
//! holder) and 'G: Floor Taken' (6.3.4.4, a holder and a priority queue). The per-participant
//! machines of section 6.3.5 live in the gateway, which turns each [`FloorEvent`] into frames
//! for the members it addresses ([`FloorEvent::audience`]).
//!
//! What the gateway does before calling in: it answers a floor op from a non-member (2004) or
//! for an unknown channel (2000) itself, and passes the *effective* priority (the requested
//! one capped by the token). The machine trusts both.
//!
//! Driving it (sans-IO, as every machine in this crate): each input takes `now` and a sink
//! `out` that receives the events in the order they are to be sent. After any input, re-arm
//! the channel's timer for [`Floor::poll_timeout`]; when it passes, call
//! [`Floor::handle_timeout`]. Inputs never fire timers themselves: the driver does, late or
//! early, and extra calls are harmless.
//!
//! Event order within one call, the order PROTOCOL.md's rules imply: `Revoke` to the old
//! holder, then `Granted` and `Taken` for the new one (or `Idle`), then `QueuePos` in queue
//! order; `Deny` and `Pong` stand alone. Every change of holder emits exactly one `Granted`
//! followed by one `Taken`, or exactly one `Idle` when the floor empties.

use core::fmt;

use heapless::Vec;

use crate::config::{DEFAULT_FLOOR_MAX, DEFAULT_FLOOR_PING, MAX_FLOOR_QUEUE};
use crate::time::{Duration, Instant};

/// The floor of one channel: its holder, its queue of waiting requests and the holder's
/// timers.
///
/// `U` is the gateway's session handle. `N` is the queue capacity, [`MAX_FLOOR_QUEUE`] unless
/// a test pins a smaller one to reach `queue_full`.
#[derive(Debug, Clone)]
pub struct Floor<U, const N: usize = MAX_FLOOR_QUEUE> {
    timers: FloorTimers,
    holder: Option<Holder<U>>,
    /// Ordered by priority (higher first), then arrival: the head is granted next.
    queue: Vec<Queued<U>, N>,
}

/// The two holder timers (TS 24.380 section 6.3.4.4 runs them in 'G: Floor Taken').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloorTimers {
    /// Longest hold from the grant: T2 'Stop talking' (`LIVECHAT_FLOOR_MAX_MS`).
    pub max: Duration,
    /// Longest holder silence, our T1 'End of RTP media' (`LIVECHAT_FLOOR_PING_MS`); FLOOR_PING
    /// and authenticated RTP restart it, since a PTT client may keep the floor without talking.
    pub ping: Duration,
}

/// What the machine asks the gateway to send, in protocol op order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorEvent<U> {
    /// FLOOR_GRANTED (50) to `to`, who now holds the floor.
    Granted {
        /// The new holder.
        to: U,
        /// `max_duration_ms` on the wire: how long it may hold the floor.
        max_duration: Duration,
    },
    /// FLOOR_DENY (51) to `to`; its request is not queued.
    Deny {
        /// The requester.
        to: U,
        /// Why.
        reason: DenyReason,
    },
    /// FLOOR_REVOKE (52) to `to`, the holder that just lost the floor.
    Revoke {
        /// The old holder.
        to: U,
        /// Why.
        cause: RevokeCause,
    },
    /// FLOOR_TAKEN (53) to every member except `holder`; always right after its `Granted`.
    Taken {
        /// The new holder.
        holder: U,
        /// Its effective priority.
        priority: u8,
    },
    /// FLOOR_IDLE (54) to every member: nobody holds the floor and nobody waits.
    Idle,
    /// FLOOR_QUEUE_POS_INFO (55) to `to`, a queued requester.
    QueuePos {
        /// The queued requester.
        to: U,
        /// Its place in the queue, 1 for the head.
        position: u16,
        /// How many wait, `queue_size` on the wire.
        size: u16,
    },
    /// FLOOR_PONG (56) to `to`.
    Pong {
        /// Who pinged.
        to: U,
    },
}

/// Who a [`FloorEvent`] goes to, among the channel's members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience<U> {
    /// This member alone.
    One(U),
    /// Every member except this one.
    AllBut(U),
    /// Every member.
    All,
}

/// Why a holder lost the floor: FLOOR_REVOKE's `cause`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeCause {
    /// A strictly higher priority request took the floor.
    Preempted,
    /// The holder was silent (no FLOOR_PING, no authenticated RTP) for the ping timer.
    Timeout,
    /// The holder held the floor for the max timer.
    MaxDuration,
    /// An operator tool revoked it.
    Admin,
}

/// Why a request was refused: FLOOR_DENY's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// The queue holds its capacity of waiting requests already.
    QueueFull,
    /// The requester holds the floor already; nothing changes.
    AlreadyGranted,
}

/// A floor op the caller may not make; the gateway answers it with an ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorError {
    /// FLOOR_RELEASE from a member that neither holds the floor nor waits for it (wire 2002).
    NotPermitted,
}

#[derive(Debug, Clone, Copy)]
struct Holder<U> {
    who: U,
    priority: u8,
    /// Indexed by [`Timer`] (quinn-proto's timer table).
    deadline: [Instant; Timer::COUNT],
}

#[derive(Debug, Clone, Copy)]
struct Queued<U> {
    who: U,
    priority: u8,
}

/// The holder timers, in TS 24.380 numbering order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// Silence, like T1 'End of RTP media'.
    Ping = 0,
    /// Hold time, T2 'Stop talking'.
    Max = 1,
}

impl Default for FloorTimers {
    fn default() -> Self {
        FloorTimers::DEFAULT
    }
}

impl FloorTimers {
    /// `LIVECHAT_FLOOR_MAX_MS` and `LIVECHAT_FLOOR_PING_MS` at their defaults.
    pub const DEFAULT: FloorTimers = FloorTimers {
        max: DEFAULT_FLOOR_MAX,
        ping: DEFAULT_FLOOR_PING,
    };
}

impl<U: Copy> FloorEvent<U> {
    /// Who must receive the event (PROTOCOL.md "Floor semantics": FLOOR_TAKEN goes to every
    /// member except the new holder, FLOOR_IDLE to every member, the rest to one member).
    pub fn audience(&self) -> Audience<U> {
        match *self {
            FloorEvent::Granted { to, .. }
            | FloorEvent::Deny { to, .. }
            | FloorEvent::Revoke { to, .. }
            | FloorEvent::QueuePos { to, .. }
            | FloorEvent::Pong { to } => Audience::One(to),
            FloorEvent::Taken { holder, .. } => Audience::AllBut(holder),
            FloorEvent::Idle => Audience::All,
        }
    }
}

impl RevokeCause {
    /// The wire string of FLOOR_REVOKE's `cause`.
    pub const fn as_str(self) -> &'static str {
        match self {
            RevokeCause::Preempted => "preempted",
            RevokeCause::Timeout => "timeout",
            RevokeCause::MaxDuration => "max_duration",
            RevokeCause::Admin => "admin",
        }
    }
}

impl DenyReason {
    /// The wire string of FLOOR_DENY's `reason`.
    pub const fn as_str(self) -> &'static str {
        match self {
            DenyReason::QueueFull => "queue_full",
            DenyReason::AlreadyGranted => "already_granted",
        }
    }
}

impl fmt::Display for FloorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FloorError::NotPermitted => f.write_str("not permitted"),
        }
    }
}

impl core::error::Error for FloorError {}

impl<U: Copy + Eq + fmt::Debug, const N: usize> Floor<U, N> {
    /// An idle floor ('G: Floor Idle', TS 24.380 section 6.3.4.3).
    pub const fn new(timers: FloorTimers) -> Self {
        // Positions go out as u16, and MAX_FLOOR_QUEUE is the promised bound.
        const { assert!(N >= 1 && N <= MAX_FLOOR_QUEUE && N <= u16::MAX as usize) };
        Floor {
            timers,
            holder: None,
            queue: Vec::new(),
        }
    }

    /// FLOOR_REQUEST from `who` at its effective `priority`.
    ///
    /// "Idle floor: FLOOR_GRANTED to the requester, FLOOR_TAKEN to every other member."
    ///
    /// "Taken floor: a strictly higher priority preempts: FLOOR_REVOKE `preempted` to the
    /// holder (who is not re-queued), then the requester is granted (at once, or after a grace
    /// of at most 3 s [...])." We grant at once, where TS 24.380 would pass through 'G: pending
    /// Floor Revoke' (6.3.4.5) and run T3 'Stop talking grace': no third state, no third timer,
    /// and the preempting talker (an emergency, typically) is heard without waiting; the relay
    /// drops the old holder's RTP from that moment. The queue is left as it was, except that a
    /// preempting requester that was queued leaves it.
    ///
    /// "Otherwise the request is queued by priority, then arrival, and FLOOR_QUEUE_POS_INFO
    /// goes to the requester and to every member whose position changed. A request from
    /// someone already queued is answered with its current FLOOR_QUEUE_POS_INFO. A full queue:
    /// FLOOR_DENY `queue_full`. A request by the holder: FLOOR_DENY `already_granted`."
    /// A queued member asking again at another priority (not above the holder's) keeps its
    /// place and priority: re-queueing would let it jump ahead by repeating itself.
    pub fn request(
        &mut self,
        now: Instant,
        who: U,
        priority: u8,
        out: &mut impl FnMut(FloorEvent<U>),
    ) {
        let Some(holder) = self.holder else {
            // Idle implies an empty queue: every path that empties the holder grants the head.
            self.grant(now, who, priority, out);
            return;
        };
        if holder.who == who {
            out(FloorEvent::Deny {
                to: who,
                reason: DenyReason::AlreadyGranted,
            });
            return;
        }
        let queued_at = self.index_of(who);
        if priority > holder.priority {
            if let Some(i) = queued_at {
                self.take_at(i);
            }
            out(FloorEvent::Revoke {
                to: holder.who,
                cause: RevokeCause::Preempted,
            });
            self.grant(now, who, priority, out);
            if let Some(i) = queued_at {
                self.announce_from(i, out);
            }
            return;
        }
        if let Some(i) = queued_at {
            out(self.position_event(i, who));
            return;
        }
        let at = self.insert_index(priority);
        if self.queue.insert(at, Queued { who, priority }).is_err() {
            out(FloorEvent::Deny {
                to: who,
                reason: DenyReason::QueueFull,
            });
            return;
        }
        self.announce_from(at, out);
    }

    /// FLOOR_RELEASE from `who`.
    ///
    /// "By the holder: the queue head is granted, or FLOOR_IDLE goes to every member (the
    /// releaser included). By a queued member: its request is cancelled. By anyone else:
    /// ERROR 2002." A cancelled request is acknowledged by nothing but the FLOOR_QUEUE_POS_INFO
    /// of those behind it: the protocol has no event for it, and without an `id` floor ops get
    /// only their floor events.
    pub fn release(
        &mut self,
        now: Instant,
        who: U,
        out: &mut impl FnMut(FloorEvent<U>),
    ) -> Result<(), FloorError> {
        if self.holds(who) {
            self.pass_on(now, out);
            Ok(())
        } else if let Some(i) = self.index_of(who) {
            self.take_at(i);
            self.announce_from(i, out);
            Ok(())
        } else {
            Err(FloorError::NotPermitted)
        }
    }

    /// FLOOR_PING from `who`: "from the holder is activity and gets FLOOR_PONG (from others:
    /// FLOOR_PONG too, no effect)."
    pub fn ping(&mut self, now: Instant, who: U, out: &mut impl FnMut(FloorEvent<U>)) {
        self.activity(now, who);
        out(FloorEvent::Pong { to: who });
    }

    /// Authenticated RTP (or FLOOR_PING) from `who`: restarts the ping timer if `who` holds the
    /// floor. Sends nothing.
    ///
    /// Activity at or after a due ping deadline does not cancel the revoke: the holder was
    /// silent for the whole timer, and the driver's next [`Floor::handle_timeout`] tells it so.
    pub fn activity(&mut self, now: Instant, who: U) {
        let ping = self.timers.ping;
        if let Some(h) = self.holder.as_mut() {
            let deadline = &mut h.deadline[Timer::Ping as usize];
            if h.who == who && now < *deadline {
                *deadline = (*deadline).max(now + ping);
            }
        }
    }

    /// `who` left the channel, disconnected or was reaped. "A holder that leaves, disconnects
    /// or is reaped is sent nothing; the floor passes on the same way." A queued member's
    /// request is dropped and those behind it learn their new place. Anyone else: nothing.
    pub fn leave(&mut self, now: Instant, who: U, out: &mut impl FnMut(FloorEvent<U>)) {
        if self.holds(who) {
            self.pass_on(now, out);
        } else if let Some(i) = self.index_of(who) {
            self.take_at(i);
            self.announce_from(i, out);
        }
    }

    /// An operator revokes the floor (`cause` is [`RevokeCause::Admin`] from operator tools):
    /// FLOOR_REVOKE to the holder, then the floor passes on as on release. Idle: nothing.
    pub fn revoke(
        &mut self,
        now: Instant,
        cause: RevokeCause,
        out: &mut impl FnMut(FloorEvent<U>),
    ) {
        if let Some(h) = self.holder {
            out(FloorEvent::Revoke { to: h.who, cause });
            self.pass_on(now, out);
        }
    }

    /// Fires every holder timer due at `now`: "a holder with no activity [...] is revoked with
    /// `timeout`; one holding longer than LIVECHAT_FLOOR_MAX_MS with `max_duration`", and the
    /// floor passes on. Early, late and repeated calls are harmless.
    ///
    /// When both are due the earlier deadline names the cause (a tie reads as `timeout`). A
    /// new holder's timers start at `now`, so normally one revoke is all; with zero timers the
    /// queue drains, one round per waiting request and bounded by the capacity.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut impl FnMut(FloorEvent<U>)) {
        for _ in 0..=N {
            let Some(h) = self.holder else { return };
            let Some(cause) = self.due(&h, now) else {
                return;
            };
            out(FloorEvent::Revoke { to: h.who, cause });
            self.pass_on(now, out);
        }
    }

    /// When [`Floor::handle_timeout`] next has work: the earlier of the holder's deadlines,
    /// `None` while idle.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.holder.and_then(|h| h.deadline.iter().copied().min())
    }

    /// The holder and its effective priority.
    pub fn holder(&self) -> Option<(U, u8)> {
        self.holder.map(|h| (h.who, h.priority))
    }

    /// The waiting requests, head (next to be granted) first, with their priorities.
    pub fn queue(&self) -> impl Iterator<Item = (U, u8)> + '_ {
        self.queue.iter().map(|q| (q.who, q.priority))
    }

    /// Nobody holds the floor (and so nobody waits).
    pub fn is_idle(&self) -> bool {
        self.holder.is_none()
    }

    /// Makes `who` the holder and tells everyone: 'G: Floor Taken' entered, both timers start.
    fn grant(&mut self, now: Instant, who: U, priority: u8, out: &mut impl FnMut(FloorEvent<U>)) {
        let mut deadline = [now; Timer::COUNT];
        deadline[Timer::Ping as usize] = now + self.timers.ping;
        deadline[Timer::Max as usize] = now + self.timers.max;
        self.holder = Some(Holder {
            who,
            priority,
            deadline,
        });
        out(FloorEvent::Granted {
            to: who,
            max_duration: self.timers.max,
        });
        out(FloorEvent::Taken {
            holder: who,
            priority,
        });
    }

    /// The holder is gone (its revoke, if any, already sent): grant the head and tell the rest
    /// of the queue they moved up, or go idle.
    fn pass_on(&mut self, now: Instant, out: &mut impl FnMut(FloorEvent<U>)) {
        self.holder = None;
        match self.take_at(0) {
            Some(next) => {
                self.grant(now, next.who, next.priority, out);
                self.announce_from(0, out);
            }
            None => out(FloorEvent::Idle),
        }
    }

    /// FLOOR_QUEUE_POS_INFO to every queued member from index `from` on: the ones whose place
    /// changed after an insert or removal there.
    fn announce_from(&self, from: usize, out: &mut impl FnMut(FloorEvent<U>)) {
        for (i, q) in self.queue.iter().enumerate().skip(from) {
            out(self.position_event(i, q.who));
        }
    }

    fn position_event(&self, index: usize, who: U) -> FloorEvent<U> {
        FloorEvent::QueuePos {
            to: who,
            position: to_u16(index.saturating_add(1)),
            size: to_u16(self.queue.len()),
        }
    }

    /// Where a new request goes: after every request of its priority or higher (FIFO within a
    /// priority), before the first lower one.
    fn insert_index(&self, priority: u8) -> usize {
        self.queue
            .iter()
            .position(|q| q.priority < priority)
            .unwrap_or(self.queue.len())
    }

    fn index_of(&self, who: U) -> Option<usize> {
        self.queue.iter().position(|q| q.who == who)
    }

    fn holds(&self, who: U) -> bool {
        self.holder.is_some_and(|h| h.who == who)
    }

    /// Removes the entry at `index`, `None` past the end (never panics).
    fn take_at(&mut self, index: usize) -> Option<Queued<U>> {
        (index < self.queue.len()).then(|| self.queue.remove(index))
    }

    /// The cause of the earliest deadline of `h` due at `now`.
    fn due(&self, h: &Holder<U>, now: Instant) -> Option<RevokeCause> {
        Timer::ALL
            .iter()
            .copied()
            .map(|t| (h.deadline[t as usize], t))
            .filter(|&(at, _)| at <= now)
            .min_by_key(|&(at, _)| at)
            .map(|(_, t)| t.cause())
    }
}

impl Timer {
    const COUNT: usize = 2;
    /// In TS 24.380 order, which also breaks ties between due deadlines.
    const ALL: [Timer; Timer::COUNT] = [Timer::Ping, Timer::Max];

    const fn cause(self) -> RevokeCause {
        match self {
            Timer::Ping => RevokeCause::Timeout,
            Timer::Max => RevokeCause::MaxDuration,
        }
    }
}

/// Queue positions and sizes fit: `N <= u16::MAX` is asserted in [`Floor::new`].
fn to_u16(n: usize) -> u16 {
    u16::try_from(n).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod mutants;

#[cfg(test)]
mod props;
