//! The operators' view and actions (PROTOCOL.md section 6, the admin API): listings, media
//! latches for the trace, and creating, updating and deleting channels, revoking a floor
//! and kicking a user. Each action goes through the same tables and the same event paths as
//! a member's op, so members see exactly what they would see had a member done it; the
//! operator appears as the user `admin`.

use super::{Channel, ConnId, Driver, Gateway, PeerInfo, Session};
use crate::error::{Error, ErrorCode};
use crate::floor::RevokeCause;
use crate::protocol::{ChannelEvent, Freq, Id, Name, Request, decode_request, op};
use crate::relay::NONE;
use crate::time::Now;
use crate::trace::{self, Detail, Event, Kind};

/// The user_id operator actions are made as: the creator of channels the admin API
/// creates, and the `user_id` of the channel events it causes.
pub const ADMIN_USER: &str = "admin";

/// WebSocket close code for a connection an operator kicked (PROTOCOL.md section 6).
pub const CLOSE_KICKED: u16 = 4010;

/// Why an operator action was refused. [`AdminError::http_status`] is the one place
/// each meets its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminError {
    /// The body or a field is invalid, or the channel is not found, exists, or a table
    /// is full: the same errors a member would get.
    Request(Error),
    /// No session with that user_id.
    UserNotFound,
    /// Nobody holds the floor.
    FloorIdle,
    /// The body's `channel_id` is not the path's.
    ChannelIdMismatch,
}

impl AdminError {
    /// The HTTP status of the answer.
    pub const fn http_status(self) -> u16 {
        match self {
            AdminError::Request(e) => match e.code {
                ErrorCode::ChannelNotFound => 404,
                ErrorCode::ChannelExists => 409,
                ErrorCode::Capacity => 503,
                ErrorCode::Internal => 500,
                _ => 400,
            },
            AdminError::UserNotFound => 404,
            AdminError::FloorIdle => 409,
            AdminError::ChannelIdMismatch => 400,
        }
    }

    /// The `error` of the JSON answer.
    pub const fn reason(self) -> &'static str {
        match self {
            AdminError::Request(e) => e.reason,
            AdminError::UserNotFound => "user not found",
            AdminError::FloorIdle => "floor idle",
            AdminError::ChannelIdMismatch => "channel_id does not match the path",
        }
    }
}

impl From<Error> for AdminError {
    fn from(e: Error) -> Self {
        AdminError::Request(e)
    }
}

impl From<ErrorCode> for AdminError {
    fn from(c: ErrorCode) -> Self {
        AdminError::Request(c.into())
    }
}

/// A channel's fields as CHANNEL_CREATE's or CHANNEL_UPDATE's `d`, checked as a member's
/// request is checked.
#[derive(Debug, Clone)]
pub struct ChannelBody {
    /// The channel.
    pub channel_id: Id,
    /// Display name.
    pub name: Option<Name>,
    /// Frequency label.
    pub freq: Option<Freq>,
    /// Member limit.
    pub capacity: Option<u16>,
    /// Audio codec (`PCMU` when absent; create only).
    pub codec: Option<crate::codec::Codec>,
    /// Video codec (`VP8` when absent; create only).
    pub video_codec: Option<crate::codec::VideoCodec>,
}

impl ChannelBody {
    /// Decodes `frame`, a whole request envelope `{"op":10 or 13,"d":{...}}` (the driver
    /// wraps the HTTP body in one), with the member's rules: 400 on a bad field.
    pub fn decode(create: bool, frame: &[u8], max_members: usize) -> Result<Self, AdminError> {
        let op_code = if create {
            op::CHANNEL_CREATE
        } else {
            op::CHANNEL_UPDATE
        };
        match decode_request(op_code, frame, max_members)? {
            Request::ChannelCreate {
                channel_id,
                name,
                freq,
                capacity,
                codec,
                video_codec,
            } => Ok(ChannelBody {
                channel_id,
                name,
                freq,
                capacity,
                codec,
                video_codec,
            }),
            Request::ChannelUpdate {
                channel_id,
                name,
                freq,
                capacity,
            } => Ok(ChannelBody {
                channel_id,
                name,
                freq,
                capacity,
                codec: None,
                video_codec: None,
            }),
            _ => Err(ErrorCode::Internal.into()),
        }
    }
}

impl Gateway<'_> {
    /// Every identified session: its connection, the session and the connection's peer.
    pub fn sessions(&self) -> impl Iterator<Item = (ConnId, &Session, PeerInfo)> {
        self.conns
            .as_slice()
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let s = c.session.as_ref().filter(|_| c.open)?;
                Some((ConnId::new(i as u32, c.generation), s, c.peer))
            })
    }

    /// The connection of the session `user_id`, if one.
    pub fn find_user(&self, user_id: &str) -> Option<ConnId> {
        self.sessions()
            .find(|(_, s, _)| s.user_id == user_id)
            .map(|(c, _, _)| c)
    }

    /// The channel `channel_id`, if it exists.
    pub fn channel_by_id(&self, channel_id: &str) -> Option<&Channel> {
        self.channels().find(|c| c.id == channel_id)
    }

    /// The channel ids `conn`'s session has joined, newest first.
    pub fn joined(&self, conn: ConnId) -> impl Iterator<Item = &str> {
        let mut at = self.session(conn).map_or(NONE, |s| s.joined_head);
        core::iter::from_fn(move || {
            let e = self.relay.get(at as usize)?;
            at = e.session_next;
            Some(e.channel())
        })
        .take(crate::config::MAX_JOINED_PER_SESSION)
        .filter_map(|slot| {
            self.channels
                .as_slice()
                .get(slot as usize)
                .and_then(Option::as_ref)
                .map(|c| c.id.as_str())
        })
    }

    /// Hands `f` a `media` `latched` trace event for each endpoint whose address latched
    /// or moved since the last call ([`crate::relay::Relay::take_latched`]); a driver calls
    /// it after each batch of datagrams.
    pub fn drain_latched(&mut self, mut f: impl FnMut(&Event<'_>)) {
        for at in self.relay.take_latched() {
            let Some(e) = self.relay.get(at as usize) else {
                continue;
            };
            let Some(addr) = e.latched else {
                continue;
            };
            let channel = self
                .channels
                .as_slice()
                .get(e.channel() as usize)
                .and_then(Option::as_ref)
                .map(|c| c.id.as_str());
            let user = super::user_of(self.conns.as_slice(), e.conn());
            let ev = Event::new(Kind::Media, "latched", channel, Some(user));
            f(&ev.with(Detail::Latched {
                addr,
                ssrc: e.ssrc(),
            }));
        }
    }

    /// Hands `f` a `media` trace event about the WebRTC endpoint `media` (its channel and
    /// user), e.g. `dtls` with [`Detail::Dtls`]; nothing when the endpoint is gone.
    pub fn media_trace(
        &self,
        media: crate::relay::MediaId,
        event: &'static str,
        detail: Detail,
        mut f: impl FnMut(&Event<'_>),
    ) {
        let Some(e) = self.relay.resolve(media).and_then(|at| self.relay.get(at)) else {
            return;
        };
        let channel = self
            .channels
            .as_slice()
            .get(e.channel() as usize)
            .and_then(Option::as_ref)
            .map(|c| c.id.as_str());
        let user = super::user_of(self.conns.as_slice(), e.conn());
        f(&Event::new(Kind::Media, event, channel, Some(user)).with(detail));
    }

    /// POST `/channels`: a channel created by [`ADMIN_USER`] (not joined; 409 when it
    /// exists, 503 at the channel limit).
    pub fn admin_create(
        &mut self,
        now: Now,
        body: ChannelBody,
        drv: &mut impl Driver,
    ) -> Result<&Channel, AdminError> {
        if self.find_channel(&body.channel_id).is_ok() {
            return Err(ErrorCode::ChannelExists.into());
        }
        let full = || Error::new(ErrorCode::Capacity, "channel limit reached");
        if self.channels().count() >= self.max_channels {
            return Err(full().into());
        }
        let mut creator = Id::new();
        let _ = creator.push_str(ADMIN_USER);
        let new = super::channels::NewChannel {
            id: body.channel_id,
            name: body.name,
            freq: body.freq,
            capacity: body.capacity,
            creator,
            codec: body.codec.unwrap_or(crate::codec::Codec::Pcmu),
            video_codec: body.video_codec.unwrap_or(crate::codec::VideoCodec::Vp8),
        };
        let slot = self.place_channel(now, new).ok_or_else(full)?;
        let ch = self.channel(slot)?;
        drv.trace(&Event::new(
            Kind::Channel,
            "create",
            Some(&ch.id),
            Some(ADMIN_USER),
        ));
        Ok(ch)
    }

    /// PATCH `/channels/{id}`: the fields changed, and every member gets CHANNEL_EVENT
    /// `update` from [`ADMIN_USER`]. A capacity below the member count is 400.
    pub fn admin_update(
        &mut self,
        _now: Now,
        channel_id: &str,
        body: ChannelBody,
        drv: &mut impl Driver,
    ) -> Result<&Channel, AdminError> {
        let slot = self.find_channel(channel_id)?;
        if body.channel_id != channel_id {
            return Err(AdminError::ChannelIdMismatch);
        }
        let ch = self.channel_mut(slot)?;
        if body.capacity.is_some_and(|c| c < ch.members) {
            return Err(Error::new(
                ErrorCode::Malformed,
                "capacity below the current member count",
            )
            .into());
        }
        if let Some(c) = body.capacity {
            ch.capacity = c;
        }
        if let Some(n) = body.name {
            ch.name = n;
        }
        if let Some(f) = body.freq {
            ch.freq = f;
        }
        self.admin_event(slot, "update", drv);
        self.channels
            .as_slice()
            .get(slot)
            .and_then(Option::as_ref)
            .ok_or(ErrorCode::Internal.into())
    }

    /// DELETE `/channels/{id}`: every member gets CHANNEL_EVENT `delete` from
    /// [`ADMIN_USER`] (and no floor messages), then the channel and its memberships go.
    pub fn admin_delete(
        &mut self,
        _now: Now,
        channel_id: &str,
        drv: &mut impl Driver,
    ) -> Result<(), AdminError> {
        let slot = self.find_channel(channel_id)?;
        self.admin_event(slot, "delete", drv);
        let Some(ch) = self
            .channels
            .as_mut_slice()
            .get_mut(slot)
            .and_then(Option::take)
        else {
            return Ok(());
        };
        let mut at = ch.head;
        // The whole list goes, so each removed endpoint's `next` still names a live one.
        while let Some(conn) = self.relay.get(at as usize).map(|e| e.conn()) {
            self.detach(conn, at as usize);
            match self.relay.remove(at as usize) {
                Some(e) => at = e.next,
                None => break,
            }
        }
        Ok(())
    }

    /// POST `/channels/{id}/floor/revoke`: FLOOR_REVOKE `admin` to the holder, then the
    /// floor passes on as on release (FLOOR_TAKEN or FLOOR_IDLE). 409 when idle.
    pub fn admin_revoke(
        &mut self,
        now: Now,
        channel_id: &str,
        drv: &mut impl Driver,
    ) -> Result<&Channel, AdminError> {
        let slot = self.find_channel(channel_id)?;
        let idle = self
            .channels
            .as_slice()
            .get(slot)
            .and_then(Option::as_ref)
            .is_none_or(|c| c.floor.is_idle());
        if idle {
            return Err(AdminError::FloorIdle);
        }
        self.with_floor(slot, drv, |f, emit| {
            f.revoke(now.mono, RevokeCause::Admin, emit)
        });
        self.recompute_deadline();
        self.channels
            .as_slice()
            .get(slot)
            .and_then(Option::as_ref)
            .ok_or(ErrorCode::Internal.into())
    }

    /// DELETE `/users/{user_id}`: the session's connection is closed with
    /// [`CLOSE_KICKED`] `kicked` and cleaned up exactly as on disconnect (channels left,
    /// floor passed on).
    pub fn admin_kick(
        &mut self,
        now: Now,
        user_id: &str,
        drv: &mut impl Driver,
    ) -> Result<(), AdminError> {
        let conn = self.find_user(user_id).ok_or(AdminError::UserNotFound)?;
        drv.close(conn, CLOSE_KICKED, "kicked");
        self.drop_connection(now, conn, trace::cause::KICKED, drv);
        Ok(())
    }

    /// CHANNEL_EVENT `event` from [`ADMIN_USER`] to every member of the channel in `slot`
    /// (`update` with the channel's new fields), and its trace event.
    fn admin_event(&mut self, slot: usize, event: &'static str, drv: &mut impl Driver) {
        let Gateway {
            channels,
            out,
            relay,
            ..
        } = self;
        let Some(ch) = channels.as_slice().get(slot).and_then(Option::as_ref) else {
            return;
        };
        let update = event == "update";
        let ev = ChannelEvent {
            event,
            channel_id: &ch.id,
            user_id: Some(ADMIN_USER),
            ssrc: None,
            name: update.then_some(ch.name.as_str()),
            freq: update.then_some(ch.freq.as_str()),
            capacity: update.then_some(ch.capacity),
            codec: update.then_some(ch.codec.as_str()),
            video_codec: update.then_some(ch.video_codec.as_str()),
        };
        let to = relay.members(ch).map(|(_, e)| e.conn());
        out.send_each(drv, to, op::CHANNEL_EVENT, ev, None);
        drv.trace(&Event::new(
            Kind::Channel,
            event,
            Some(&ch.id),
            Some(ADMIN_USER),
        ));
    }
}
