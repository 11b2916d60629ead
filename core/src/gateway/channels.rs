//! Channel life cycle and chat (ops 10-16 and 20).

use super::webrtc::{Answer, refused};
use super::{Driver, Gateway, session_of, user_of};
use crate::codec::{Codec, VideoCodec};
use crate::error::{Error, ErrorCode};
use crate::floor::{Floor, FloorTimers};
use crate::relay::{Endpoint, Keys, NONE};
use crate::srtp::{
    Context as SrtpContext, MASTER_KEY_LEN, MASTER_SALT_LEN, MasterKey, SDES_KEY_LEN,
};

use crate::config::{MAX_JOINED_PER_SESSION, MAX_OUTBOUND_FRAME};
use crate::gateway::{Channel, ConnId};
use crate::protocol::{
    AckInfo, AckJoin, AckPlain, ChannelEvent, ChannelFields, Crypto, CryptoAnswer, FloorTaken,
    Freq, Id, Media, MessageEvent, Name, StrSeq, encode_channel_list, op,
};
use crate::time::Now;
use crate::trace::{Detail, Event, Kind};

fn fields<'a>(ch: &'a Channel, req_op: Option<u8>) -> ChannelFields<'a> {
    ChannelFields {
        req_op,
        channel_id: &ch.id,
        name: &ch.name,
        freq: &ch.freq,
        capacity: ch.capacity,
        member_count: ch.members,
        creator: &ch.creator,
        created_at: ch.created_at,
        codec: ch.codec.as_str(),
        video_codec: ch.video_codec.as_str(),
    }
}

impl Gateway<'_> {
    pub(super) fn find_channel(&self, channel_id: &str) -> Result<usize, Error> {
        self.channels
            .as_slice()
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.id == channel_id))
            .ok_or(Error::from(ErrorCode::ChannelNotFound))
    }

    pub(super) fn channel(&self, slot: usize) -> Result<&Channel, Error> {
        self.channels
            .as_slice()
            .get(slot)
            .and_then(Option::as_ref)
            .ok_or(Error::from(ErrorCode::ChannelNotFound))
    }

    pub(super) fn channel_mut(&mut self, slot: usize) -> Result<&mut Channel, Error> {
        self.channels
            .as_mut_slice()
            .get_mut(slot)
            .and_then(Option::as_mut)
            .ok_or(Error::from(ErrorCode::ChannelNotFound))
    }

    /// The endpoint slots of `conn`'s memberships, newest first.
    fn memberships(&self, conn: ConnId) -> impl Iterator<Item = usize> + '_ {
        let mut at = self.session(conn).map_or(NONE, |s| s.joined_head);
        core::iter::from_fn(move || {
            let here = at as usize;
            at = self.relay.get(here)?.session_next;
            Some(here)
        })
        .take(MAX_JOINED_PER_SESSION)
    }

    /// The endpoint slot of `conn`'s membership of the channel in `slot`, if it is a member.
    pub(super) fn membership(&self, conn: ConnId, slot: usize) -> Option<usize> {
        self.memberships(conn).find(|&at| {
            self.relay
                .get(at)
                .is_some_and(|e| e.channel() as usize == slot)
        })
    }

    /// Takes the membership in endpoint slot `at` off its session's list.
    pub(super) fn detach(&mut self, conn: ConnId, at: usize) {
        let Some(next) = self.relay.get(at).map(|e| e.session_next) else {
            return;
        };
        let before = self.memberships(conn).find(|&p| {
            self.relay
                .get(p)
                .is_some_and(|e| e.session_next as usize == at)
        });
        match before.and_then(|p| self.relay.get_mut(p)) {
            Some(p) => p.session_next = next,
            None => {
                if let Some(s) = self.conn_mut(conn).and_then(|c| c.session.as_mut())
                    && s.joined_head as usize == at
                {
                    s.joined_head = next;
                }
            }
        }
        if let Some(s) = self.conn_mut(conn).and_then(|c| c.session.as_mut()) {
            s.joined = s.joined.saturating_sub(1);
        }
    }

    /// Sends CHANNEL_EVENT `event` about `who` in the channel at `slot` to its members, but
    /// `except`. `join` carries the joiner's SSRC; `update` carries the channel's new fields.
    #[allow(clippy::too_many_arguments)]
    fn channel_event(
        &mut self,
        slot: usize,
        except: Option<ConnId>,
        event: &'static str,
        who: ConnId,
        ssrc: Option<u32>,
        drv: &mut impl Driver,
    ) {
        let Gateway {
            conns,
            channels,
            out,
            relay,
            ..
        } = self;
        let conns = conns.as_slice();
        let Some(ch) = channels.as_slice().get(slot).and_then(Option::as_ref) else {
            return;
        };
        let update = event == "update";
        let ev = ChannelEvent {
            event,
            channel_id: &ch.id,
            user_id: Some(user_of(conns, who)),
            ssrc,
            name: update.then_some(ch.name.as_str()),
            freq: update.then_some(ch.freq.as_str()),
            capacity: update.then_some(ch.capacity),
            codec: update.then_some(ch.codec.as_str()),
            video_codec: update.then_some(ch.video_codec.as_str()),
        };
        let to = relay
            .members(ch)
            .map(|(_, e)| e.conn())
            .filter(|&c| Some(c) != except);
        out.send_each(drv, to, op::CHANNEL_EVENT, ev, None);
        drv.trace(&Event::new(
            Kind::Channel,
            event,
            Some(&ch.id),
            Some(user_of(conns, who)),
        ));
    }

    fn creator_check(&self, conn: ConnId, slot: usize) -> Result<(), Error> {
        let ch = self.channel(slot)?;
        if user_of(self.conns.as_slice(), conn) == ch.creator.as_str() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::NotPermitted,
                "only the channel's creator may do that",
            ))
        }
    }

    /// Puts a new channel in the first free slot of the table (the caller has checked that
    /// its id is free and the channel limit); `None` when the table cannot grow.
    pub(super) fn place_channel(&mut self, now: Now, new: NewChannel) -> Option<usize> {
        let name = new.name.unwrap_or_else(|| {
            let mut n = Name::new();
            let _ = n.push_str(&new.id);
            n
        });
        let channel = Channel {
            id: new.id,
            name,
            freq: new.freq.unwrap_or_default(),
            capacity: new.capacity.unwrap_or(self.cfg.limits.max_members as u16),
            creator: new.creator,
            created_at: now.unix_ms,
            codec: new.codec,
            video_codec: new.video_codec,
            floor: Floor::new(FloorTimers {
                max: self.cfg.limits.floor_max,
                ping: self.cfg.limits.floor_ping,
            }),
            head: NONE,
            tail: NONE,
            members: 0,
            relayed: 0,
        };
        let slot = match self.channels.as_slice().iter().position(Option::is_none) {
            Some(s) => s,
            None => {
                let s = self.channels.as_slice().len();
                self.channels.push(None).ok()?;
                s
            }
        };
        *self.channels.as_mut_slice().get_mut(slot)? = Some(channel);
        Some(slot)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn channel_create(
        &mut self,
        now: Now,
        conn: ConnId,
        channel_id: Id,
        name: Option<Name>,
        freq: Option<Freq>,
        capacity: Option<u16>,
        (codec, video_codec): (Codec, VideoCodec),
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        if self.find_channel(&channel_id).is_ok() {
            return Err(ErrorCode::ChannelExists.into());
        }
        let full = || Error::new(ErrorCode::Capacity, "channel limit reached");
        if self.channels().count() >= self.max_channels {
            return Err(full());
        }
        let creator = session_of(self.conns.as_slice(), conn)
            .map(|s| s.user_id.clone())
            .ok_or(Error::from(ErrorCode::NotIdentified))?;
        let new = NewChannel {
            id: channel_id,
            name,
            freq,
            capacity,
            creator,
            codec,
            video_codec,
        };
        let slot = self.place_channel(now, new).ok_or_else(full)?;
        let ch = self
            .channels
            .as_slice()
            .get(slot)
            .and_then(Option::as_ref)
            .ok_or(Error::from(ErrorCode::Internal))?;
        let ev = Event::new(Kind::Channel, "create", Some(&ch.id), Some(&ch.creator));
        drv.trace(&ev);
        self.out.send(
            drv,
            &[conn],
            op::ACK,
            fields(ch, Some(op::CHANNEL_CREATE)),
            id,
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn channel_join(
        &mut self,
        _now: Now,
        conn: ConnId,
        channel_id: &str,
        ssrc: u32,
        crypto: Option<Crypto>,
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        let slot = self.find_channel(channel_id)?;
        if self.membership(conn, slot).is_some() {
            return Err(ErrorCode::AlreadyJoined.into());
        }
        let ch = self.channel(slot)?;
        let peer = self
            .conn(conn)
            .map(|c| c.peer)
            .ok_or(Error::from(ErrorCode::Internal))?;
        match &crypto {
            Some(_) if !peer.tls && !self.cfg.sdes_over_ws.allows(peer.is_loopback()) => {
                return Err(Error::new(
                    ErrorCode::NotPermitted,
                    "SRTP keys over ws:// are refused by policy; use wss://",
                ));
            }
            None if !self.cfg.plain_rtp.allows(peer.is_loopback()) => {
                return Err(Error::new(
                    ErrorCode::NotPermitted,
                    "plain RTP is refused by policy; send crypto",
                ));
            }
            _ => {}
        }
        if ch.members >= ch.capacity {
            return Err(ErrorCode::ChannelFull.into());
        }
        let joined_full = session_of(self.conns.as_slice(), conn)
            .is_none_or(|s| usize::from(s.joined) >= MAX_JOINED_PER_SESSION);
        if joined_full {
            return Err(Error::new(
                ErrorCode::Capacity,
                "joined-channel limit per session reached",
            ));
        }
        if self.relay.find(ssrc).is_some() {
            return Err(ErrorCode::SsrcInUse.into());
        }
        if self.relay.len() >= self.relay.capacity() {
            return Err(Error::new(ErrorCode::Capacity, "media peer limit reached"));
        }
        let audio_pt = ch.codec.radio_pt();
        // Server -> client keys: fresh for every join (PROTOCOL.md section 3).
        let mut sdes = [0u8; SDES_KEY_LEN];
        let mut answer_key = "";
        let keys = match &crypto {
            Some(c) => {
                let mut key = [0u8; MASTER_KEY_LEN];
                let mut salt = [0u8; MASTER_SALT_LEN];
                drv.fill_random(&mut key);
                drv.fill_random(&mut salt);
                // SDES carries the AES-CM suites only (`protocol::request`).
                let server = MasterKey::new(c.suite, &key, &salt)
                    .map_err(|_| Error::from(ErrorCode::Internal))?;
                answer_key = server.to_sdes(&mut sdes);
                Keys::Sdes {
                    inbound: SrtpContext::new(c.suite, &c.key),
                    outbound: SrtpContext::new(c.suite, &server),
                }
            }
            None => Keys::Plain,
        };
        let mut endpoint = Endpoint::member(conn, slot as u32, peer.ip, keys, audio_pt);
        endpoint
            .ssrcs
            .push(ssrc)
            .map_err(|_| Error::from(ErrorCode::Internal))?;
        let at = self.relay.add(endpoint).map_err(refused)?;
        self.admit(conn, slot, at);
        let crypto = crypto.as_ref().map(|c| CryptoAnswer {
            suite: c.suite.as_str(),
            key: answer_key,
        });
        self.join_ack(conn, slot, crypto, None, Some(ssrc), id, drv)
    }

    /// Links the new endpoint in `at` into the channel in `slot` and onto `conn`'s session.
    pub(super) fn admit(&mut self, conn: ConnId, slot: usize, at: usize) {
        {
            let Gateway {
                channels, relay, ..
            } = &mut *self;
            if let Some(ch) = channels
                .as_mut_slice()
                .get_mut(slot)
                .and_then(Option::as_mut)
            {
                relay.link(at, ch);
            }
        }
        let head = self
            .conn_mut(conn)
            .and_then(|c| c.session.as_mut())
            .map(|s| {
                s.joined += 1;
                core::mem::replace(&mut s.joined_head, at as u32)
            });
        if let (Some(head), Some(e)) = (head, self.relay.get_mut(at)) {
            e.session_next = head;
        }
    }

    /// Answers a join that succeeded: the ACK (with the server's SDES keys or the SDP
    /// answer), `join` to the other members (with the joiner's audio SSRC when known), and
    /// FLOOR_TAKEN to the joiner when someone holds the floor.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn join_ack(
        &mut self,
        conn: ConnId,
        slot: usize,
        crypto: Option<CryptoAnswer<'_>>,
        sdp_answer: Option<&Answer>,
        ssrc: Option<u32>,
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        let Gateway {
            conns,
            channels,
            out,
            cfg,
            relay,
            cameras,
            ..
        } = self;
        let conns = conns.as_slice();
        let ch = occupied(channels.as_slice(), slot)?;
        let budget = MEMBER_LIST_BUDGET - sdp_answer.map_or(0, |a| a.escaped_len);
        let cams = Gateway::cameras_in(cameras, ch);
        let (fit, truncated) = member_names_fit(
            relay
                .members(ch)
                .map(|(_, m)| user_of(conns, m.conn()))
                .chain(cams.clone()),
            budget,
        );
        let names = relay
            .members(ch)
            .map(|(_, m)| user_of(conns, m.conn()))
            .chain(cams)
            .take(fit);
        let ack = AckJoin {
            req_op: op::CHANNEL_JOIN,
            channel_id: &ch.id,
            active_members: StrSeq::new(names),
            media: Media {
                host: &cfg.media_host,
                port: cfg.media_port,
            },
            crypto,
            sdp_answer: sdp_answer.map(Answer::as_str),
            truncated,
        };
        out.send(drv, &[conn], op::ACK, ack, id);
        self.channel_event(slot, Some(conn), "join", conn, ssrc, drv);
        let Gateway {
            conns,
            channels,
            out,
            ..
        } = self;
        let conns = conns.as_slice();
        if let Some(ch) = channels.as_slice().get(slot).and_then(Option::as_ref) {
            // A radio joining mid-talk learns who holds the floor, as the others did.
            if let Some((holder, priority)) = ch.floor.holder() {
                let taken = FloorTaken {
                    channel_id: &ch.id,
                    user_id: user_of(conns, holder),
                    priority,
                };
                out.send(drv, &[conn], op::FLOOR_TAKEN, taken, None);
            }
        }
        Ok(())
    }

    pub(super) fn channel_leave(
        &mut self,
        now: Now,
        conn: ConnId,
        channel_id: &str,
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        let slot = self.find_channel(channel_id)?;
        let Some(at) = self.membership(conn, slot) else {
            return Err(ErrorCode::NotJoined.into());
        };
        self.remove_member(now, conn, at, drv);
        let ack = AckPlain {
            req_op: op::CHANNEL_LEAVE,
        };
        self.out.send(drv, &[conn], op::ACK, ack, id);
        Ok(())
    }

    /// Ends the membership held in peer slot `at` by `conn`: the other members get
    /// `leave`, the session forgets the channel, and the floor passes on.
    pub(super) fn remove_member(
        &mut self,
        now: Now,
        conn: ConnId,
        at: usize,
        drv: &mut impl Driver,
    ) {
        let Some(slot) = self
            .relay
            .get(at)
            .filter(|e| e.conn() == conn)
            .map(|e| e.channel() as usize)
        else {
            return;
        };
        self.detach(conn, at);
        let media = self.webrtc_media(at);
        {
            let Gateway {
                channels, relay, ..
            } = &mut *self;
            if let Some(ch) = channels
                .as_mut_slice()
                .get_mut(slot)
                .and_then(Option::as_mut)
            {
                relay.unlink(at, ch);
            }
            relay.remove(at);
        }
        if let Some(media) = media {
            drv.media_ended(media);
        }
        self.channel_event(slot, None, "leave", conn, None, drv);
        // The floor passes on (or the request is dequeued); the leaver is told nothing.
        self.with_floor(slot, drv, |f, emit| f.leave(now.mono, conn, emit));
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn channel_update(
        &mut self,
        conn: ConnId,
        channel_id: &str,
        name: Option<Name>,
        freq: Option<Freq>,
        capacity: Option<u16>,
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        let slot = self.find_channel(channel_id)?;
        // A field's value (1004) before the state check 2002 (PROTOCOL.md's order); the
        // member count needs the channel, so after 2000.
        if capacity.is_some_and(|c| c < self.channel(slot).map_or(0, |ch| ch.members)) {
            return Err(Error::new(
                ErrorCode::Malformed,
                "capacity below the current member count",
            ));
        }
        self.creator_check(conn, slot)?;
        let ch = self.channel_mut(slot)?;
        if let Some(c) = capacity {
            ch.capacity = c;
        }
        if let Some(n) = name {
            ch.name = n;
        }
        if let Some(f) = freq {
            ch.freq = f;
        }
        self.channel_event(slot, None, "update", conn, None, drv);
        let Gateway { channels, out, .. } = self;
        let ch = occupied(channels.as_slice(), slot)?;
        out.send(
            drv,
            &[conn],
            op::ACK,
            fields(ch, Some(op::CHANNEL_UPDATE)),
            id,
        );
        Ok(())
    }

    pub(super) fn channel_delete(
        &mut self,
        _now: Now,
        conn: ConnId,
        channel_id: &str,
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        let slot = self.find_channel(channel_id)?;
        self.creator_check(conn, slot)?;
        self.channel_event(slot, None, "delete", conn, None, drv);
        {
            let Gateway { channels, out, .. } = &mut *self;
            let ch = occupied(channels.as_slice(), slot)?;
            out.send(
                drv,
                &[conn],
                op::ACK,
                fields(ch, Some(op::CHANNEL_DELETE)),
                id,
            );
        }
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
            if let Some(media) = self.webrtc_media(at as usize) {
                drv.media_ended(media);
            }
            match self.relay.remove(at as usize) {
                Some(e) => at = e.next,
                None => break,
            }
        }
        Ok(())
    }

    pub(super) fn channel_list(&mut self, conn: ConnId, id: Option<u32>, drv: &mut impl Driver) {
        let Gateway {
            channels,
            out,
            cameras,
            ..
        } = self;
        let list = channels.as_slice().iter().flatten().map(|ch| {
            let mut f = fields(ch, None);
            f.member_count += Gateway::cameras_in(cameras, ch).count() as u16;
            f
        });
        match encode_channel_list(list, id, &mut out.buf) {
            Ok(n) => out.send_raw(drv, &[conn], n),
            Err(_) => out.encode_failures += 1,
        }
    }

    pub(super) fn channel_info(
        &mut self,
        conn: ConnId,
        channel_id: &str,
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        let slot = self.find_channel(channel_id)?;
        let Gateway {
            conns,
            channels,
            out,
            relay,
            cameras,
            ..
        } = self;
        let conns = conns.as_slice();
        let ch = occupied(channels.as_slice(), slot)?;
        let cams = Gateway::cameras_in(cameras, ch);
        let mut f = fields(ch, None);
        f.member_count += cams.clone().count() as u16;
        let (fit, truncated) = member_names_fit(
            relay
                .members(ch)
                .map(|(_, m)| user_of(conns, m.conn()))
                .chain(cams.clone()),
            MEMBER_LIST_BUDGET,
        );
        let ack = AckInfo {
            req_op: op::CHANNEL_INFO,
            channel_id: f.channel_id,
            name: f.name,
            freq: f.freq,
            capacity: f.capacity,
            member_count: f.member_count,
            creator: f.creator,
            created_at: f.created_at,
            codec: f.codec,
            video_codec: f.video_codec,
            members: StrSeq::new(
                relay
                    .members(ch)
                    .map(|(_, m)| user_of(conns, m.conn()))
                    .chain(cams)
                    .take(fit),
            ),
            floor: crate::protocol::FloorInfo {
                state: if ch.floor.is_idle() { "idle" } else { "taken" },
                holder: ch.floor.holder().map(|(h, _)| user_of(conns, h)),
                queue: StrSeq::new(ch.floor.queue().map(|(u, _)| user_of(conns, u))),
            },
            truncated,
        };
        out.send(drv, &[conn], op::ACK, ack, id);
        Ok(())
    }

    pub(super) fn message_create(
        &mut self,
        now: Now,
        conn: ConnId,
        channel_id: &str,
        content: Result<&str, ErrorCode>,
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        let slot = self.find_channel(channel_id)?;
        if self.membership(conn, slot).is_none() {
            return Err(ErrorCode::NotMember.into());
        }
        let content = content?;
        if id.is_some() {
            let ack = AckPlain {
                req_op: op::MESSAGE_CREATE,
            };
            self.out.send(drv, &[conn], op::ACK, ack, id);
        }
        let Gateway {
            conns,
            channels,
            out,
            relay,
            ..
        } = self;
        let conns = conns.as_slice();
        let ch = occupied(channels.as_slice(), slot)?;
        let ev = MessageEvent {
            channel_id: &ch.id,
            user_id: user_of(conns, conn),
            content,
            timestamp: now.unix_ms,
        };
        let members = relay.members(ch).map(|(_, m)| m.conn());
        out.send_each(drv, members, op::MESSAGE_EVENT, ev, None);
        let ev = Event::new(
            Kind::Message,
            "message",
            Some(&ch.id),
            Some(user_of(conns, conn)),
        );
        drv.trace(&ev.with(Detail::Length(content.len())));
        Ok(())
    }
}

/// Bytes of the outbound frame a member list may take: the frame limit less room for the
/// other fields, of which the largest is CHANNEL_INFO's floor queue
/// ([`crate::config::MAX_FLOOR_QUEUE`] user_ids).
const MEMBER_LIST_BUDGET: usize = MAX_OUTBOUND_FRAME - 4096;

/// How many of `names` fit in `budget` bytes (at most [`MEMBER_LIST_BUDGET`]; a JOIN ACK
/// with an SDP answer has less) as a JSON array (user_ids need no escapes: two quotes and a
/// comma each), and whether that cuts the list (PROTOCOL.md: a list that would not fit is
/// cut and says so).
fn member_names_fit<'n>(names: impl Iterator<Item = &'n str>, budget: usize) -> (usize, bool) {
    let mut used = 0;
    let mut fit = 0;
    for n in names {
        used += n.len() + 3;
        if used > budget {
            return (fit, true);
        }
        fit += 1;
    }
    (fit, false)
}

/// The channel in a slot a lookup has just found: its absence is an internal error.
fn occupied(channels: &[Option<Channel>], slot: usize) -> Result<&Channel, Error> {
    channels
        .get(slot)
        .and_then(Option::as_ref)
        .ok_or(Error::from(ErrorCode::Internal))
}

/// A new channel's own fields; the rest comes from the limits
/// ([`Gateway::place_channel`]).
pub(super) struct NewChannel {
    pub(super) id: Id,
    /// The id when absent.
    pub(super) name: Option<Name>,
    pub(super) freq: Option<Freq>,
    /// The member limit when absent.
    pub(super) capacity: Option<u16>,
    pub(super) creator: Id,
    pub(super) codec: Codec,
    pub(super) video_codec: VideoCodec,
}
