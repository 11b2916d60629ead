"""libsrtp peer for core/tests/srtp_interop.rs, through pylibsrtp (libsrtp 2.7 on OpenSSL).

One command per line on stdin, one answer per line on stdout:

    new NAME in|out PROFILE KEYHEX make session NAME (ssrc_any_inbound or _outbound),
                                   PROFILE 80, 32, gcm128 or gcm256, KEYHEX the master
                                   key then salt (30, 28 or 44 bytes)
    p|u|pc|uc NAME HEX             protect, unprotect, protect_rtcp, unprotect_rtcp
    version                        the libsrtp and OpenSSL versions

Answers are `ok [HEX]` or `err MESSAGE` (libsrtp's error text). A missing pylibsrtp is
an ImportError and a non-zero exit: the Rust tests then fail, they do not skip.
"""

import ctypes
import sys

import pylibsrtp
from pylibsrtp import Error, Policy, Session

PROFILES = {
    "80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
    "gcm128": Policy.SRTP_PROFILE_AEAD_AES_128_GCM,
    "gcm256": Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
}
DIRECTIONS = {"in": Policy.SSRC_ANY_INBOUND, "out": Policy.SSRC_ANY_OUTBOUND}


def version():
    lib = ctypes.CDLL(pylibsrtp._binding.__file__)
    lib.srtp_get_version_string.restype = ctypes.c_char_p
    lib.OpenSSL_version.restype = ctypes.c_char_p
    lib.OpenSSL_version.argtypes = [ctypes.c_int]
    return "%s, %s" % (
        lib.srtp_get_version_string().decode(),
        lib.OpenSSL_version(0).decode(),
    )


def main():
    sessions = {}
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        cmd = words[0]
        try:
            if cmd == "version":
                answer = "ok " + version()
            elif cmd == "new":
                name, direction, profile, key = words[1:5]
                policy = Policy(
                    key=bytes.fromhex(key),
                    ssrc_type=DIRECTIONS[direction],
                    srtp_profile=PROFILES[profile],
                )
                sessions[name] = Session(policy=policy)
                answer = "ok"
            else:
                session = sessions[words[1]]
                packet = bytes.fromhex(words[2]) if len(words) > 2 else b""
                op = {
                    "p": session.protect,
                    "u": session.unprotect,
                    "pc": session.protect_rtcp,
                    "uc": session.unprotect_rtcp,
                }[cmd]
                answer = "ok " + op(packet).hex()
        except Error as e:
            answer = "err " + str(e)
        print(answer, flush=True)


if __name__ == "__main__":
    main()
