//! Channel life cycle and chat (ops 10-16 and 20).

use super::{Driver, Gateway, Recipients, session_of, user_of};
use crate::error::{Error, ErrorCode};
use crate::floor::{Floor, FloorTimers};
use crate::media::Peer;
use crate::srtp::{
    Context as SrtpContext, MASTER_KEY_LEN, MASTER_SALT_LEN, MasterKey, SDES_KEY_LEN,
};

use crate::hub::{Channel, ConnId, Member};
use crate::protocol::{
    AckInfo, AckJoin, AckPlain, ChannelEvent, ChannelFields, Crypto, CryptoAnswer, FloorTaken,
    Freq, Id, Media, MessageEvent, Name, StrSeq, encode_channel_list, op,
};
use crate::time::Instant;
use crate::time::Now;

fn fields<'a>(ch: &'a Channel, req_op: Option<u8>) -> ChannelFields<'a> {
    ChannelFields {
        req_op,
        channel_id: &ch.id,
        name: &ch.name,
        freq: &ch.freq,
        capacity: ch.capacity,
        member_count: ch.members.len() as u16,
        creator: &ch.creator,
        created_at: ch.created_at,
    }
}

impl Gateway<'_> {
    pub(super) fn find_channel(&self, channel_id: &str) -> Result<usize, Error> {
        self.channels
            .iter()
            .position(|c| c.as_ref().is_some_and(|c| c.id == channel_id))
            .ok_or(Error::from(ErrorCode::ChannelNotFound))
    }

    fn channel(&self, slot: usize) -> Result<&Channel, Error> {
        self.channels
            .get(slot)
            .and_then(Option::as_ref)
            .ok_or(Error::from(ErrorCode::ChannelNotFound))
    }

    fn channel_mut(&mut self, slot: usize) -> Result<&mut Channel, Error> {
        self.channels
            .get_mut(slot)
            .and_then(Option::as_mut)
            .ok_or(Error::from(ErrorCode::ChannelNotFound))
    }

    /// Members of a channel, optionally without one of them.
    pub(super) fn recipients(&self, slot: usize, except: Option<ConnId>) -> Recipients {
        let mut r = Recipients::new();
        if let Ok(ch) = self.channel(slot) {
            for m in ch.members.iter().filter(|m| Some(m.conn) != except) {
                // Cannot overflow: both hold at most MAX_MEMBERS.
                let _ = r.push(m.conn);
            }
        }
        r
    }

    /// Sends CHANNEL_EVENT `event` about `who` in the channel at `slot` to `to`. `join`
    /// carries the joiner's SSRC; `update` carries the channel's new fields.
    fn channel_event(
        &mut self,
        slot: usize,
        to: &[ConnId],
        event: &'static str,
        who: ConnId,
        ssrc: Option<u32>,
        drv: &mut impl Driver,
    ) {
        let Gateway {
            conns,
            channels,
            out,
            ..
        } = self;
        let Some(ch) = channels.get(slot).and_then(Option::as_ref) else {
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
        };
        out.send(drv, to, op::CHANNEL_EVENT, ev, None);
    }

    fn creator_check(&self, conn: ConnId, slot: usize) -> Result<(), Error> {
        let ch = self.channel(slot)?;
        if user_of(&self.conns, conn) == ch.creator.as_str() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::NotPermitted,
                "only the channel's creator may do that",
            ))
        }
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
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        if self.find_channel(&channel_id).is_ok() {
            return Err(ErrorCode::ChannelExists.into());
        }
        let count = self.channels.iter().filter(|c| c.is_some()).count();
        let free = self.channels.iter().position(Option::is_none);
        let slot = match free {
            Some(s) if count < self.cfg.limits.max_channels => s,
            _ => return Err(Error::new(ErrorCode::Capacity, "channel limit reached")),
        };
        let creator = session_of(&self.conns, conn)
            .map(|s| s.user_id.clone())
            .ok_or(Error::from(ErrorCode::NotIdentified))?;
        let name = match name {
            Some(n) => n,
            None => {
                let mut n = Name::new();
                let _ = n.push_str(&channel_id);
                n
            }
        };
        let channel = Channel {
            id: channel_id,
            name,
            freq: freq.unwrap_or_default(),
            capacity: capacity.unwrap_or(self.cfg.limits.max_members as u16),
            creator,
            created_at: now.unix_ms,
            members: heapless::Vec::new(),
            floor: Floor::new(FloorTimers {
                max: self.cfg.limits.floor_max,
                ping: self.cfg.limits.floor_ping,
            }),
        };
        let entry = self
            .channels
            .get_mut(slot)
            .ok_or(Error::from(ErrorCode::Internal))?;
        let ch = entry.insert(channel);
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
        let ch = self.channel(slot)?;
        if ch.is_member(conn) {
            return Err(ErrorCode::AlreadyJoined.into());
        }
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
        if ch.members.len() >= usize::from(ch.capacity) {
            return Err(ErrorCode::ChannelFull.into());
        }
        let joined_full = session_of(&self.conns, conn).is_none_or(|s| s.joined.is_full());
        if joined_full {
            return Err(Error::new(
                ErrorCode::Capacity,
                "joined-channel limit per session reached",
            ));
        }
        let ssrc_taken = self
            .channels
            .iter()
            .flatten()
            .flat_map(|c| c.members.iter())
            .any(|m| m.ssrc == ssrc);
        if ssrc_taken {
            return Err(ErrorCode::SsrcInUse.into());
        }
        if !self.peers.has_room() {
            return Err(Error::new(ErrorCode::Capacity, "media peer limit reached"));
        }
        // Server -> client keys: fresh for every join (PROTOCOL.md section 3).
        let mut sdes = [0u8; SDES_KEY_LEN];
        let mut answer_key = "";
        let (inbound, outbound) = match &crypto {
            Some(c) => {
                let mut key = [0u8; MASTER_KEY_LEN];
                let mut salt = [0u8; MASTER_SALT_LEN];
                drv.fill_random(&mut key);
                drv.fill_random(&mut salt);
                let server = MasterKey::new(key, salt);
                answer_key = server.to_sdes(&mut sdes);
                (
                    Some(SrtpContext::new(c.suite, &c.key)),
                    Some(SrtpContext::new(c.suite, &server)),
                )
            }
            None => (None, None),
        };
        let peer = Peer {
            ssrc,
            conn,
            channel: slot as u16,
            gateway_ip: peer.ip,
            inbound,
            outbound,
            latched: None,
            last_rx: Instant::ZERO,
            stats: Default::default(),
        };
        self.peers
            .insert(peer)
            .map_err(|_| Error::new(ErrorCode::Capacity, "media peer limit reached"))?;
        let ch = self.channel_mut(slot)?;
        ch.members
            .push(Member { conn, ssrc })
            .map_err(|_| Error::from(ErrorCode::ChannelFull))?;
        if let Some(s) = self.conn_mut(conn).and_then(|c| c.session.as_mut()) {
            let _ = s.joined.push(slot as u16);
        }
        let Gateway {
            conns,
            channels,
            out,
            cfg,
            ..
        } = self;
        let ch = occupied(channels, slot)?;
        let names = ch.members.iter().map(|m| user_of(conns, m.conn));
        let ack = AckJoin {
            req_op: op::CHANNEL_JOIN,
            channel_id: &ch.id,
            active_members: StrSeq::new(names),
            media: Media {
                host: &cfg.media_host,
                port: cfg.media_port,
            },
            crypto: crypto.as_ref().map(|c| CryptoAnswer {
                suite: c.suite.as_str(),
                key: answer_key,
            }),
        };
        out.send(drv, &[conn], op::ACK, ack, id);
        let others = self.recipients(slot, Some(conn));
        self.channel_event(slot, &others, "join", conn, Some(ssrc), drv);
        let Gateway {
            conns,
            channels,
            out,
            ..
        } = self;
        if let Some(ch) = channels.get(slot).and_then(Option::as_ref) {
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
        if !self.channel(slot)?.is_member(conn) {
            return Err(ErrorCode::NotJoined.into());
        }
        self.remove_member(now, conn, slot as u16, drv);
        let ack = AckPlain {
            req_op: op::CHANNEL_LEAVE,
        };
        self.out.send(drv, &[conn], op::ACK, ack, id);
        Ok(())
    }

    /// Takes `conn` out of the channel in `slot`: the other members get `leave`, and the
    /// session forgets the channel.
    pub(super) fn remove_member(
        &mut self,
        now: Now,
        conn: ConnId,
        slot: u16,
        drv: &mut impl Driver,
    ) {
        let slot = usize::from(slot);
        let ssrc = self
            .channel(slot)
            .ok()
            .and_then(|ch| ch.members.iter().find(|m| m.conn == conn))
            .map(|m| m.ssrc);
        let removed = self
            .channel_mut(slot)
            .map(|ch| ch.remove_member(conn))
            .unwrap_or(false);
        if let Some(ssrc) = ssrc {
            self.peers.remove(ssrc);
        }
        if let Some(s) = self.conn_mut(conn).and_then(|c| c.session.as_mut()) {
            s.joined.retain(|&j| usize::from(j) != slot);
        }
        if !removed {
            return;
        }
        let others = self.recipients(slot, None);
        self.channel_event(slot, &others, "leave", conn, None, drv);
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
        self.creator_check(conn, slot)?;
        let ch = self.channel_mut(slot)?;
        if let Some(c) = capacity {
            if usize::from(c) < ch.members.len() {
                return Err(Error::new(
                    ErrorCode::Malformed,
                    "capacity below the current member count",
                ));
            }
            ch.capacity = c;
        }
        if let Some(n) = name {
            ch.name = n;
        }
        if let Some(f) = freq {
            ch.freq = f;
        }
        let members = self.recipients(slot, None);
        self.channel_event(slot, &members, "update", conn, None, drv);
        let Gateway { channels, out, .. } = self;
        let ch = occupied(channels, slot)?;
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
        let members = self.recipients(slot, None);
        self.channel_event(slot, &members, "delete", conn, None, drv);
        {
            let Gateway { channels, out, .. } = &mut *self;
            let ch = occupied(channels, slot)?;
            out.send(
                drv,
                &[conn],
                op::ACK,
                fields(ch, Some(op::CHANNEL_DELETE)),
                id,
            );
        }
        for m in &members {
            if let Some(s) = self.conn_mut(*m).and_then(|c| c.session.as_mut()) {
                s.joined.retain(|&j| usize::from(j) != slot);
            }
        }
        if let Some(ch) = self.channels.get_mut(slot).and_then(Option::take) {
            for m in &ch.members {
                self.peers.remove(m.ssrc);
            }
        }
        Ok(())
    }

    pub(super) fn channel_list(&mut self, conn: ConnId, id: Option<u32>, drv: &mut impl Driver) {
        let Gateway { channels, out, .. } = self;
        let list = channels.iter().flatten().map(|ch| fields(ch, None));
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
            ..
        } = self;
        let ch = occupied(channels, slot)?;
        let f = fields(ch, None);
        let ack = AckInfo {
            req_op: op::CHANNEL_INFO,
            channel_id: f.channel_id,
            name: f.name,
            freq: f.freq,
            capacity: f.capacity,
            member_count: f.member_count,
            creator: f.creator,
            created_at: f.created_at,
            members: StrSeq::new(ch.members.iter().map(|m| user_of(conns, m.conn))),
            floor: crate::protocol::FloorInfo {
                state: if ch.floor.is_idle() { "idle" } else { "taken" },
                holder: ch.floor.holder().map(|(h, _)| user_of(conns, h)),
                queue: StrSeq::new(ch.floor.queue().map(|(u, _)| user_of(conns, u))),
            },
        };
        out.send(drv, &[conn], op::ACK, ack, id);
        Ok(())
    }

    pub(super) fn message_create(
        &mut self,
        now: Now,
        conn: ConnId,
        channel_id: &str,
        content: &str,
        id: Option<u32>,
        drv: &mut impl Driver,
    ) -> Result<(), Error> {
        let slot = self.find_channel(channel_id)?;
        if !self.channel(slot)?.is_member(conn) {
            return Err(ErrorCode::NotMember.into());
        }
        let members = self.recipients(slot, None);
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
            ..
        } = self;
        let ch = occupied(channels, slot)?;
        let ev = MessageEvent {
            channel_id: &ch.id,
            user_id: user_of(conns, conn),
            content,
            timestamp: now.unix_ms,
        };
        out.send(drv, &members, op::MESSAGE_EVENT, ev, None);
        Ok(())
    }
}

/// The channel in a slot a lookup has just found: its absence is an internal error.
fn occupied(channels: &[Option<Channel>], slot: usize) -> Result<&Channel, Error> {
    channels
        .get(slot)
        .and_then(Option::as_ref)
        .ok_or(Error::from(ErrorCode::Internal))
}
