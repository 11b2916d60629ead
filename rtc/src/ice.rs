//! ICE-lite connectivity checks (RFC 8445 section 2.5, RFC 5389): the server only answers
//! Binding requests, it never sends checks of its own.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |0 0|     STUN Message Type     |         Message Length        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Magic Cookie                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! |                     Transaction ID (96 bits)                  |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//! (RFC 5389 section 6.) Parsing, the FINGERPRINT check and the MESSAGE-INTEGRITY check are
//! `stun-types`'; the success response is written here, because its shape is fixed
//! (XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT) and writing it into one reused
//! buffer costs no allocation per check.

use std::net::SocketAddr;

use stun_types::attribute::{AttributeStaticType, AttributeType, MessageIntegrity, Username};
use stun_types::message::{BINDING, IntegrityKey, Message, MessageClass, ShortTermCredentials};

/// RFC 5389 section 6: the magic cookie.
const MAGIC_COOKIE: u32 = 0x2112_A442;
/// RFC 5389 section 15.5: FINGERPRINT is the CRC-32 XORed with this.
const FINGERPRINT_XOR: u32 = 0x5354_554E;
/// RFC 8445 section 16.1: USE-CANDIDATE (no value).
const USE_CANDIDATE: AttributeType = AttributeType::new(0x0025);
/// Attribute types of the success response (RFC 5389 section 18.2).
const XOR_MAPPED_ADDRESS: u16 = 0x0020;
const MESSAGE_INTEGRITY: u16 = 0x0008;
const SOFTWARE: u16 = 0x8022;
const FINGERPRINT: u16 = 0x8028;

/// Why a STUN datagram was dropped without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StunDrop {
    /// Not a STUN message, a bad FINGERPRINT, or a Binding request without a
    /// `<server ufrag>:<client ufrag>` USERNAME.
    Malformed,
    /// A well-formed message that is not a Binding request (indications, responses).
    Other,
}

/// A Binding request, parsed but not yet authenticated.
pub(crate) struct Request<'a> {
    msg: Message<'a>,
    username: &'a str,
    split: usize,
    /// USE-CANDIDATE is present (RFC 8445 section 7.3.1.5: the controlling agent nominates).
    pub(crate) use_candidate: bool,
}

impl<'a> Request<'a> {
    /// Parses `buf` as a Binding request with a USERNAME of the ICE form.
    pub(crate) fn parse(buf: &'a [u8]) -> Result<Request<'a>, StunDrop> {
        let msg = Message::from_bytes(buf).map_err(|_| StunDrop::Malformed)?;
        if !msg.has_class(MessageClass::Request) || !msg.has_method(BINDING) {
            return Err(StunDrop::Other);
        }
        // Borrow the USERNAME bytes from `buf` itself, so the str outlives `msg`'s borrows.
        let username = username_in(buf, &msg).ok_or(StunDrop::Malformed)?;
        let split = username.find(':').ok_or(StunDrop::Malformed)?;
        let use_candidate = msg.has_attribute(USE_CANDIDATE);
        Ok(Request {
            msg,
            username,
            split,
            use_candidate,
        })
    }

    /// The server's ufrag: the part of USERNAME before the colon (RFC 8445 section 7.2.2).
    pub(crate) fn local_ufrag(&self) -> &'a str {
        &self.username[..self.split]
    }

    /// The client's ufrag: the part after the colon.
    pub(crate) fn remote_ufrag(&self) -> &'a str {
        &self.username[self.split + 1..]
    }

    /// MESSAGE-INTEGRITY (or -SHA256) verifies with the server's ice-pwd.
    pub(crate) fn verify(&self, key: &IntegrityKey) -> bool {
        self.msg.validate_integrity_with_key(key).is_ok()
    }

    /// The transaction ID, bytes 8..20 of the header.
    pub(crate) fn transaction(&self) -> [u8; 12] {
        u128::from(self.msg.transaction_id()).to_be_bytes()[4..]
            .try_into()
            .unwrap_or([0; 12])
    }
}

/// Finds the USERNAME value inside `buf` (the attribute `msg` already found and checked).
fn username_in<'a>(buf: &'a [u8], msg: &Message<'_>) -> Option<&'a str> {
    let (offset, raw) = msg.raw_attribute_and_offset(Username::TYPE)?;
    let len = usize::from(raw.header.length());
    let value = buf.get(offset + 4..offset + 4 + len)?;
    std::str::from_utf8(value).ok()
}

/// The short-term credential key for an ice-pwd (RFC 5389 section 15.4).
pub(crate) fn key_for(pwd: &str) -> IntegrityKey {
    ShortTermCredentials::new(pwd.to_string()).make_key()
}

/// Writes a Binding success response into `out` (cleared first): SOFTWARE when given,
/// XOR-MAPPED-ADDRESS of `from`, MESSAGE-INTEGRITY with `key`, FINGERPRINT (RFC 5389
/// sections 10.1.2, 15.2, 15.4, 15.5; RFC 8445 section 7.3.1.4). SOFTWARE is padded with
/// spaces as RFC 5769's samples are (RFC 5389 section 15: padding may be any value).
pub fn write_success(
    transaction: [u8; 12],
    from: SocketAddr,
    key: &IntegrityKey,
    software: Option<&str>,
    out: &mut Vec<u8>,
) {
    out.clear();
    out.extend_from_slice(&0x0101u16.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(&transaction);

    if let Some(sw) = software {
        // RFC 5389 section 15.10: fewer than 128 characters.
        let sw = &sw.as_bytes()[..sw.len().min(127)];
        attr_header(out, SOFTWARE, sw.len());
        out.extend_from_slice(sw);
        out.resize(out.len() + (4 - sw.len() % 4) % 4, b' ');
    }

    let port = from.port() ^ (MAGIC_COOKIE >> 16) as u16;
    match from {
        SocketAddr::V4(a) => {
            attr_header(out, XOR_MAPPED_ADDRESS, 8);
            out.extend_from_slice(&[0, 0x01]);
            out.extend_from_slice(&port.to_be_bytes());
            let ip = u32::from(*a.ip()) ^ MAGIC_COOKIE;
            out.extend_from_slice(&ip.to_be_bytes());
        }
        SocketAddr::V6(a) => {
            attr_header(out, XOR_MAPPED_ADDRESS, 20);
            out.extend_from_slice(&[0, 0x02]);
            out.extend_from_slice(&port.to_be_bytes());
            let mut mask = [0u8; 16];
            mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
            mask[4..].copy_from_slice(&transaction);
            for (b, m) in a.ip().octets().iter().zip(mask) {
                out.push(b ^ m);
            }
        }
    }

    // The length covers MESSAGE-INTEGRITY while it is computed (RFC 5389 section 15.4).
    let len = out.len() - 20 + 24;
    set_length(out, len);
    let hmac = MessageIntegrity::compute(&[&out[..]], key).unwrap_or([0; 20]);
    attr_header(out, MESSAGE_INTEGRITY, 20);
    out.extend_from_slice(&hmac);

    let len = out.len() - 20 + 8;
    set_length(out, len);
    let crc = u32::from_be_bytes(stun_types::attribute::Fingerprint::compute(&[&out[..]]));
    attr_header(out, FINGERPRINT, 4);
    out.extend_from_slice(&(crc ^ FINGERPRINT_XOR).to_be_bytes());
}

fn attr_header(out: &mut Vec<u8>, kind: u16, len: usize) {
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&(len as u16).to_be_bytes());
}

fn set_length(out: &mut [u8], len: usize) {
    out[2..4].copy_from_slice(&(len as u16).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5769 section 2 password for the short-term samples.
    const PWD: &str = "VOkJxbRl1RmTxUk/WvJxBt";
    const TRANSACTION: [u8; 12] = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];

    /// https://www.rfc-editor.org/rfc/rfc5769#section-2.1 Sample Request.
    const REQUEST: [u8; 108] = [
        0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74,
        0x65, 0x73, 0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e,
        0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
        0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20,
        0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
        0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5,
        0x7a, 0x3b, 0xcf,
    ];

    /// https://www.rfc-editor.org/rfc/rfc5769#section-2.2 Sample IPv4 Response.
    const RESPONSE_V4: [u8; 80] = [
        0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76,
        0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1,
        0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
        0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00,
        0x04, 0xc0, 0x7d, 0x4c, 0x96,
    ];

    /// https://www.rfc-editor.org/rfc/rfc5769#section-2.3 Sample IPv6 Response.
    const RESPONSE_V6: [u8; 92] = [
        0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6,
        0x86, 0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76,
        0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01,
        0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9,
        0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9,
        0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb,
        0x0b, 0x4c,
    ];

    #[test]
    fn rfc5769_sample_request_is_a_valid_check() {
        let req = Request::parse(&REQUEST).unwrap();
        assert_eq!(req.local_ufrag(), "evtj");
        assert_eq!(req.remote_ufrag(), "h6vY");
        assert!(!req.use_candidate);
        assert_eq!(req.transaction(), TRANSACTION);
        assert!(req.verify(&key_for(PWD)));
        assert!(!req.verify(&key_for("VOkJxbRl1RmTxUk/WvJxBT")));

        // FINGERPRINT covers every byte before it: one flipped bit is a malformed message.
        let mut bad = REQUEST;
        bad[30] ^= 1;
        assert_eq!(Request::parse(&bad).err(), Some(StunDrop::Malformed));
        let mut bad = REQUEST;
        bad[105] ^= 1;
        assert_eq!(Request::parse(&bad).err(), Some(StunDrop::Malformed));
    }

    #[test]
    fn rfc5769_sample_responses_byte_for_byte() {
        let key = key_for(PWD);
        let mut out = Vec::new();
        write_success(
            TRANSACTION,
            "192.0.2.1:32853".parse().unwrap(),
            &key,
            Some("test vector"),
            &mut out,
        );
        assert_eq!(out, RESPONSE_V4);
        write_success(
            TRANSACTION,
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                .parse()
                .unwrap(),
            &key,
            Some("test vector"),
            &mut out,
        );
        assert_eq!(out, RESPONSE_V6);
    }

    #[test]
    fn responses_are_not_requests_and_garbage_is_malformed() {
        assert_eq!(Request::parse(&RESPONSE_V4).err(), Some(StunDrop::Other));
        assert_eq!(
            Request::parse(&[0, 1, 0, 0]).err(),
            Some(StunDrop::Malformed)
        );
        assert_eq!(Request::parse(&[]).err(), Some(StunDrop::Malformed));
    }
}
