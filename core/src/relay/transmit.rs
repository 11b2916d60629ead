//! Where the relay's datagrams go: the driver's socket.

use core::net::SocketAddr;

use crate::config::{MAX_DATAGRAM, SRTP_OVERHEAD};

/// Room a relayed datagram may need: the largest datagram handled plus the SRTP tag.
pub const TX_ROOM: usize = MAX_DATAGRAM + SRTP_OVERHEAD;

/// Where the relay's datagrams go; the driver's socket.
///
/// A driver that batches its sends (`sendmmsg`) implements [`Transmit::send_with`] so the
/// relay builds each copy straight in the batch's buffer. "Taken" then means queued; a
/// later failure of the batched send is the driver's to count.
pub trait Transmit {
    /// Sends one datagram; `false` when it could not (counted as a drop).
    fn send_to(&mut self, dst: SocketAddr, datagram: &[u8]) -> bool;

    /// Sends one datagram that `fill` writes into a buffer of at least [`TX_ROOM`] bytes,
    /// returning its length (`None`: nothing to send). The default builds it on the stack
    /// and calls [`Transmit::send_to`].
    fn send_with<F>(&mut self, dst: SocketAddr, fill: F) -> TxOutcome
    where
        F: FnOnce(&mut [u8]) -> Option<usize>,
        Self: Sized,
    {
        let mut room = [0u8; TX_ROOM];
        let Some(n) = fill(&mut room) else {
            return TxOutcome::NotBuilt;
        };
        match room.get(..n) {
            Some(d) if self.send_to(dst, d) => TxOutcome::Taken(n),
            Some(_) => TxOutcome::Failed,
            None => TxOutcome::NotBuilt,
        }
    }
}

/// What became of a datagram offered to [`Transmit::send_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxOutcome {
    /// Sent or queued: this many bytes.
    Taken(usize),
    /// `fill` declined (it could not build the datagram).
    NotBuilt,
    /// The driver could not take it (a full socket buffer or batch).
    Failed,
}
