//! The media socket's batched I/O: `recvmmsg` into a reused receive batch, the relay
//! writing each copy straight into a reused send batch ([`Transmit::send_with`]), flushed
//! with `sendmmsg`. No allocation after start-up; no waiting: a send the kernel refuses is
//! a counted drop.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

use livechat_core::relay::{TX_ROOM, Transmit, TxOutcome};

use super::UDP_BUF;

/// Datagrams one `recvmmsg` takes.
pub(crate) const RX_BATCH: usize = 32;
/// Datagrams one `sendmmsg` carries (a batch fills up and is flushed mid-input when the
/// fan-out is large).
pub(crate) const TX_BATCH: usize = 256;

/// The receive side: buffers and source addresses, reused.
///
/// The `mmsghdr`s and `iovec`s are built once and point into the heap buffers beside them
/// (which never move); a call only resets the fields the kernel writes back.
pub(crate) struct RxBatch {
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iov: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    count: usize,
}

impl RxBatch {
    pub(crate) fn new() -> Self {
        let mut b = RxBatch {
            bufs: vec![0; RX_BATCH * UDP_BUF],
            // SAFETY: all-zero bytes are valid values of these plain C structs (null
            // pointers, zero lengths).
            addrs: vec![unsafe { zeroed() }; RX_BATCH],
            iov: vec![unsafe { zeroed() }; RX_BATCH],
            msgs: vec![unsafe { zeroed() }; RX_BATCH],
            count: 0,
        };
        for (((v, m), buf), a) in b
            .iov
            .iter_mut()
            .zip(b.msgs.iter_mut())
            .zip(b.bufs.chunks_exact_mut(UDP_BUF))
            .zip(b.addrs.iter_mut())
        {
            v.iov_base = buf.as_mut_ptr().cast();
            v.iov_len = UDP_BUF;
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m.msg_hdr.msg_name = (a as *mut libc::sockaddr_storage).cast();
        }
        b
    }

    /// One `recvmmsg(MSG_DONTWAIT)` on `fd`: how many datagrams arrived.
    pub(crate) fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        for m in &mut self.msgs {
            m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_len = 0;
        }
        // SAFETY: `msgs` holds RX_BATCH headers whose pointers go into `bufs`, `addrs` and
        // `iov`, heap buffers owned by `self` that stay put and are not otherwise borrowed
        // during the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.msgs.as_mut_ptr(),
                RX_BATCH as libc::c_uint,
                // glibc takes the flags as c_int, musl as c_uint.
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.count = 0;
            return Err(io::Error::last_os_error());
        }
        self.count = n as usize;
        Ok(self.count)
    }

    /// The `i`th datagram of the last batch and its source (`None` for an address family
    /// other than IPv4 or IPv6).
    pub(crate) fn get(&mut self, i: usize) -> Option<(SocketAddr, &mut [u8])> {
        if i >= self.count {
            return None;
        }
        let src = from_storage(self.addrs.get(i)?)?;
        let len = (self.msgs.get(i)?.msg_len as usize).min(UDP_BUF);
        let buf = self.bufs.get_mut(i * UDP_BUF..i * UDP_BUF + len)?;
        Some((src, buf))
    }
}

/// The send side, the relay's [`Transmit`]: datagrams queued in place, sent by
/// [`TxBatch::flush`] (and by `send_with` itself when the batch is full).
pub(crate) struct TxBatch {
    fd: RawFd,
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_storage>,
    iov: Vec<libc::iovec>,
    msgs: Vec<libc::mmsghdr>,
    count: usize,
    /// Datagrams the kernel refused (a full send buffer): counted drops.
    pub(crate) failed: u64,
    /// `sendmmsg` calls.
    pub(crate) calls: u64,
}

impl TxBatch {
    pub(crate) fn new(fd: RawFd) -> Self {
        let mut b = TxBatch {
            fd,
            bufs: vec![0; TX_BATCH * TX_ROOM],
            // SAFETY: all-zero bytes are valid values of these plain C structs.
            addrs: vec![unsafe { zeroed() }; TX_BATCH],
            iov: vec![unsafe { zeroed() }; TX_BATCH],
            msgs: vec![unsafe { zeroed() }; TX_BATCH],
            count: 0,
            failed: 0,
            calls: 0,
        };
        for (((v, m), buf), a) in b
            .iov
            .iter_mut()
            .zip(b.msgs.iter_mut())
            .zip(b.bufs.chunks_exact_mut(TX_ROOM))
            .zip(b.addrs.iter_mut())
        {
            v.iov_base = buf.as_mut_ptr().cast();
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m.msg_hdr.msg_name = (a as *mut libc::sockaddr_storage).cast();
        }
        b
    }

    /// Sends everything queued. A datagram the kernel refuses is counted and skipped;
    /// a full send buffer (`EAGAIN`) drops the rest of the batch rather than wait.
    pub(crate) fn flush(&mut self) {
        let total = self.count;
        self.count = 0;
        let mut done = 0;
        while done < total {
            let Some(rest) = self.msgs.get_mut(done..total) else {
                break;
            };
            self.calls += 1;
            // SAFETY: `rest` are headers built in `new` whose pointers go into heap
            // buffers owned by `self`, with lengths set by `send_with`.
            let n = unsafe {
                libc::sendmmsg(
                    self.fd,
                    rest.as_mut_ptr(),
                    rest.len() as libc::c_uint,
                    libc::MSG_DONTWAIT as _,
                )
            };
            if n > 0 {
                done += n as usize;
                continue;
            }
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => {}
                Some(libc::EAGAIN | libc::ENOBUFS) => {
                    self.failed += (total - done) as u64;
                    break;
                }
                // This datagram cannot go (e.g. an unreachable address): skip it.
                _ => {
                    self.failed += 1;
                    done += 1;
                }
            }
        }
    }
}

impl Transmit for TxBatch {
    fn send_to(&mut self, dst: SocketAddr, datagram: &[u8]) -> bool {
        let n = datagram.len();
        matches!(
            self.send_with(dst, |room| {
                room.get_mut(..n)?.copy_from_slice(datagram);
                Some(n)
            }),
            TxOutcome::Taken(_)
        )
    }

    fn send_with<F>(&mut self, dst: SocketAddr, fill: F) -> TxOutcome
    where
        F: FnOnce(&mut [u8]) -> Option<usize>,
    {
        if self.count == TX_BATCH {
            self.flush();
        }
        let i = self.count;
        let Some(room) = self.bufs.get_mut(i * TX_ROOM..(i + 1) * TX_ROOM) else {
            return TxOutcome::Failed;
        };
        let Some(n) = fill(room).filter(|&n| n <= TX_ROOM) else {
            return TxOutcome::NotBuilt;
        };
        let (Some(a), Some(v), Some(m)) = (
            self.addrs.get_mut(i),
            self.iov.get_mut(i),
            self.msgs.get_mut(i),
        ) else {
            return TxOutcome::Failed;
        };
        m.msg_hdr.msg_namelen = to_storage(dst, a);
        v.iov_len = n;
        self.count += 1;
        TxOutcome::Taken(n)
    }
}

/// Asks for `bytes` of receive and send buffer on `socket`; best effort (the kernel caps
/// it, and a failure leaves the default).
pub(crate) fn set_buffers(socket: &impl std::os::fd::AsRawFd, bytes: usize) {
    let v = i32::try_from(bytes).unwrap_or(i32::MAX);
    for opt in [libc::SO_RCVBUF, libc::SO_SNDBUF] {
        // SAFETY: `v` lives for the call and the length is its size.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&v as *const i32).cast(),
                size_of::<i32>() as libc::socklen_t,
            );
        }
    }
}

/// Writes `addr` as a C socket address; returns its length.
fn to_storage(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    let p: *mut libc::sockaddr_storage = out;
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: `sockaddr_storage` is large and aligned enough for any socket
            // address type (that is its purpose).
            let sin = unsafe { &mut *p.cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let sin6 = unsafe { &mut *p.cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

/// Reads a C socket address written by the kernel.
fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    let p: *const libc::sockaddr_storage = s;
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a `sockaddr_in`.
            let sin = unsafe { &*p.cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a `sockaddr_in6`.
            let sin6 = unsafe { &*p.cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_round_trip() {
        for a in ["127.0.0.1:10000", "[::1]:443", "[fe80::1%2]:9"] {
            let a: SocketAddr = a.parse().expect("an address");
            // SAFETY: all-zero bytes are a valid `sockaddr_storage`.
            let mut s: libc::sockaddr_storage = unsafe { zeroed() };
            to_storage(a, &mut s);
            assert_eq!(from_storage(&s), Some(a));
        }
    }
}
