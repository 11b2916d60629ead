//! Floor control ops (30-32) and events (50-56): the gateway's side of [`crate::floor`]:
//! membership and priority caps before the machine, recipients and encoding after it.

use super::{Driver, Gateway, user_of};
use crate::error::{Error, ErrorCode};
use crate::floor::{Audience, Floor, FloorError, FloorEvent};
use crate::gateway::Conn;
use crate::gateway::ConnId;
use crate::protocol::{
    AckPlain, FloorChannel, FloorDeny, FloorGranted, FloorQueuePos, FloorRevoke, FloorTaken, op,
};
use crate::relay::NONE;
use crate::time::Now;
use crate::trace::{Detail, Event, Kind};

/// The event sink handed to floor calls.
pub(super) type Sink<'a> = &'a mut dyn FnMut(FloorEvent<ConnId>);

impl Gateway<'_> {
    /// Runs `f` on a channel's floor with an event sink that encodes each event and sends
    /// it to its audience, then makes sure the floor's next deadline is polled. A new
    /// holder with video owes its viewers a key frame (PROTOCOL.md section 4: a PLI on each
    /// FLOOR_GRANTED).
    pub(super) fn with_floor<R>(
        &mut self,
        slot: usize,
        drv: &mut impl Driver,
        f: impl FnOnce(&mut Floor<ConnId>, &mut Sink<'_>) -> R,
    ) -> Option<R> {
        let Gateway {
            conns,
            channels,
            out,
            relay,
            ..
        } = self;
        let ch = channels.as_mut_slice().get_mut(slot)?.as_mut()?;
        let head = ch.head;
        let channel_id = ch.id.as_str();
        let floor = &mut ch.floor;
        let conns = conns.as_slice();
        let relay = &*relay;
        let mut granted: Option<ConnId> = None;
        let mut emit = |ev: FloorEvent<ConnId>| {
            trace_floor(drv, channel_id, conns, ev);
            // One recipient is told whether or not it is still a member (a leaver's own
            // events are not emitted by the floor); the others are the members.
            let (one, except, first) = match ev.audience() {
                Audience::One(c) => (Some(c), None, NONE),
                Audience::AllBut(x) => (None, Some(x), head),
                Audience::All => (None, None, head),
            };
            let to = one.into_iter().chain(
                relay
                    .members_from(first)
                    .map(|(_, e)| e.conn())
                    .filter(move |&c| Some(c) != except),
            );
            match ev {
                FloorEvent::Granted {
                    to: c,
                    max_duration,
                } => {
                    granted = Some(c);
                    let d = FloorGranted {
                        channel_id,
                        user_id: user_of(conns, c),
                        max_duration_ms: max_duration.as_millis(),
                    };
                    out.send_each(drv, to, op::FLOOR_GRANTED, d, None);
                }
                FloorEvent::Deny { reason, .. } => {
                    let d = FloorDeny {
                        channel_id,
                        reason: reason.as_str(),
                    };
                    out.send_each(drv, to, op::FLOOR_DENY, d, None);
                }
                FloorEvent::Revoke { to: c, cause } => {
                    let d = FloorRevoke {
                        channel_id,
                        user_id: user_of(conns, c),
                        cause: cause.as_str(),
                    };
                    out.send_each(drv, to, op::FLOOR_REVOKE, d, None);
                }
                FloorEvent::Taken { holder, priority } => {
                    let d = FloorTaken {
                        channel_id,
                        user_id: user_of(conns, holder),
                        priority,
                    };
                    out.send_each(drv, to, op::FLOOR_TAKEN, d, None);
                }
                FloorEvent::Idle => {
                    out.send_each(drv, to, op::FLOOR_IDLE, FloorChannel { channel_id }, None);
                }
                FloorEvent::QueuePos { position, size, .. } => {
                    let d = FloorQueuePos {
                        channel_id,
                        position,
                        queue_size: size,
                    };
                    out.send_each(drv, to, op::FLOOR_QUEUE_POS_INFO, d, None);
                }
                FloorEvent::Pong { .. } => {
                    out.send_each(drv, to, op::FLOOR_PONG, FloorChannel { channel_id }, None);
                }
            }
        };
        let mut sink: Sink<'_> = &mut emit;
        let r = f(floor, &mut sink);
        let next = floor.poll_timeout();
        if let Some(t) = next {
            self.bump_deadline(t);
        }
        if let Some(at) = granted.and_then(|c| self.membership(c, slot)) {
            self.relay.granted(head, at);
        }
        Some(r)
    }

    /// The channel's slot, checking the session is a member (2000, then 2004).
    fn floor_channel(&self, conn: ConnId, channel_id: &str) -> Result<usize, Error> {
        let slot = self.find_channel(channel_id)?;
        if self.membership(conn, slot).is_some() {
            Ok(slot)
        } else {
            Err(ErrorCode::NotJoined.into())
        }
    }

    fn floor_ack(&mut self, conn: ConnId, req_op: u8, id: Option<u32>, drv: &mut impl Driver) {
        if id.is_some() {
            self.out
                .send(drv, &[conn], op::ACK, AckPlain { req_op }, id);
        }
    }

    pub(super) fn floor_request(
        &mut self,
        now: Now,
        conn: ConnId,
        channel_id: &str,
        priority: Option<u8>,
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        let slot = self.floor_channel(conn, channel_id)?;
        let s = self
            .session(conn)
            .ok_or(Error::from(ErrorCode::NotIdentified))?;
        // PROTOCOL.md: the request's priority defaults to the session's, and any priority
        // is capped by the token's cap.
        let effective = priority.unwrap_or(s.priority).min(s.priority_cap);
        self.floor_ack(conn, op::FLOOR_REQUEST, id, drv);
        self.with_floor(slot, drv, |f, emit| {
            f.request(now.mono, conn, effective, emit)
        });
        Ok(())
    }

    pub(super) fn floor_release(
        &mut self,
        now: Now,
        conn: ConnId,
        channel_id: &str,
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        let slot = self.floor_channel(conn, channel_id)?;
        let permitted = self
            .channels
            .as_slice()
            .get(slot)
            .and_then(Option::as_ref)
            .is_some_and(|c| {
                c.floor.holder().is_some_and(|(h, _)| h == conn)
                    || c.floor.queue().any(|(u, _)| u == conn)
            });
        if !permitted {
            return Err(FloorError::NotPermitted.into());
        }
        self.floor_ack(conn, op::FLOOR_RELEASE, id, drv);
        match self.with_floor(slot, drv, |f, emit| f.release(now.mono, conn, emit)) {
            Some(Err(e)) => Err(e.into()),
            _ => Ok(()),
        }
    }

    pub(super) fn floor_ping(
        &mut self,
        now: Now,
        conn: ConnId,
        channel_id: &str,
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        let slot = self.floor_channel(conn, channel_id)?;
        self.floor_ack(conn, op::FLOOR_PING, id, drv);
        self.with_floor(slot, drv, |f, emit| f.ping(now.mono, conn, emit));
        Ok(())
    }
}

/// The trace event of a floor event (PROTOCOL.md section 6: `granted`, `taken`, `queued`,
/// `revoked` with its cause, `idle`, `denied` with its reason); a pong is none.
fn trace_floor(drv: &mut impl Driver, channel_id: &str, conns: &[Conn], ev: FloorEvent<ConnId>) {
    let ch = Some(channel_id);
    let user = |c| Some(user_of(conns, c));
    let e = match ev {
        FloorEvent::Granted { to, .. } => Event::new(Kind::Floor, "granted", ch, user(to)),
        FloorEvent::Taken { holder, priority } => {
            Event::new(Kind::Floor, "taken", ch, user(holder)).with(Detail::Priority(priority))
        }
        FloorEvent::QueuePos { to, position, size } => {
            Event::new(Kind::Floor, "queued", ch, user(to)).with(Detail::Queued { position, size })
        }
        FloorEvent::Revoke { to, cause } => {
            Event::new(Kind::Floor, "revoked", ch, user(to)).with(Detail::Cause(cause.as_str()))
        }
        FloorEvent::Idle => Event::new(Kind::Floor, "idle", ch, None),
        FloorEvent::Deny { to, reason } => {
            Event::new(Kind::Floor, "denied", ch, user(to)).with(Detail::Reason(reason.as_str()))
        }
        FloorEvent::Pong { .. } => return,
    };
    drv.trace(&e);
}

impl From<FloorError> for Error {
    fn from(e: FloorError) -> Self {
        match e {
            FloorError::NotPermitted => Error::new(
                ErrorCode::NotPermitted,
                "neither the floor holder nor queued for it",
            ),
        }
    }
}
