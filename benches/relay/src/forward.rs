//! The physical limit: a raw UDP forwarder. Receive one datagram, send it unchanged to
//! every destination. No parsing, no crypto, no event loop; the same socket buffers as
//! the daemon's media socket. Runs as a child process of the
//! benchmark (`livechat-relay-bench forward ...`), pinned like the daemon.
//!
//! - `sendto`: a blocking `recvfrom`, then one `sendto` per destination.
//! - `mmsg`: a blocking `recvmmsg` (up to 32, returning after the first), then
//!   `sendmmsg` of every copy (up to 256 per call) pointing at the received buffers.

use std::mem::{size_of, zeroed};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

use crate::sys;

const RX: usize = 32;
const TX: usize = 256;
const BUF: usize = 2048;

/// `forward MODE SECONDS DEST...`: prints `port=N` once bound, then forwards until killed
/// or for at most SECONDS.
pub fn main(args: &[String]) -> Result<(), String> {
    let [mode, secs, dests @ ..] = args else {
        return Err("usage: forward sendto|mmsg SECONDS DEST...".into());
    };
    let secs: u64 = secs.parse().map_err(|e| format!("SECONDS: {e}"))?;
    let dests: Vec<SocketAddr> = dests
        .iter()
        .map(|d| d.parse().map_err(|e| format!("{d}: {e}")))
        .collect::<Result<_, String>>()?;
    let sock = sys::udp_socket(None).map_err(|e| e.to_string())?;
    // The daemon's media socket buffers (daemon/src/server.rs UDP_SOCKET_BUF).
    sys::set_buffers(&sock, 1 << 20);
    let port = sock.local_addr().map_err(|e| e.to_string())?.port();
    println!("port={port}");
    // Bounded in time whatever the parent does.
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        std::process::exit(0);
    });
    match mode.as_str() {
        "sendto" => sendto_loop(&sock, &dests),
        "mmsg" => mmsg_loop(&sock, &dests),
        m => Err(format!("unknown mode {m}")),
    }
}

fn sendto_loop(sock: &UdpSocket, dests: &[SocketAddr]) -> Result<(), String> {
    let mut buf = [0u8; BUF];
    loop {
        let Ok((n, _)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let d = buf.get(..n).unwrap_or_default();
        for dst in dests {
            let _ = sock.send_to(d, dst);
        }
    }
}

fn mmsg_loop(sock: &UdpSocket, dests: &[SocketAddr]) -> Result<(), String> {
    let fd = sock.as_raw_fd();
    let mut bufs = vec![[0u8; BUF]; RX];
    let mut names: Vec<libc::sockaddr_in> = dests.iter().map(|d| sys::sockaddr_v4(*d)).collect();
    // SAFETY: zeroed iovec/mmsghdr are valid; every pointer set below goes into `bufs` or
    // `names`, which live as long as the loop and do not move.
    let mut rx_iov: Vec<libc::iovec> = vec![unsafe { zeroed() }; RX];
    let mut rx_msgs: Vec<libc::mmsghdr> = vec![unsafe { zeroed() }; RX];
    for ((v, m), b) in rx_iov
        .iter_mut()
        .zip(rx_msgs.iter_mut())
        .zip(bufs.iter_mut())
    {
        v.iov_base = b.as_mut_ptr().cast();
        v.iov_len = BUF;
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    let mut tx_iov: Vec<libc::iovec> = vec![unsafe { zeroed() }; TX];
    let mut tx_msgs: Vec<libc::mmsghdr> = vec![unsafe { zeroed() }; TX];
    loop {
        // SAFETY: `rx_msgs` are valid headers (above).
        let n = unsafe {
            libc::recvmmsg(
                fd,
                rx_msgs.as_mut_ptr(),
                RX as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n <= 0 {
            continue;
        }
        let mut k = 0;
        for i in 0..n as usize {
            let len = rx_msgs[i].msg_len as usize;
            for name in names.iter_mut() {
                tx_iov[k].iov_base = bufs[i].as_mut_ptr().cast();
                tx_iov[k].iov_len = len;
                tx_msgs[k].msg_hdr.msg_iov = &mut tx_iov[k];
                tx_msgs[k].msg_hdr.msg_iovlen = 1;
                tx_msgs[k].msg_hdr.msg_name = (name as *mut libc::sockaddr_in).cast();
                tx_msgs[k].msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
                k += 1;
                if k == TX {
                    send_all(fd, &mut tx_msgs[..k]);
                    k = 0;
                }
            }
        }
        send_all(fd, &mut tx_msgs[..k]);
    }
}

fn send_all(fd: i32, msgs: &mut [libc::mmsghdr]) {
    let mut done = 0;
    while done < msgs.len() {
        // SAFETY: valid headers pointing at live buffers (see `mmsg_loop`).
        let r = unsafe {
            libc::sendmmsg(
                fd,
                msgs.as_mut_ptr().add(done),
                (msgs.len() - done) as libc::c_uint,
                0,
            )
        };
        if r <= 0 {
            // Skip the datagram that failed, like the daemon's batch.
            done += 1;
        } else {
            done += r as usize;
        }
    }
}
