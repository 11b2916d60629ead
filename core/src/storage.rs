//! Storage for the core's tables, provided by the driver and sized from its settings.
//!
//! The core allocates nothing: as smoltcp's `SocketSet` takes its sockets' storage, the
//! [`Gateway`](crate::gateway::Gateway) takes a [`Tables`] of borrowed storages. Each table
//! grows by [`Table::push`] up to its capacity and never shrinks (freed slots are reused), so
//! a slot never used is never written: a daemon backs the tables with `Vec`s reserved once
//! at start (the `alloc` feature implements [`Table`] for `Vec`), whose untouched pages cost
//! no resident memory; a microcontroller backs them with `heapless::Vec`s in static memory.
//!
//! [`Capacities`] computes the size of every table from [`Limits`].

use crate::config::{Limits, MAX_UNIDENTIFIED};
use crate::gateway::{Channel, Conn};
use crate::relay::Endpoint;

/// A vector with a fixed capacity: the storage of one table. `Send`, so a driver may build
/// the core on one thread and run it on another.
pub trait Table<T>: Send {
    /// The slots in use so far (never fewer than at any earlier time, except after
    /// [`Table::clear`]).
    fn as_slice(&self) -> &[T];
    /// The slots in use so far, mutably.
    fn as_mut_slice(&mut self) -> &mut [T];
    /// Appends a slot, or gives `item` back when the table is at its capacity. It never
    /// reallocates.
    fn push(&mut self, item: T) -> Result<(), T>;
    /// Drops every slot (the memory stays with the storage).
    fn clear(&mut self);
    /// Slots the storage can hold.
    fn capacity(&self) -> usize;
}

impl<T: Send, const N: usize> Table<T> for heapless::Vec<T, N> {
    fn as_slice(&self) -> &[T] {
        self
    }
    fn as_mut_slice(&mut self) -> &mut [T] {
        self
    }
    fn push(&mut self, item: T) -> Result<(), T> {
        heapless::Vec::push(self, item)
    }
    fn clear(&mut self) {
        heapless::Vec::clear(self);
    }
    fn capacity(&self) -> usize {
        N
    }
}

#[cfg(any(feature = "alloc", test))]
extern crate alloc;

/// A `Vec` is a table of the capacity it was reserved with (`Vec::with_capacity`); `push`
/// refuses rather than grow it, so the table never reallocates nor moves.
#[cfg(any(feature = "alloc", test))]
impl<T: Send> Table<T> for alloc::vec::Vec<T> {
    fn as_slice(&self) -> &[T] {
        self
    }
    fn as_mut_slice(&mut self) -> &mut [T] {
        self
    }
    fn push(&mut self, item: T) -> Result<(), T> {
        if self.len() < alloc::vec::Vec::capacity(self) {
            alloc::vec::Vec::push(self, item);
            Ok(())
        } else {
            Err(item)
        }
    }
    fn clear(&mut self) {
        alloc::vec::Vec::clear(self);
    }
    fn capacity(&self) -> usize {
        alloc::vec::Vec::capacity(self)
    }
}

/// One SSRC index slot: `ssrc << 32 | (peer slot + 1)`, zero when empty, so an index
/// allocated zeroed (`vec![0u64; n]`, a zeroed static) is empty and untouched.
pub type IndexSlot = u64;

/// Every table the gateway keeps, each in storage the driver provides.
pub struct Tables<'a> {
    /// Gateway connections with their identified sessions; capacity
    /// [`Capacities::connections`].
    pub conns: &'a mut dyn Table<Conn>,
    /// Channels; capacity [`Capacities::channels`].
    pub channels: &'a mut dyn Table<Option<Channel>>,
    /// Media endpoints, one per channel membership (the member lists of every channel);
    /// capacity [`Capacities::peers`].
    pub endpoints: &'a mut dyn Table<Option<Endpoint>>,
    /// The open-addressing SSRC index over the endpoints: all zeros,
    /// [`Capacities::ssrc_index`] slots (a power of two at least twice the endpoints).
    pub ssrc_index: &'a mut [IndexSlot],
    /// The index of the endpoints by latched address: all zeros, [`Capacities::addr_index`]
    /// slots (a power of two at least twice the endpoints).
    pub addr_index: &'a mut [IndexSlot],
}

/// The size of each table for a set of [`Limits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacities {
    /// Connections: the sessions plus [`MAX_UNIDENTIFIED`].
    pub connections: usize,
    /// Channels.
    pub channels: usize,
    /// Channel memberships (media endpoints, `LIVECHAT_MAX_PEERS`).
    pub peers: usize,
    /// SSRC index slots.
    pub ssrc_index: usize,
    /// Latched-address index slots.
    pub addr_index: usize,
}

impl Capacities {
    /// The capacities `limits` ask for.
    pub fn of(limits: &Limits) -> Capacities {
        let l = limits.clamped();
        Capacities {
            connections: l.max_sessions.saturating_add(MAX_UNIDENTIFIED),
            channels: l.max_channels,
            peers: l.max_peers,
            // Room for every endpoint's SSRCs (a WebRTC client's audio, video and RTX);
            // the index stays at most half full. Zeroed memory that is never touched
            // costs nothing resident.
            ssrc_index: l
                .max_peers
                .saturating_mul(crate::config::ENDPOINT_SSRCS * 2)
                .next_power_of_two(),
            addr_index: l.max_peers.saturating_mul(2).next_power_of_two(),
        }
    }
}

/// Which table could not be reserved, and why.
#[cfg(any(feature = "alloc", test))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReserveError {
    /// The table: `"connections"`, `"channels"`, `"peers"`, `"ssrc_index"` or
    /// `"addr_index"`.
    pub table: &'static str,
    /// Slots asked for.
    pub slots: usize,
    /// The allocator's answer.
    pub error: alloc::collections::TryReserveError,
}

#[cfg(any(feature = "alloc", test))]
impl Tables<'static> {
    /// Tables in vectors reserved to `c` (each filled only as its slots are first used; the
    /// SSRC index allocated zeroed, which an operating system maps lazily) that live for
    /// the rest of the process: for a driver that builds its core once.
    pub fn reserve(c: &Capacities) -> Result<Tables<'static>, ReserveError> {
        use alloc::boxed::Box;
        use alloc::vec::Vec;
        fn room<T>(table: &'static str, slots: usize) -> Result<Vec<T>, ReserveError> {
            let mut v = Vec::new();
            v.try_reserve_exact(slots).map_err(|error| ReserveError {
                table,
                slots,
                error,
            })?;
            Ok(v)
        }
        let conns: Vec<Conn> = room("connections", c.connections)?;
        let channels: Vec<Option<Channel>> = room("channels", c.channels)?;
        let endpoints: Vec<Option<Endpoint>> = room("peers", c.peers)?;
        // `vec![0; n]` asks for zeroed memory without writing it, but aborts when that
        // fails: reserving the same size first turns a refusal into an error instead.
        drop(room::<IndexSlot>("ssrc_index", c.ssrc_index)?);
        let ssrc_index: Vec<IndexSlot> = alloc::vec![0; c.ssrc_index];
        drop(room::<IndexSlot>("addr_index", c.addr_index)?);
        let addr_index: Vec<IndexSlot> = alloc::vec![0; c.addr_index];
        Ok(Tables {
            conns: Box::leak(Box::new(conns)),
            channels: Box::leak(Box::new(channels)),
            endpoints: Box::leak(Box::new(endpoints)),
            ssrc_index: Box::leak(ssrc_index.into_boxed_slice()),
            addr_index: Box::leak(addr_index.into_boxed_slice()),
        })
    }
}
