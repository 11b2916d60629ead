//! Every transition and every event, with the exact sequence each one emits.

use std::vec::Vec;

use super::*;
use FloorEvent::{Deny, Granted, Idle, Pong, QueuePos, Revoke, Taken};

const PING: Duration = Duration::from_millis(100);
const MAX: Duration = Duration::from_millis(1000);
const TIMERS: FloorTimers = FloorTimers {
    max: MAX,
    ping: PING,
};

type Ev = FloorEvent<char>;

/// A floor and a clock; each call returns the events it emitted.
struct Rig<const N: usize = MAX_FLOOR_QUEUE> {
    fl: Floor<char, N>,
    now: Instant,
}

impl Rig {
    fn new() -> Self {
        Self::with(TIMERS)
    }
}

impl<const N: usize> Rig<N> {
    fn with(timers: FloorTimers) -> Self {
        Rig {
            fl: Floor::new(timers),
            now: Instant::ZERO,
        }
    }

    fn req(&mut self, who: char, priority: u8) -> Vec<Ev> {
        let mut v = Vec::new();
        self.fl.request(self.now, who, priority, &mut |e| v.push(e));
        v
    }

    fn rel(&mut self, who: char) -> (Result<(), FloorError>, Vec<Ev>) {
        let mut v = Vec::new();
        let r = self.fl.release(self.now, who, &mut |e| v.push(e));
        (r, v)
    }

    fn ping(&mut self, who: char) -> Vec<Ev> {
        let mut v = Vec::new();
        self.fl.ping(self.now, who, &mut |e| v.push(e));
        v
    }

    fn leave(&mut self, who: char) -> Vec<Ev> {
        let mut v = Vec::new();
        self.fl.leave(self.now, who, &mut |e| v.push(e));
        v
    }

    fn revoke(&mut self, cause: RevokeCause) -> Vec<Ev> {
        let mut v = Vec::new();
        self.fl.revoke(self.now, cause, &mut |e| v.push(e));
        v
    }

    /// Moves the clock to `ms` and fires due timers.
    fn at(&mut self, ms: u64) -> Vec<Ev> {
        self.now = Instant::from_millis(ms);
        let mut v = Vec::new();
        self.fl.handle_timeout(self.now, &mut |e| v.push(e));
        v
    }

    fn queue(&self) -> Vec<(char, u8)> {
        self.fl.queue().collect()
    }
}

fn granted(to: char, priority: u8) -> [Ev; 2] {
    [
        Granted {
            to,
            max_duration: MAX,
        },
        Taken {
            holder: to,
            priority,
        },
    ]
}

fn pos(to: char, position: u16, size: u16) -> Ev {
    QueuePos { to, position, size }
}

fn revoke(to: char, cause: RevokeCause) -> Ev {
    Revoke { to, cause }
}

fn cat(parts: &[&[Ev]]) -> Vec<Ev> {
    parts.concat()
}

fn ms(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// `a` holds at priority 2; `b`, `c`, `d` wait at 1, 1, 0.
fn busy() -> Rig {
    let mut r = Rig::new();
    r.req('a', 2);
    r.req('b', 1);
    r.req('c', 1);
    r.req('d', 0);
    assert_eq!(r.queue(), [('b', 1), ('c', 1), ('d', 0)]);
    r
}

#[test]
fn new_floor_is_idle_without_deadline() {
    let r = Rig::<4>::with(TIMERS);
    assert!(r.fl.is_idle());
    assert_eq!(r.fl.holder(), None);
    assert_eq!(r.fl.queue().count(), 0);
    assert_eq!(r.fl.poll_timeout(), None);
}

#[test]
fn idle_request_is_granted_then_taken() {
    let mut r = Rig::new();
    assert_eq!(r.req('a', 3), granted('a', 3));
    assert_eq!(r.fl.holder(), Some(('a', 3)));
    assert!(!r.fl.is_idle());
}

#[test]
fn request_by_holder_is_denied_already_granted() {
    let mut r = Rig::new();
    r.req('a', 1);
    for p in [0, 1, 9] {
        assert_eq!(
            r.req('a', p),
            [Deny {
                to: 'a',
                reason: DenyReason::AlreadyGranted
            }]
        );
    }
    assert_eq!(r.fl.holder(), Some(('a', 1)));
}

#[test]
fn equal_or_lower_priority_is_queued() {
    let mut r = Rig::new();
    r.req('a', 2);
    assert_eq!(r.req('b', 2), [pos('b', 1, 1)]);
    assert_eq!(r.req('c', 0), [pos('c', 2, 2)]);
    assert_eq!(r.fl.holder(), Some(('a', 2)));
    assert_eq!(r.queue(), [('b', 2), ('c', 0)]);
}

#[test]
fn queue_orders_by_priority_then_arrival_and_tells_those_pushed_back() {
    let mut r = busy();
    // A 1 goes after the other 1s, before the 0: only `d` moved.
    assert_eq!(r.req('e', 1), [pos('e', 3, 4), pos('d', 4, 4)]);
    // A 2 (equal to the holder's, so no preemption) goes first: everyone moved.
    assert_eq!(
        r.req('f', 2),
        [
            pos('f', 1, 5),
            pos('b', 2, 5),
            pos('c', 3, 5),
            pos('e', 4, 5),
            pos('d', 5, 5)
        ]
    );
    // A 0 goes last: nobody moved.
    assert_eq!(r.req('g', 0), [pos('g', 6, 6)]);
    assert_eq!(
        r.queue(),
        [('f', 2), ('b', 1), ('c', 1), ('e', 1), ('d', 0), ('g', 0)]
    );
}

#[test]
fn request_while_queued_answers_current_position_only() {
    let mut r = busy();
    assert_eq!(r.req('c', 1), [pos('c', 2, 3)]);
    // Another priority, not above the holder's: same place, same priority.
    assert_eq!(r.req('c', 2), [pos('c', 2, 3)]);
    assert_eq!(r.req('d', 0), [pos('d', 3, 3)]);
    assert_eq!(r.queue(), [('b', 1), ('c', 1), ('d', 0)]);
}

#[test]
fn full_queue_denies_queue_full() {
    let mut r = Rig::<2>::with(TIMERS);
    r.req('a', 1);
    r.req('b', 1);
    r.req('c', 0);
    let deny = |to| Deny {
        to,
        reason: DenyReason::QueueFull,
    };
    assert_eq!(r.req('d', 1), [deny('d')]);
    assert_eq!(r.req('d', 0), [deny('d')]);
    assert_eq!(r.queue(), [('b', 1), ('c', 0)]);
    // Those already queued still get their position, the holder its deny.
    assert_eq!(r.req('c', 0), [pos('c', 2, 2)]);
    assert_eq!(
        r.req('a', 1),
        [Deny {
            to: 'a',
            reason: DenyReason::AlreadyGranted
        }]
    );
}

#[test]
fn default_capacity_is_max_floor_queue() {
    let mut r = Rig::new();
    r.req('\u{1}', 0);
    for i in 0..MAX_FLOOR_QUEUE {
        let who = char::from(b'A' + u8::try_from(i).unwrap());
        let n = u16::try_from(i + 1).unwrap();
        assert_eq!(r.req(who, 0), [pos(who, n, n)]);
    }
    assert_eq!(
        r.req('~', 0),
        [Deny {
            to: '~',
            reason: DenyReason::QueueFull
        }]
    );
}

#[test]
fn higher_priority_preempts_at_once() {
    let mut r = busy();
    assert_eq!(
        r.req('z', 3),
        cat(&[&[revoke('a', RevokeCause::Preempted)], &granted('z', 3)])
    );
    assert_eq!(r.fl.holder(), Some(('z', 3)));
    // The old holder is not re-queued; the queue is unchanged.
    assert_eq!(r.queue(), [('b', 1), ('c', 1), ('d', 0)]);
}

#[test]
fn preemption_works_on_a_full_queue() {
    let mut r = Rig::<1>::with(TIMERS);
    r.req('a', 0);
    r.req('b', 0);
    assert_eq!(
        r.req('z', 1),
        cat(&[&[revoke('a', RevokeCause::Preempted)], &granted('z', 1)])
    );
    assert_eq!(r.queue(), [('b', 0)]);
}

#[test]
fn queued_member_preempting_leaves_the_queue() {
    let mut r = busy();
    assert_eq!(
        r.req('c', 5),
        cat(&[
            &[revoke('a', RevokeCause::Preempted)],
            &granted('c', 5),
            &[pos('d', 2, 2)],
        ])
    );
    assert_eq!(r.queue(), [('b', 1), ('d', 0)]);
    // From the head: everyone behind moved.
    assert_eq!(
        r.req('b', 6),
        cat(&[
            &[revoke('c', RevokeCause::Preempted)],
            &granted('b', 6),
            &[pos('d', 1, 1)],
        ])
    );
    // From the tail: nobody moved.
    assert_eq!(
        r.req('d', 7),
        cat(&[&[revoke('b', RevokeCause::Preempted)], &granted('d', 7)])
    );
    assert_eq!(r.queue(), []);
}

#[test]
fn release_by_holder_with_empty_queue_goes_idle() {
    let mut r = Rig::new();
    r.req('a', 0);
    assert_eq!(r.rel('a'), (Ok(()), vec![Idle]));
    assert!(r.fl.is_idle());
    assert_eq!(r.fl.poll_timeout(), None);
}

#[test]
fn release_by_holder_grants_head_and_moves_everyone_up() {
    let mut r = busy();
    assert_eq!(
        r.rel('a'),
        (
            Ok(()),
            cat(&[&granted('b', 1), &[pos('c', 1, 2), pos('d', 2, 2)]])
        )
    );
    assert_eq!(
        r.rel('b'),
        (Ok(()), cat(&[&granted('c', 1), &[pos('d', 1, 1)]]))
    );
    assert_eq!(r.rel('c'), (Ok(()), granted('d', 0).to_vec()));
    assert_eq!(r.rel('d'), (Ok(()), vec![Idle]));
}

#[test]
fn release_by_queued_member_cancels_quietly() {
    let mut r = busy();
    // Middle: only those behind move; the canceller gets nothing.
    assert_eq!(r.rel('c'), (Ok(()), vec![pos('d', 2, 2)]));
    // Tail: nobody moves, nothing is sent.
    assert_eq!(r.rel('d'), (Ok(()), vec![]));
    assert_eq!(r.rel('b'), (Ok(()), vec![]));
    assert_eq!(r.queue(), []);
    assert_eq!(r.fl.holder(), Some(('a', 2)));
}

#[test]
fn release_by_anyone_else_is_not_permitted() {
    let mut r = Rig::new();
    assert_eq!(r.rel('a'), (Err(FloorError::NotPermitted), vec![]));
    let mut r = busy();
    assert_eq!(r.rel('x'), (Err(FloorError::NotPermitted), vec![]));
    r.rel('c').0.unwrap();
    assert_eq!(r.rel('c'), (Err(FloorError::NotPermitted), vec![]));
    assert_eq!(r.queue(), [('b', 1), ('d', 0)]);
}

#[test]
fn ping_by_holder_is_activity_and_pong() {
    let mut r = Rig::new();
    r.req('a', 0);
    assert_eq!(r.fl.poll_timeout(), Some(ms(100)));
    r.at(60);
    assert_eq!(r.ping('a'), [Pong { to: 'a' }]);
    assert_eq!(r.fl.poll_timeout(), Some(ms(160)));
    assert_eq!(r.at(159), []);
    assert_eq!(r.fl.holder(), Some(('a', 0)));
}

#[test]
fn ping_by_others_is_pong_without_effect() {
    let mut r = Rig::new();
    assert_eq!(r.ping('x'), [Pong { to: 'x' }]);
    assert!(r.fl.is_idle());
    r.req('a', 0);
    r.req('b', 0);
    r.at(60);
    assert_eq!(r.ping('b'), [Pong { to: 'b' }]);
    assert_eq!(r.fl.poll_timeout(), Some(ms(100)));
}

#[test]
fn activity_restarts_only_the_holders_ping_timer() {
    let mut r = Rig::new();
    r.req('a', 0);
    r.fl.activity(ms(50), 'x');
    assert_eq!(r.fl.poll_timeout(), Some(ms(100)));
    r.fl.activity(ms(50), 'a');
    assert_eq!(r.fl.poll_timeout(), Some(ms(150)));
    // Keeping busy does not move the max deadline.
    for t in (100..=1000).step_by(50) {
        r.fl.activity(ms(t), 'a');
    }
    assert_eq!(r.fl.poll_timeout(), Some(ms(1000)));
}

#[test]
fn activity_after_a_due_deadline_does_not_save_the_holder() {
    let mut r = Rig::new();
    r.req('a', 0);
    // The driver is late: 'a' was silent past its deadline, then speaks.
    r.fl.activity(ms(100), 'a');
    r.now = ms(100);
    assert_eq!(r.ping('a'), [Pong { to: 'a' }]);
    assert_eq!(r.fl.poll_timeout(), Some(ms(100)));
    assert_eq!(r.at(120), [revoke('a', RevokeCause::Timeout), Idle]);
}

#[test]
fn silence_revokes_with_timeout_and_passes_the_floor() {
    let mut r = busy();
    assert_eq!(r.at(99), []);
    assert_eq!(
        r.at(100),
        cat(&[
            &[revoke('a', RevokeCause::Timeout)],
            &granted('b', 1),
            &[pos('c', 1, 2), pos('d', 2, 2)],
        ])
    );
    // The new holder's timers start at the grant.
    assert_eq!(r.fl.poll_timeout(), Some(ms(200)));
}

#[test]
fn silence_with_empty_queue_goes_idle() {
    let mut r = Rig::new();
    r.req('a', 0);
    assert_eq!(r.at(100), [revoke('a', RevokeCause::Timeout), Idle]);
    assert_eq!(r.fl.poll_timeout(), None);
}

#[test]
fn holding_past_max_revokes_with_max_duration() {
    let mut r = Rig::new();
    r.req('a', 0);
    r.req('b', 0);
    for t in (50..1000).step_by(50) {
        r.fl.activity(ms(t), 'a');
        assert_eq!(r.at(t), []);
    }
    assert_eq!(
        r.at(1000),
        cat(&[&[revoke('a', RevokeCause::MaxDuration)], &granted('b', 0)])
    );
    assert_eq!(r.fl.poll_timeout(), Some(ms(1100)));
}

#[test]
fn both_due_the_earlier_deadline_names_the_cause() {
    let mut r = Rig::new();
    r.req('a', 0);
    r.fl.activity(ms(99), 'a');
    // Ping deadline 199, max 1000: a late call at 5000 reports the silence.
    assert_eq!(r.at(5000), [revoke('a', RevokeCause::Timeout), Idle]);
    // A tie reads as timeout.
    let mut r: Rig = Rig::with(FloorTimers {
        max: PING,
        ping: PING,
    });
    r.req('a', 0);
    assert_eq!(r.at(100), [revoke('a', RevokeCause::Timeout), Idle]);
    // Max first.
    let mut r: Rig = Rig::with(FloorTimers {
        max: PING,
        ping: MAX,
    });
    r.req('a', 0);
    assert_eq!(r.fl.poll_timeout(), Some(ms(100)));
    assert_eq!(r.at(2000), [revoke('a', RevokeCause::MaxDuration), Idle]);
}

#[test]
fn a_grant_resets_both_timers() {
    let mut r = Rig::new();
    r.req('a', 0);
    r.req('b', 0);
    r.at(80);
    r.rel('a').0.unwrap();
    assert_eq!(r.fl.holder(), Some(('b', 0)));
    assert_eq!(r.fl.poll_timeout(), Some(ms(180)));
    let mut r = Rig::new();
    r.req('a', 0);
    r.at(90);
    r.req('z', 1);
    assert_eq!(r.fl.poll_timeout(), Some(ms(190)));
    r.fl.activity(ms(185), 'z');
    r.at(185);
    assert_eq!(r.fl.poll_timeout(), Some(ms(285)));
}

#[test]
fn handle_timeout_early_late_and_repeated_is_harmless() {
    let mut r = Rig::new();
    assert_eq!(r.at(0), []);
    r.req('a', 0);
    r.req('b', 0);
    assert_eq!(r.at(0), []);
    assert_eq!(r.at(50), []);
    assert_eq!(r.at(50), []);
    // Late by far: one revoke, the next holder starts fresh at `now`.
    let ev = r.at(10_000);
    assert_eq!(
        ev,
        cat(&[&[revoke('a', RevokeCause::Timeout)], &granted('b', 0)])
    );
    assert_eq!(r.at(10_000), []);
    assert_eq!(r.at(10_099), []);
    assert_eq!(r.at(10_100), [revoke('b', RevokeCause::Timeout), Idle]);
    assert_eq!(r.at(10_100), []);
    assert_eq!(r.at(20_000), []);
}

#[test]
fn zero_timers_drain_the_queue_in_one_call() {
    let mut r = Rig::<3>::with(FloorTimers {
        max: Duration::ZERO,
        ping: Duration::ZERO,
    });
    r.req('a', 0);
    r.req('b', 0);
    r.req('c', 0);
    r.req('d', 0);
    let t = RevokeCause::Timeout;
    let granted = |to| {
        [
            Granted {
                to,
                max_duration: Duration::ZERO,
            },
            Taken {
                holder: to,
                priority: 0,
            },
        ]
    };
    assert_eq!(
        r.at(0),
        cat(&[
            &[revoke('a', t)],
            &granted('b'),
            &[pos('c', 1, 2), pos('d', 2, 2)],
            &[revoke('b', t)],
            &granted('c'),
            &[pos('d', 1, 1)],
            &[revoke('c', t)],
            &granted('d'),
            &[revoke('d', t), Idle],
        ])
    );
    assert!(r.fl.is_idle());
}

#[test]
fn holder_leaving_is_sent_nothing_and_the_floor_passes_on() {
    let mut r = busy();
    assert_eq!(
        r.leave('a'),
        cat(&[&granted('b', 1), &[pos('c', 1, 2), pos('d', 2, 2)]])
    );
    let mut r = Rig::new();
    r.req('a', 0);
    assert_eq!(r.leave('a'), [Idle]);
    assert!(r.fl.is_idle());
}

#[test]
fn queued_member_leaving_is_dequeued() {
    let mut r = busy();
    assert_eq!(r.leave('b'), [pos('c', 1, 2), pos('d', 2, 2)]);
    assert_eq!(r.leave('d'), []);
    assert_eq!(r.queue(), [('c', 1)]);
    assert_eq!(r.fl.holder(), Some(('a', 2)));
}

#[test]
fn anyone_else_leaving_changes_nothing() {
    let mut r = Rig::new();
    assert_eq!(r.leave('x'), []);
    let mut r = busy();
    assert_eq!(r.leave('x'), []);
    assert_eq!(r.fl.holder(), Some(('a', 2)));
    assert_eq!(r.queue(), [('b', 1), ('c', 1), ('d', 0)]);
}

#[test]
fn operator_revoke_passes_the_floor_on() {
    let mut r = Rig::new();
    assert_eq!(r.revoke(RevokeCause::Admin), []);
    let mut r = busy();
    assert_eq!(
        r.revoke(RevokeCause::Admin),
        cat(&[
            &[revoke('a', RevokeCause::Admin)],
            &granted('b', 1),
            &[pos('c', 1, 2), pos('d', 2, 2)],
        ])
    );
    r.rel('c').0.unwrap();
    r.rel('d').0.unwrap();
    assert_eq!(
        r.revoke(RevokeCause::Admin),
        [revoke('b', RevokeCause::Admin), Idle]
    );
}

#[test]
fn wire_strings() {
    assert_eq!(RevokeCause::Preempted.as_str(), "preempted");
    assert_eq!(RevokeCause::Timeout.as_str(), "timeout");
    assert_eq!(RevokeCause::MaxDuration.as_str(), "max_duration");
    assert_eq!(RevokeCause::Admin.as_str(), "admin");
    assert_eq!(DenyReason::QueueFull.as_str(), "queue_full");
    assert_eq!(DenyReason::AlreadyGranted.as_str(), "already_granted");
    assert_eq!(FloorError::NotPermitted.to_string(), "not permitted");
    assert_eq!(FloorTimers::default(), FloorTimers::DEFAULT);
    assert_eq!(FloorTimers::DEFAULT.max, crate::config::DEFAULT_FLOOR_MAX);
    assert_eq!(FloorTimers::DEFAULT.ping, crate::config::DEFAULT_FLOOR_PING);
}

#[test]
fn audiences() {
    assert_eq!(granted('a', 0)[0].audience(), Audience::One('a'));
    assert_eq!(granted('a', 0)[1].audience(), Audience::AllBut('a'));
    assert_eq!(Idle::<char>.audience(), Audience::All);
    assert_eq!(
        revoke('a', RevokeCause::Admin).audience(),
        Audience::One('a')
    );
    assert_eq!(pos('b', 1, 1).audience(), Audience::One('b'));
    assert_eq!(Pong { to: 'c' }.audience(), Audience::One('c'));
    assert_eq!(
        Deny {
            to: 'd',
            reason: DenyReason::QueueFull
        }
        .audience(),
        Audience::One('d')
    );
}
