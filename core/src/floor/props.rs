//! Property tests: random sessions checked step by step against an observer that rebuilds
//! the floor from the inputs and the emitted events alone, and proof that the same checks
//! catch deliberately broken machines (the wrappers of [`super::mutants`]; the shipped
//! [`Floor`] has no defect to switch on).
//!
//! Each check is tagged (`[order]`, `[member]`, ...) so the teeth tests can assert which
//! property caught a defect.

use std::collections::{BTreeMap, BTreeSet};
use std::format;
use std::string::String;
use std::vec::Vec;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

use super::mutants::{Fault, Machine, Mutant};
use super::*;

/// Members of the channel in every session.
const USERS: u8 = 6;
/// Priority levels requested.
const PRIORITIES: u8 = 4;
const PING_MS: u64 = 40;
const MAX_MS: u64 = 100;
/// A queue small enough for six members to fill.
const SMALL: usize = 3;
/// Cases per property and per hunt for a broken machine.
const CASES: u32 = 2000;

type Ev = FloorEvent<u8>;

/// One input, as the gateway would make it.
#[derive(Debug, Clone, Copy)]
enum Op {
    /// FLOOR_REQUEST (joining first if the user had left).
    Request(u8, u8),
    Release(u8),
    Ping(u8),
    /// Authenticated RTP.
    Activity(u8),
    /// Authenticated RTP from whoever holds the floor: the common case, which keeps a
    /// holder long enough to reach its max timer.
    Talk,
    /// Leave, disconnect or reap.
    Leave(u8),
    /// Operator revoke.
    Revoke,
    /// Milliseconds pass, then the driver calls `handle_timeout`.
    Tick(u64),
    /// Milliseconds pass and the driver is late: no `handle_timeout`.
    Late(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..USERS, 0..PRIORITIES).prop_map(|(u, p)| Op::Request(u, p)),
        2 => (0..USERS).prop_map(Op::Release),
        2 => (0..USERS).prop_map(Op::Ping),
        2 => (0..USERS).prop_map(Op::Activity),
        3 => Just(Op::Talk),
        1 => (0..USERS).prop_map(Op::Leave),
        1 => Just(Op::Revoke),
        3 => (0..=30u64).prop_map(Op::Tick),
        1 => (0..=30u64).prop_map(Op::Late),
    ]
}

fn session() -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..120)
}

fn timers() -> FloorTimers {
    FloorTimers {
        max: Duration::from_millis(MAX_MS),
        ping: Duration::from_millis(PING_MS),
    }
}

macro_rules! ensure {
    ($cond:expr, $tag:literal, $($fmt:tt)+) => {
        if !$cond {
            return Err(TestCaseError::fail(format!(
                "[{}] {}",
                $tag,
                format!($($fmt)+)
            )));
        }
    };
}

/// The holder as the events told it.
#[derive(Debug, Clone, Copy)]
struct Held {
    who: u8,
    priority: u8,
    granted: Instant,
    ping_deadline: Instant,
}

/// A request answered with FLOOR_QUEUE_POS_INFO and not yet granted, cancelled or left.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    priority: u8,
    arrival: u64,
}

/// What a request should come to, from the observer's state before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Grant,
    Preempt,
    Position,
    Queued,
    Deny(DenyReason),
}

/// The reference: membership as the gateway tracks it, and the floor as the events tell it.
#[derive(Debug)]
struct Observer {
    timers: FloorTimers,
    cap: usize,
    members: BTreeSet<u8>,
    holder: Option<Held>,
    waiting: BTreeMap<u8, Waiting>,
    arrivals: u64,
}

/// How often each kind of outcome happened, to show the sessions reach them.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    grants: u32,
    idles: u32,
    queued: u32,
    positions: u32,
    revokes: [u32; 4],
    denies: [u32; 2],
    cancels: u32,
    not_permitted: u32,
    late_activity: u32,
}

impl Observer {
    fn new(timers: FloorTimers, cap: usize) -> Self {
        Observer {
            timers,
            cap,
            members: (0..USERS).collect(),
            holder: None,
            waiting: BTreeMap::new(),
            arrivals: 0,
        }
    }

    /// The queue as it must be: priority descending, then arrival.
    fn expected_queue(&self) -> Vec<(u8, u8)> {
        let mut q: Vec<_> = self.waiting.iter().map(|(&u, w)| (u, *w)).collect();
        q.sort_by_key(|&(_, w)| (core::cmp::Reverse(w.priority), w.arrival));
        q.into_iter().map(|(u, w)| (u, w.priority)).collect()
    }

    fn deadline(&self) -> Option<Instant> {
        self.holder
            .map(|h| h.ping_deadline.min(h.granted + self.timers.max))
    }

    fn expect(&self, who: u8, priority: u8) -> Expect {
        match self.holder {
            None => Expect::Grant,
            Some(h) if h.who == who => Expect::Deny(DenyReason::AlreadyGranted),
            Some(h) if priority > h.priority => Expect::Preempt,
            Some(_) if self.waiting.contains_key(&who) => Expect::Position,
            Some(_) if self.waiting.len() >= self.cap => Expect::Deny(DenyReason::QueueFull),
            Some(_) => Expect::Queued,
        }
    }

    /// Activity from `who`: restarts the ping timer of a holder not yet due.
    fn activity(&mut self, now: Instant, who: u8, stats: &mut Stats) {
        let ping = self.timers.ping;
        if let Some(h) = self.holder.as_mut().filter(|h| h.who == who) {
            if now < h.ping_deadline {
                h.ping_deadline = now + ping;
            } else {
                stats.late_activity += 1;
            }
        }
    }
}

/// Runs one session against the real floor (`Fault::None`) or a broken one, with a queue
/// of `N`.
fn check<const N: usize>(ops: &[Op], fault: Fault) -> Result<Stats, TestCaseError> {
    match fault {
        Fault::None => run(Floor::<u8, N>::new(timers()), N, ops),
        _ => run(Mutant::<N>::new(timers(), fault), N, ops),
    }
}

/// Runs one session and checks every property after every step; then releases until idle,
/// which must grant every waiting request in order.
fn run(mut fl: impl Machine, cap: usize, ops: &[Op]) -> Result<Stats, TestCaseError> {
    let mut obs = Observer::new(timers(), cap);
    let mut stats = Stats::default();
    let mut now = Instant::ZERO;
    for (i, &op) in ops.iter().enumerate() {
        step(&mut fl, &mut obs, &mut stats, &mut now, op)
            .map_err(|e| TestCaseError::fail(format!("{} at step {i} {op:?}", message(&e))))?;
    }
    for _ in 0..=cap {
        let Some((holder, _)) = fl.holder() else {
            break;
        };
        step(&mut fl, &mut obs, &mut stats, &mut now, Op::Release(holder))
            .map_err(|e| TestCaseError::fail(format!("{} while draining", message(&e))))?;
    }
    ensure!(
        fl.is_idle() && obs.waiting.is_empty(),
        "lost",
        "releasing every holder left {:?} waiting",
        obs.waiting
    );
    Ok(stats)
}

fn message(e: &TestCaseError) -> String {
    match e {
        TestCaseError::Fail(r) | TestCaseError::Reject(r) => r.message().into(),
    }
}

fn step(
    fl: &mut impl Machine,
    obs: &mut Observer,
    stats: &mut Stats,
    now: &mut Instant,
    op: Op,
) -> Result<(), TestCaseError> {
    let before: Vec<(u8, u8)> = fl.queue();
    let mut ev: Vec<Ev> = Vec::new();
    let mut released = None;
    let mut timed = false;
    // Like the gateway: floor ops from non-members never reach the floor (ERROR 2004), and
    // a request from someone who left comes after a rejoin.
    let member = |u: u8| obs.members.contains(&u);
    let op = match (op, fl.holder()) {
        (Op::Talk, Some((h, _))) => Op::Activity(h),
        (Op::Talk, None) => return Ok(()),
        _ => op,
    };
    match op {
        Op::Request(u, p) => {
            obs.members.insert(u);
            fl.request(*now, u, p, &mut |e| ev.push(e));
        }
        Op::Release(u) if member(u) => released = Some(fl.release(*now, u, &mut |e| ev.push(e))),
        Op::Ping(u) if member(u) => fl.ping(*now, u, &mut |e| ev.push(e)),
        Op::Activity(u) if member(u) => fl.activity(*now, u),
        Op::Leave(u) if member(u) => {
            obs.members.remove(&u);
            fl.leave(*now, u, &mut |e| ev.push(e));
        }
        Op::Release(_) | Op::Ping(_) | Op::Activity(_) | Op::Leave(_) | Op::Talk => {
            return Ok(());
        }
        Op::Revoke => fl.revoke(*now, RevokeCause::Admin, &mut |e| ev.push(e)),
        Op::Tick(ms) => {
            *now = *now + Duration::from_millis(ms);
            fl.handle_timeout(*now, &mut |e| ev.push(e));
            timed = true;
        }
        Op::Late(ms) => *now = *now + Duration::from_millis(ms),
    }
    absorb(obs, stats, op, *now, released, &ev)?;
    check_state(fl, obs, op, *now, &before, &ev, timed)
}

/// Rebuilds the floor in `obs` from the input and the events, checking the events' grammar:
/// `Revoke` then `Granted` + `Taken` (or `Idle`), then `QueuePos`; `Deny`/`Pong` alone.
fn absorb(
    obs: &mut Observer,
    stats: &mut Stats,
    op: Op,
    now: Instant,
    released: Option<Result<(), FloorError>>,
    ev: &[Ev],
) -> Result<(), TestCaseError> {
    let holder_before = obs.holder;
    let expect = match op {
        Op::Request(u, p) => Some(obs.expect(u, p)),
        _ => None,
    };
    // The holder left or released: the floor must pass on within this step.
    let mut vacated = false;
    match op {
        Op::Release(u) | Op::Leave(u) => {
            let holds = obs.holder.is_some_and(|h| h.who == u);
            let waits = obs.waiting.remove(&u).is_some();
            if let Op::Release(_) = op {
                let want = if holds || waits {
                    Ok(())
                } else {
                    Err(FloorError::NotPermitted)
                };
                ensure!(
                    released == Some(want),
                    "release",
                    "got {released:?}, want {want:?}"
                );
                stats.not_permitted += u32::from(want.is_err());
                stats.cancels += u32::from(waits);
            }
            if holds {
                obs.holder = None;
                vacated = true;
            } else {
                ensure!(
                    ev.iter().all(|e| matches!(e, FloorEvent::QueuePos { .. })),
                    "cancel",
                    "a cancel or a bystander emitted {ev:?}"
                );
            }
            if let Op::Leave(_) = op {
                ensure!(
                    ev.iter().all(|e| e.audience() != Audience::One(u)
                        && !matches!(e, FloorEvent::Taken { holder, .. } if *holder == u)),
                    "leave",
                    "{u} left and was sent {ev:?}"
                );
            }
        }
        Op::Ping(u) => {
            ensure!(
                ev == [FloorEvent::Pong { to: u }],
                "pong",
                "ping got {ev:?}"
            );
            obs.activity(now, u, stats);
        }
        Op::Activity(u) => {
            ensure!(ev.is_empty(), "activity", "activity emitted {ev:?}");
            obs.activity(now, u, stats);
        }
        Op::Late(_) => ensure!(ev.is_empty(), "late", "time alone emitted {ev:?}"),
        Op::Request(..) | Op::Revoke | Op::Tick(_) | Op::Talk => {}
    }

    let requester = match op {
        Op::Request(u, _) => Some(u),
        _ => None,
    };
    let mut pending_taken: Option<u8> = None;
    let mut tail = false;
    let mut notified = BTreeSet::new();
    let mut answers = 0;
    let mut preempted = false;
    for &e in ev {
        match e {
            FloorEvent::Revoke { to, cause } => {
                ensure!(
                    !tail && pending_taken.is_none(),
                    "order-of-events",
                    "{ev:?}"
                );
                let Some(h) = obs.holder.filter(|h| h.who == to) else {
                    return Err(TestCaseError::fail(format!(
                        "[revoke] revoke to {to}, holder {:?}",
                        obs.holder
                    )));
                };
                let cause_ok = match (cause, op) {
                    (RevokeCause::Preempted, Op::Request(u, p)) => u != to && p > h.priority,
                    (RevokeCause::Admin, Op::Revoke) => true,
                    (RevokeCause::Timeout, Op::Tick(_)) => now >= h.ping_deadline,
                    (RevokeCause::MaxDuration, Op::Tick(_)) => now >= h.granted + obs.timers.max,
                    _ => false,
                };
                ensure!(
                    cause_ok,
                    "revoke",
                    "{cause:?} on {op:?} at {now:?}, holder {h:?}"
                );
                stats.revokes[cause as usize] += 1;
                preempted = cause == RevokeCause::Preempted;
                obs.holder = None;
                vacated = true;
            }
            FloorEvent::Granted { to, max_duration } => {
                ensure!(
                    !tail && pending_taken.is_none() && obs.holder.is_none(),
                    "order-of-events",
                    "grant while {:?} holds: {ev:?}",
                    obs.holder
                );
                ensure!(
                    max_duration == obs.timers.max,
                    "grant",
                    "max_duration {max_duration:?}"
                );
                ensure!(
                    obs.members.contains(&to),
                    "member",
                    "granted to non-member {to}"
                );
                let priority = match op {
                    Op::Request(u, p) => {
                        ensure!(to == u, "grant", "request by {u} granted {to}");
                        obs.waiting.remove(&u);
                        answers += 1;
                        p
                    }
                    _ => {
                        let head = obs.expected_queue().first().copied();
                        ensure!(
                            head.map(|h| h.0) == Some(to),
                            "grant-order",
                            "granted {to}, head should be {head:?}"
                        );
                        obs.waiting.remove(&to).map_or(0, |w| w.priority)
                    }
                };
                obs.holder = Some(Held {
                    who: to,
                    priority,
                    granted: now,
                    ping_deadline: now + obs.timers.ping,
                });
                stats.grants += 1;
                vacated = false;
                pending_taken = Some(to);
            }
            FloorEvent::Taken { holder, priority } => {
                ensure!(
                    pending_taken == Some(holder)
                        && obs.holder.is_some_and(|h| h.priority == priority),
                    "taken",
                    "taken {holder}/{priority} after {pending_taken:?}, holder {:?}",
                    obs.holder
                );
                pending_taken = None;
            }
            FloorEvent::Idle => {
                ensure!(
                    !tail && pending_taken.is_none() && vacated && obs.holder.is_none(),
                    "idle",
                    "idle without a holder leaving: {ev:?}"
                );
                ensure!(
                    obs.waiting.is_empty(),
                    "lost",
                    "idle while {:?} wait",
                    obs.waiting
                );
                stats.idles += 1;
                vacated = false;
            }
            FloorEvent::QueuePos { to, .. } => {
                ensure!(
                    pending_taken.is_none() && !vacated,
                    "order-of-events",
                    "queue position before the floor passed on: {ev:?}"
                );
                tail = true;
                ensure!(notified.insert(to), "queue-pos", "{to} told twice: {ev:?}");
                if requester == Some(to) {
                    answers += 1;
                }
                stats.positions += 1;
            }
            FloorEvent::Deny { to, reason } => {
                tail = true;
                ensure!(
                    requester == Some(to) && expect == Some(Expect::Deny(reason)),
                    "deny",
                    "deny {reason:?} to {to} on {op:?}, expected {expect:?}"
                );
                answers += 1;
                stats.denies[reason as usize] += 1;
            }
            FloorEvent::Pong { .. } => tail = true,
        }
    }
    ensure!(
        pending_taken.is_none() && !vacated,
        "pass-on",
        "the floor did not pass on: {ev:?}"
    );

    if let (Op::Request(u, p), Some(expect)) = (op, expect) {
        // Every request is answered, exactly once, in the expected way.
        ensure!(answers == 1, "answer", "{answers} answers to {u}: {ev:?}");
        let shape_ok = match expect {
            Expect::Grant => ev.len() == 2,
            Expect::Preempt => {
                preempted && holder_before.is_some() && obs.holder.is_some_and(|h| h.who == u)
            }
            Expect::Position => ev.len() == 1 && notified.contains(&u),
            Expect::Queued => notified.contains(&u),
            Expect::Deny(_) => ev.len() == 1,
        };
        ensure!(
            shape_ok,
            "answer",
            "expected {expect:?} for {op:?}, got {ev:?}"
        );
        if expect == Expect::Queued {
            obs.waiting.insert(
                u,
                Waiting {
                    priority: p,
                    arrival: obs.arrivals,
                },
            );
            obs.arrivals += 1;
            stats.queued += 1;
        }
    }
    Ok(())
}

/// Compares the machine with the observer after a step.
fn check_state(
    fl: &impl Machine,
    obs: &Observer,
    op: Op,
    now: Instant,
    before: &[(u8, u8)],
    ev: &[Ev],
    timed: bool,
) -> Result<(), TestCaseError> {
    let queue: Vec<(u8, u8)> = fl.queue();
    let holder = fl.holder();

    // Holder and every queued user are current members.
    for (u, _) in holder.iter().chain(&queue) {
        ensure!(
            obs.members.contains(u),
            "member",
            "{u} left but is in {holder:?} {queue:?}"
        );
    }
    // Bounded, no duplicates, the holder not waiting.
    ensure!(queue.len() <= obs.cap, "bounded", "{} queued", queue.len());
    let distinct: BTreeSet<u8> = queue.iter().map(|q| q.0).collect();
    ensure!(
        distinct.len() == queue.len(),
        "bounded",
        "duplicates in {queue:?}"
    );
    ensure!(
        holder.is_none_or(|h| !distinct.contains(&h.0)),
        "bounded",
        "holder {holder:?} also queued"
    );
    // Ordered by priority descending, then arrival.
    let mut keys = Vec::new();
    for &(u, p) in &queue {
        let Some(w) = obs.waiting.get(&u) else {
            return Err(TestCaseError::fail(format!(
                "[lost] {u} queued without an answer: {queue:?}"
            )));
        };
        ensure!(
            w.priority == p,
            "order",
            "{u} queued at {p}, asked {}",
            w.priority
        );
        keys.push((core::cmp::Reverse(p), w.arrival));
    }
    ensure!(
        keys.windows(2).all(|k| k[0] < k[1]),
        "order",
        "queue {queue:?} out of order (keys {keys:?})"
    );
    // Nothing lost: the machine's holder and queue are what the events said.
    ensure!(
        holder == obs.holder.map(|h| (h.who, h.priority)),
        "lost",
        "machine holder {holder:?}, events said {:?}",
        obs.holder
    );
    ensure!(
        queue == obs.expected_queue(),
        "lost",
        "machine queue {queue:?}, events said {:?}",
        obs.expected_queue()
    );
    // Waiting requests never outrank the holder: they would have preempted.
    ensure!(
        queue.iter().all(|q| holder.is_some_and(|h| q.1 <= h.1)),
        "priority",
        "{queue:?} behind {holder:?}"
    );
    // Queue positions sent agree with the queue, and reach everyone who moved.
    let mut told = BTreeSet::new();
    for e in ev {
        if let FloorEvent::QueuePos { to, position, size } = *e {
            let at = usize::from(position).checked_sub(1);
            ensure!(
                at.and_then(|i| queue.get(i)).map(|q| q.0) == Some(to)
                    && usize::from(size) == queue.len(),
                "queue-pos",
                "{e:?} but queue is {queue:?}"
            );
            told.insert(to);
        }
    }
    for (i, (u, _)) in queue.iter().enumerate() {
        let moved = before.iter().position(|b| b.0 == *u) != Some(i);
        let asked = matches!(op, Op::Request(r, _) if r == *u);
        ensure!(
            !moved || told.contains(u),
            "queue-pos",
            "{u} moved to {} untold: {before:?} -> {queue:?}, {ev:?}",
            i + 1
        );
        ensure!(
            !told.contains(u) || moved || asked,
            "queue-pos",
            "{u} told without moving: {ev:?}"
        );
    }
    // Deadlines: the next one is announced, and none is overrun after handle_timeout.
    ensure!(
        fl.poll_timeout() == obs.deadline(),
        "deadline",
        "poll_timeout {:?}, holder {:?}",
        fl.poll_timeout(),
        obs.holder
    );
    if timed {
        ensure!(
            obs.deadline().is_none_or(|d| now < d),
            "deadline",
            "{:?} kept past its deadline at {now:?}",
            obs.holder
        );
    }
    ensure!(
        fl.is_idle() == holder.is_none(),
        "idle",
        "is_idle disagrees"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    /// Six members, a queue of three: full queues, denies and everything else.
    #[test]
    fn invariants_hold_with_a_small_queue(ops in session()) {
        check::<SMALL>(&ops, Fault::None)?;
    }

    /// The production capacity.
    #[test]
    fn invariants_hold_with_the_default_queue(ops in session()) {
        check::<MAX_FLOOR_QUEUE>(&ops, Fault::None)?;
    }
}

/// Runs the property checker over generated sessions (fixed seed) against `fault`; returns
/// the minimal violation found.
fn hunt(fault: Fault) -> Option<String> {
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    let rng = TestRng::deterministic_rng(RngAlgorithm::ChaCha);
    let mut runner = TestRunner::new_with_rng(config, rng);
    match runner.run(&session(), |ops| check::<SMALL>(&ops, fault).map(drop)) {
        Ok(()) => None,
        Err(TestError::Fail(reason, ops)) => Some(format!("{} in {ops:?}", reason.message())),
        Err(TestError::Abort(reason)) => panic!("hunt aborted: {}", reason.message()),
    }
}

fn caught(fault: Fault, tag: &str) {
    let found = hunt(fault).unwrap_or_else(|| panic!("{fault:?} went unnoticed"));
    assert!(
        found.contains(tag),
        "{fault:?} caught as {found}, expected {tag}"
    );
}

#[test]
fn the_real_machine_passes_the_hunt() {
    assert_eq!(hunt(Fault::None), None);
}

#[test]
fn teeth_queue_by_arrival_alone_is_caught() {
    caught(Fault::FifoQueue, "[order]");
}

#[test]
fn teeth_forgetting_to_dequeue_on_leave_is_caught() {
    caught(Fault::KeepOnLeave, "[member]");
}

#[test]
fn teeth_ignoring_silence_is_caught() {
    caught(Fault::IgnoreSilence, "[deadline]");
}

#[test]
fn teeth_not_telling_those_pushed_back_is_caught() {
    caught(Fault::QuietInsert, "[queue-pos]");
}

/// The shortest counterexample for each defect, checked without search.
#[test]
fn teeth_known_counterexamples() {
    use Op::*;
    let cases: [(Fault, &[Op], &str); 4] = [
        (
            Fault::FifoQueue,
            &[Request(0, 2), Request(1, 0), Request(2, 1)],
            "[order]",
        ),
        (
            Fault::KeepOnLeave,
            &[Request(0, 0), Request(1, 0), Leave(1)],
            "[member]",
        ),
        (
            Fault::IgnoreSilence,
            &[Request(0, 0), Tick(PING_MS)],
            "[deadline]",
        ),
        (
            Fault::QuietInsert,
            &[Request(0, 2), Request(1, 0), Request(2, 1)],
            "[queue-pos]",
        ),
    ];
    for (fault, ops, tag) in cases {
        check::<SMALL>(ops, Fault::None).unwrap();
        let err = check::<SMALL>(ops, fault).unwrap_err();
        assert!(message(&err).contains(tag), "{fault:?}: {err}");
    }
}

/// The generated sessions reach every outcome, so the properties are not vacuous.
#[test]
fn sessions_reach_every_outcome() {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let mut total = Stats::default();
    for _ in 0..300 {
        let ops = session().new_tree(&mut runner).unwrap().current();
        let s = check::<SMALL>(&ops, Fault::None).unwrap();
        total.grants += s.grants;
        total.idles += s.idles;
        total.queued += s.queued;
        total.positions += s.positions;
        total.cancels += s.cancels;
        total.not_permitted += s.not_permitted;
        total.late_activity += s.late_activity;
        for (t, n) in total.revokes.iter_mut().zip(s.revokes) {
            *t += n;
        }
        for (t, n) in total.denies.iter_mut().zip(s.denies) {
            *t += n;
        }
    }
    let all = [
        total.grants,
        total.idles,
        total.queued,
        total.positions,
        total.cancels,
        total.not_permitted,
        total.late_activity,
    ];
    assert!(all.iter().all(|&n| n > 0), "{total:?}");
    assert!(total.revokes.iter().all(|&n| n > 0), "{total:?}");
    assert!(total.denies.iter().all(|&n| n > 0), "{total:?}");
}
