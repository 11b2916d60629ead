//! libsrtp 2.x, loaded at run time from the pylibsrtp wheel's `_binding.abi3.so` (libsrtp
//! 2.7.0 statically linked with OpenSSL 3.5, its `srtp_*` symbols exported), for the SRTP
//! benchmark. `.ci/deps-srtp.sh` installs it. Any other libsrtp 2.x shared object can be
//! loaded beside it (`Libsrtp::load_path`).
//!
//! The binding is a Python extension: it refers to a few libpython symbols (its cffi glue),
//! so that Python's shared library is loaded first, globally, to resolve them. No Python
//! code runs: the benchmark calls libsrtp's C functions directly.

use std::ffi::{CStr, c_char, c_int, c_ulong, c_void};
use std::process::Command;

use libloading::os::unix::{Library as UnixLibrary, RTLD_GLOBAL, RTLD_NOW};
use libloading::{Library, Symbol};

/// Prints the path of pylibsrtp's binding, then of the Python shared library it refers to.
const FIND_BINDING: &str = "import os, sysconfig, pylibsrtp._binding as b; print(b.__file__); \
    print(os.path.join(sysconfig.get_config_var('LIBDIR'), sysconfig.get_config_var('INSTSONAME')))";

/// `srtp_profile_aes128_cm_sha1_80` / `_32` (`srtp.h`).
pub const PROFILE_80: u32 = 1;
/// See [`PROFILE_80`].
pub const PROFILE_32: u32 = 2;
/// `srtp_profile_aead_aes_128_gcm` / `_256_gcm` (`srtp.h`).
pub const PROFILE_AEAD_128_GCM: u32 = 7;
/// See [`PROFILE_AEAD_128_GCM`].
pub const PROFILE_AEAD_256_GCM: u32 = 8;

/// `srtp_crypto_policy_t` of libsrtp 2.x.
#[repr(C)]
#[derive(Default)]
struct CryptoPolicy {
    cipher_type: u32,
    cipher_key_len: c_int,
    auth_type: u32,
    auth_key_len: c_int,
    auth_tag_len: c_int,
    sec_serv: u32,
}

/// `srtp_policy_t` of libsrtp 2.x (2.3 to 2.7 share this layout).
#[repr(C)]
struct Policy {
    ssrc_type: u32,
    ssrc_value: u32,
    rtp: CryptoPolicy,
    rtcp: CryptoPolicy,
    key: *const u8,
    keys: *mut c_void,
    num_master_keys: c_ulong,
    deprecated_ekt: *mut c_void,
    window_size: c_ulong,
    allow_repeat_tx: c_int,
    enc_xtn_hdr: *mut c_int,
    enc_xtn_hdr_count: c_int,
    next: *mut Policy,
}

// The sizes pylibsrtp's cffi reports for libsrtp 2.7 on x86_64.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<Policy>() == 128 && size_of::<CryptoPolicy>() == 24);

/// `ssrc_any_inbound` / `ssrc_any_outbound`.
const SSRC_ANY_INBOUND: u32 = 2;
const SSRC_ANY_OUTBOUND: u32 = 3;

type SrtpT = *mut c_void;
type ProtectFn = unsafe extern "C" fn(SrtpT, *mut c_void, *mut c_int) -> c_int;

/// The loaded library and the entry points the benchmark calls.
pub struct Libsrtp {
    protect: ProtectFn,
    unprotect: ProtectFn,
    /// What the library says of itself, e.g. `libsrtp2 2.7.0, OpenSSL 3.5.4 30 Sep 2025`.
    pub version: String,
    lib: Library,
    _libpython: Option<UnixLibrary>,
}

/// One libsrtp session (`srtp_t`) under one policy.
pub struct Session<'a> {
    lib: &'a Libsrtp,
    srtp: SrtpT,
}

impl Libsrtp {
    /// Loads pylibsrtp's binding, found through `python3`, with the Python shared library it
    /// refers to.
    pub fn load_pylibsrtp() -> Result<Libsrtp, String> {
        let out = Command::new("python3")
            .args(["-c", FIND_BINDING])
            .output()
            .map_err(|e| format!("python3: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "pylibsrtp not found (run .ci/deps-srtp.sh): {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let out = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut lines = out.lines();
        let (binding, libpython) = (lines.next().unwrap_or_default(), lines.next());
        // SAFETY: loading runs the library's initialisers, which set up no interpreter and
        // call nothing of ours.
        let libpython = match libpython {
            Some(p) => Some(
                unsafe { UnixLibrary::open(Some(p), RTLD_NOW | RTLD_GLOBAL) }
                    .map_err(|e| format!("{p}: {e}"))?,
            ),
            None => None,
        };
        Libsrtp::load(binding, libpython)
    }

    /// Loads a libsrtp 2.x shared object, e.g. one built on the system's OpenSSL.
    pub fn load_path(path: &str) -> Result<Libsrtp, String> {
        Libsrtp::load(path, None)
    }

    fn load(path: &str, libpython: Option<UnixLibrary>) -> Result<Libsrtp, String> {
        // SAFETY: as above; libsrtp's initialisers only set up its own tables.
        let lib = unsafe { Library::new(path) }.map_err(|e| format!("{path}: {e}"))?;
        // SAFETY: the signatures are libsrtp 2.x's (`srtp.h`) and OpenSSL's.
        unsafe {
            let init: Symbol<unsafe extern "C" fn() -> c_int> = sym(&lib, b"srtp_init\0")?;
            check(init(), "srtp_init")?;
            let protect = *sym::<ProtectFn>(&lib, b"srtp_protect\0")?;
            let unprotect = *sym::<ProtectFn>(&lib, b"srtp_unprotect\0")?;
            let srtp_version: Symbol<unsafe extern "C" fn() -> *const c_char> =
                sym(&lib, b"srtp_get_version_string\0")?;
            let mut version = CStr::from_ptr(srtp_version())
                .to_string_lossy()
                .into_owned();
            if let Ok(ssl) =
                sym::<unsafe extern "C" fn(c_int) -> *const c_char>(&lib, b"OpenSSL_version\0")
            {
                version += ", ";
                version += &CStr::from_ptr(ssl(0)).to_string_lossy();
            }
            Ok(Libsrtp {
                protect,
                unprotect,
                version,
                lib,
                _libpython: libpython,
            })
        }
    }

    /// A session for any inbound (`inbound`) or outbound SSRC, keyed with the master key and
    /// salt of the profile's lengths (30, 28 or 44 bytes), with libsrtp's default 128-packet
    /// replay window.
    pub fn session(&self, profile: u32, inbound: bool, key_salt: &[u8]) -> Session<'_> {
        let mut policy = Policy {
            ssrc_type: if inbound {
                SSRC_ANY_INBOUND
            } else {
                SSRC_ANY_OUTBOUND
            },
            ssrc_value: 0,
            rtp: CryptoPolicy::default(),
            rtcp: CryptoPolicy::default(),
            key: key_salt.as_ptr(),
            keys: std::ptr::null_mut(),
            num_master_keys: 0,
            deprecated_ekt: std::ptr::null_mut(),
            window_size: 0,
            allow_repeat_tx: 0,
            enc_xtn_hdr: std::ptr::null_mut(),
            enc_xtn_hdr_count: 0,
            next: std::ptr::null_mut(),
        };
        let mut srtp: SrtpT = std::ptr::null_mut();
        // SAFETY: libsrtp 2.x signatures; `policy` and the key outlive the calls (srtp_create
        // copies what it keeps).
        unsafe {
            type SetFn = unsafe extern "C" fn(*mut CryptoPolicy, u32) -> c_int;
            let set_rtp = sym::<SetFn>(&self.lib, b"srtp_crypto_policy_set_from_profile_for_rtp\0");
            let set_rtcp =
                sym::<SetFn>(&self.lib, b"srtp_crypto_policy_set_from_profile_for_rtcp\0");
            let create = sym::<unsafe extern "C" fn(*mut SrtpT, *const Policy) -> c_int>(
                &self.lib,
                b"srtp_create\0",
            );
            let (Ok(set_rtp), Ok(set_rtcp), Ok(create)) = (set_rtp, set_rtcp, create) else {
                panic!("libsrtp lacks srtp_create or the profile setters");
            };
            assert_eq!(set_rtp(&mut policy.rtp, profile), 0);
            assert_eq!(set_rtcp(&mut policy.rtcp, profile), 0);
            assert_eq!(create(&mut srtp, &policy), 0, "srtp_create");
        }
        Session { lib: self, srtp }
    }
}

impl Session<'_> {
    /// `srtp_protect` on `buf[..len]` in place; `buf` needs room for the tag.
    pub fn protect(&mut self, buf: &mut [u8], len: usize) -> Result<usize, c_int> {
        assert!(buf.len() >= len + 16);
        let mut n = len as c_int;
        // SAFETY: `buf` holds `len` bytes plus the maximum tag; libsrtp writes within it.
        let rc = unsafe { (self.lib.protect)(self.srtp, buf.as_mut_ptr().cast(), &mut n) };
        if rc == 0 { Ok(n as usize) } else { Err(rc) }
    }

    /// `srtp_unprotect` on all of `buf` in place.
    pub fn unprotect(&mut self, buf: &mut [u8]) -> Result<usize, c_int> {
        let mut n = buf.len() as c_int;
        // SAFETY: libsrtp reads and writes within the `n` bytes of `buf`.
        let rc = unsafe { (self.lib.unprotect)(self.srtp, buf.as_mut_ptr().cast(), &mut n) };
        if rc == 0 { Ok(n as usize) } else { Err(rc) }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        // SAFETY: `srtp` came from srtp_create and is freed once.
        unsafe {
            if let Ok(dealloc) =
                sym::<unsafe extern "C" fn(SrtpT) -> c_int>(&self.lib.lib, b"srtp_dealloc\0")
            {
                dealloc(self.srtp);
            }
        }
    }
}

/// A symbol of `lib`, or an error naming it.
///
/// # Safety
/// `T` must be the symbol's type.
unsafe fn sym<'l, T>(lib: &'l Library, name: &[u8]) -> Result<Symbol<'l, T>, String> {
    // SAFETY: the caller gives the right type.
    unsafe { lib.get::<T>(name) }.map_err(|e| format!("{}: {e}", String::from_utf8_lossy(name)))
}

fn check(rc: c_int, what: &str) -> Result<(), String> {
    if rc == 0 {
        Ok(())
    } else {
        Err(format!("{what} failed: {rc}"))
    }
}
