//! Thin wrappers over the system calls the benchmark needs: CPU affinity, socket options,
//! `sendmmsg`/`recvmmsg`, receive timestamps, and the kernel's per-socket counters.

use std::collections::HashMap;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// Pins the calling thread (and what it spawns later) to `cpu`.
pub fn pin_self(cpu: usize) -> io::Result<()> {
    pin(0, cpu)
}

fn pin(pid: libc::pid_t, cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(pid, size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Makes the child of `cmd` start pinned to `cpu` (its threads inherit it), as `taskset`.
pub fn pin_child(cmd: &mut Command, cpu: usize) {
    // SAFETY: only an async-signal-safe system call runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || pin(0, cpu));
    }
}

fn setsockopt_int(fd: RawFd, level: i32, name: i32, v: i32) -> io::Result<()> {
    // SAFETY: `v` lives for the call; the length is its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const i32).cast(),
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn getsockopt_int(fd: RawFd, level: i32, name: i32) -> io::Result<i32> {
    let mut v: i32 = 0;
    let mut len = size_of::<i32>() as libc::socklen_t;
    // SAFETY: `v` and `len` live for the call.
    let rc = unsafe { libc::getsockopt(fd, level, name, (&mut v as *mut i32).cast(), &mut len) };
    if rc == 0 {
        Ok(v)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A UDP socket on 127.0.0.1 with an ephemeral port; `rcvbuf` forces the receive buffer
/// (SO_RCVBUFFORCE as root, else SO_RCVBUF, which the kernel caps).
pub fn udp_socket(rcvbuf: Option<usize>) -> io::Result<UdpSocket> {
    let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))?;
    if let Some(b) = rcvbuf {
        set_rcvbuf(&s, b)?;
    }
    Ok(s)
}

/// Sets the receive buffer (the kernel doubles the value for its bookkeeping).
pub fn set_rcvbuf(s: &impl AsRawFd, bytes: usize) -> io::Result<()> {
    let fd = s.as_raw_fd();
    let v = i32::try_from(bytes).unwrap_or(i32::MAX);
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v)
        .or_else(|_| setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, v))
}

/// SO_RCVBUF and SO_SNDBUF as the daemon sets them on its media socket (best effort).
pub fn set_buffers(s: &impl AsRawFd, bytes: usize) {
    let v = i32::try_from(bytes).unwrap_or(i32::MAX);
    let _ = setsockopt_int(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, v);
    let _ = setsockopt_int(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, v);
}

/// The receive buffer the kernel granted.
pub fn rcvbuf(s: &impl AsRawFd) -> usize {
    getsockopt_int(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF).unwrap_or(0) as usize
}

/// Asks for kernel receive timestamps (SO_TIMESTAMPNS, CLOCK_REALTIME).
pub fn enable_rx_timestamps(s: &UdpSocket) -> io::Result<()> {
    setsockopt_int(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1)
}

/// CLOCK_REALTIME in nanoseconds (the clock of SO_TIMESTAMPNS).
pub fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Reads every datagram queued on a non-blocking socket; returns how many.
pub fn drain(s: &UdpSocket) -> u64 {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    let _ = s.set_nonblocking(true);
    while s.recv(&mut buf).is_ok() {
        n += 1;
    }
    n
}

/// Per IPv4 UDP socket on 127.0.0.1, by local port: the bytes queued for reading and the
/// drop counter (the last column of /proc/net/udp: datagrams the kernel dropped, e.g. at
/// a full receive buffer).
pub fn udp_table() -> HashMap<u16, (u64, u64)> {
    let mut out = HashMap::new();
    let Ok(text) = std::fs::read_to_string("/proc/net/udp") else {
        return out;
    };
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(queues), Some(drops)) = (f.get(1), f.get(4), f.last()) else {
            continue;
        };
        let rxq = queues
            .split_once(':')
            .and_then(|(_, r)| u64::from_str_radix(r, 16).ok())
            .unwrap_or(0);
        let Some((ip, port)) = local.split_once(':') else {
            continue;
        };
        if ip != "0100007F" {
            continue;
        }
        if let (Ok(port), Ok(d)) = (u16::from_str_radix(port, 16), drops.parse::<u64>()) {
            out.insert(port, (rxq, d));
        }
    }
    out
}

/// utime + stime of a process, in seconds.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime is field 14, stime 15.
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) as f64 / hz
}

/// VmRSS and VmHWM of a process in KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A C socket address for an IPv4 address.
pub fn sockaddr_v4(a: SocketAddr) -> libc::sockaddr_in {
    // SAFETY: all-zero bytes are a valid sockaddr_in.
    let mut sin: libc::sockaddr_in = unsafe { zeroed() };
    if let SocketAddr::V4(a) = a {
        sin.sin_family = libc::AF_INET as libc::sa_family_t;
        sin.sin_port = a.port().to_be();
        sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
    }
    sin
}

/// Sends `bufs[i][..lens[i]]` for every i to `dst` with one `sendmmsg` (retrying the rest
/// after a partial send); returns how many the kernel took.
pub fn send_many(fd: RawFd, bufs: &mut [[u8; 256]], lens: &[usize], dst: SocketAddr) -> usize {
    const MAX: usize = 64;
    let mut sin = sockaddr_v4(dst);
    let n = bufs.len().min(lens.len()).min(MAX);
    // SAFETY: zeroed iovec/mmsghdr are valid; the pointers set below go into `bufs` and
    // `sin`, which outlive the call.
    let mut iov: [libc::iovec; MAX] = unsafe { zeroed() };
    let mut msgs: [libc::mmsghdr; MAX] = unsafe { zeroed() };
    for i in 0..n {
        iov[i].iov_base = bufs[i].as_mut_ptr().cast();
        iov[i].iov_len = lens[i];
        msgs[i].msg_hdr.msg_iov = &mut iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = (&mut sin as *mut libc::sockaddr_in).cast();
        msgs[i].msg_hdr.msg_namelen = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    }
    let mut done = 0;
    while done < n {
        // SAFETY: `msgs[done..n]` are valid headers (above).
        let r = unsafe {
            libc::sendmmsg(
                fd,
                msgs.as_mut_ptr().add(done),
                (n - done) as libc::c_uint,
                0,
            )
        };
        if r <= 0 {
            break;
        }
        done += r as usize;
    }
    done
}

/// Blocking receive of one datagram with its kernel timestamp (ns, CLOCK_REALTIME):
/// `(length, timestamp)`, or `None` on timeout or error.
pub fn recv_timestamped(fd: RawFd, buf: &mut [u8]) -> Option<(usize, u64)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = [0u64; 16];
    // SAFETY: a zeroed msghdr is valid; the pointers go into locals that outlive the call.
    let mut msg: libc::msghdr = unsafe { zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<[u64; 16]>() as _;
    // SAFETY: `msg` is valid (above).
    let n = unsafe { libc::recvmsg(fd, &mut msg, 0) };
    if n < 0 {
        return None;
    }
    let mut ts = 0u64;
    // SAFETY: the CMSG macros walk the control buffer the kernel filled, within
    // `msg_controllen`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_TIMESTAMPNS {
                let t = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                ts = t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    Some((n as usize, ts))
}

/// CPUs online (not just those this process may run on).
pub fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(0) as usize
}
