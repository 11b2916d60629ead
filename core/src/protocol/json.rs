//! What `serde-json-core` leaves to us: a strict syntax and depth check before parsing
//! (RFC 8259; it has no `deserialize_any` and skips unknown scalars loosely), borrowed raw
//! strings, and unescaping with UTF-16 surrogate pairs (`\uD83D\uDE00`), which it rejects.

use core::fmt;

use serde::de::{Deserialize, Deserializer, Visitor};

/// Why a document was refused before parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON text.
    Syntax,
    /// Containers nested deeper than allowed.
    TooDeep,
}

/// Checks that `buf` is exactly one JSON value (with optional white space around it) whose
/// containers nest at most `max_depth` deep. Linear time, no recursion, no allocation.
pub fn validate(buf: &[u8], max_depth: usize) -> Result<(), JsonError> {
    let mut s = Scanner { buf, pos: 0 };
    // Each open container remembers whether it is an object (true) or an array (false)
    // as one bit; the depth bound keeps the stack in a u64.
    let max_depth = max_depth.min(64);
    let mut stack: u64 = 0;
    let mut depth = 0usize;
    s.ws();
    loop {
        // Expect a value.
        match s.peek() {
            Some(b'{') | Some(b'[') => {
                let is_obj = s.peek() == Some(b'{');
                s.pos += 1;
                depth += 1;
                if depth > max_depth {
                    return Err(JsonError::TooDeep);
                }
                stack = (stack << 1) | u64::from(is_obj);
                s.ws();
                let close = if is_obj { b'}' } else { b']' };
                if s.peek() == Some(close) {
                    s.pos += 1;
                    depth -= 1;
                    stack >>= 1;
                } else {
                    if is_obj {
                        s.key()?;
                    }
                    continue;
                }
            }
            Some(b'"') => s.string()?,
            Some(b'-' | b'0'..=b'9') => s.number()?,
            Some(b't') => s.literal(b"true")?,
            Some(b'f') => s.literal(b"false")?,
            Some(b'n') => s.literal(b"null")?,
            _ => return Err(JsonError::Syntax),
        }
        // After a value: close containers or move to the next element.
        loop {
            s.ws();
            if depth == 0 {
                return if s.pos == buf.len() {
                    Ok(())
                } else {
                    Err(JsonError::Syntax)
                };
            }
            let is_obj = stack & 1 == 1;
            match s.peek() {
                Some(b',') => {
                    s.pos += 1;
                    s.ws();
                    if is_obj {
                        s.key()?;
                    }
                    break;
                }
                Some(b'}') if is_obj => {}
                Some(b']') if !is_obj => {}
                _ => return Err(JsonError::Syntax),
            }
            s.pos += 1;
            depth -= 1;
            stack >>= 1;
        }
    }
}

struct Scanner<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// An object key, the colon after it and the white space before the value.
    fn key(&mut self) -> Result<(), JsonError> {
        if self.peek() != Some(b'"') {
            return Err(JsonError::Syntax);
        }
        self.string()?;
        self.ws();
        if self.peek() != Some(b':') {
            return Err(JsonError::Syntax);
        }
        self.pos += 1;
        self.ws();
        Ok(())
    }

    fn string(&mut self) -> Result<(), JsonError> {
        self.pos += 1; // the opening quote
        loop {
            match self.peek() {
                None => return Err(JsonError::Syntax),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            for _ in 0..4 {
                                match self.peek() {
                                    Some(c) if c.is_ascii_hexdigit() => self.pos += 1,
                                    _ => return Err(JsonError::Syntax),
                                }
                            }
                        }
                        _ => return Err(JsonError::Syntax),
                    }
                }
                Some(0..=0x1f) => return Err(JsonError::Syntax),
                Some(_) => self.pos += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<(), JsonError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(JsonError::Syntax),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(JsonError::Syntax);
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(JsonError::Syntax);
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), JsonError> {
        match self.buf.get(self.pos..self.pos + word.len()) {
            Some(w) if w == word => {
                self.pos += word.len();
                Ok(())
            }
            _ => Err(JsonError::Syntax),
        }
    }
}

/// A JSON string as it stands between its quotes, escapes and all. Borrowed from the
/// frame, so decoding allocates nothing; [`unescape`] turns it into text.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawStr<'a>(pub &'a str);

impl fmt::Debug for RawStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawStr({} bytes)", self.0.len())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(RawStr(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// Why a string could not be unescaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnescapeError {
    /// The text does not fit the output.
    TooLong,
    /// A bad escape or a lone surrogate.
    Invalid,
}

/// Unescapes `raw` into `out`, returning the text's length in bytes. `\uXXXX` pairs of
/// UTF-16 surrogates become one character, as RFC 8259 section 7 says; a lone surrogate is
/// invalid (Rust text cannot hold it).
pub fn unescape_into(raw: &str, out: &mut [u8]) -> Result<usize, UnescapeError> {
    let bytes = raw.as_bytes();
    let mut w = 0usize;
    let mut i = 0usize;
    let mut put = |w: &mut usize, s: &[u8]| -> Result<(), UnescapeError> {
        let dst = out
            .get_mut(*w..*w + s.len())
            .ok_or(UnescapeError::TooLong)?;
        dst.copy_from_slice(s);
        *w += s.len();
        Ok(())
    };
    while i < bytes.len() {
        // Copy the run up to the next backslash in one go.
        let run = bytes[i..]
            .iter()
            .position(|&b| b == b'\\')
            .unwrap_or(bytes.len() - i);
        put(&mut w, &bytes[i..i + run])?;
        i += run;
        if i >= bytes.len() {
            break;
        }
        let esc = *bytes.get(i + 1).ok_or(UnescapeError::Invalid)?;
        i += 2;
        let c = match esc {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = hex4(bytes, i)?;
                i += 4;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    // A high surrogate must be followed by `\u` and a low surrogate.
                    if bytes.get(i) != Some(&b'\\') || bytes.get(i + 1) != Some(&b'u') {
                        return Err(UnescapeError::Invalid);
                    }
                    let lo = hex4(bytes, i + 2)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(UnescapeError::Invalid);
                    }
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                char::from_u32(code).ok_or(UnescapeError::Invalid)?
            }
            _ => return Err(UnescapeError::Invalid),
        };
        let mut tmp = [0u8; 4];
        put(&mut w, c.encode_utf8(&mut tmp).as_bytes())?;
    }
    Ok(w)
}

/// Unescapes `raw` into a bounded string.
pub fn unescape<const N: usize>(raw: RawStr<'_>) -> Result<heapless::String<N>, UnescapeError> {
    let mut buf = [0u8; N];
    let n = unescape_into(raw.0, &mut buf)?;
    let text = core::str::from_utf8(buf.get(..n).ok_or(UnescapeError::TooLong)?)
        .map_err(|_| UnescapeError::Invalid)?;
    let mut s = heapless::String::new();
    s.push_str(text).map_err(|_| UnescapeError::TooLong)?;
    Ok(s)
}

fn hex4(bytes: &[u8], at: usize) -> Result<u32, UnescapeError> {
    let digits = bytes.get(at..at + 4).ok_or(UnescapeError::Invalid)?;
    let mut v = 0u32;
    for &d in digits {
        let n = (d as char).to_digit(16).ok_or(UnescapeError::Invalid)?;
        v = v * 16 + n;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_json_values() {
        for ok in [
            &br#"{}"#[..],
            br#" {"op":1,"d":null} "#,
            br#"{"a":[1,-2.5e3,true,false,null,"x\"\\\u00e9"],"b":{"c":{}}}"#,
            br#"[]"#,
            br#"0"#,
            br#""s""#,
        ] {
            assert_eq!(
                validate(ok, 16),
                Ok(()),
                "{}",
                core::str::from_utf8(ok).unwrap()
            );
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            &b""[..],
            b"{",
            b"}",
            b"{\"a\"}",
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"[1,]",
            b"[1 2]",
            b"{'a':1}",
            b"{\"a\":01}",
            b"{\"a\":1.}",
            b"{\"a\":-}",
            b"{\"a\":tru}",
            b"{\"a\":\"\x01\"}",
            b"{\"a\":\"\\x\"}",
            b"{\"a\":\"\\u12G4\"}",
            b"{} {}",
            b"{\"a\":1]",
            b"[1}",
        ] {
            assert_eq!(
                validate(bad, 16),
                Err(JsonError::Syntax),
                "{:?}",
                core::str::from_utf8(bad)
            );
        }
    }

    #[test]
    fn depth_limit_counts_every_container() {
        let nest = |n: usize| {
            let mut s = String::new();
            for i in 0..n {
                s.push(if i % 2 == 0 { '[' } else { '{' });
                if i % 2 == 1 && i + 1 < n {
                    s.push_str("\"k\":");
                }
            }
            for i in (0..n).rev() {
                s.push(if i % 2 == 0 { ']' } else { '}' });
            }
            s
        };
        assert_eq!(validate(nest(16).as_bytes(), 16), Ok(()));
        assert_eq!(validate(nest(17).as_bytes(), 16), Err(JsonError::TooDeep));
        assert_eq!(validate(nest(1000).as_bytes(), 16), Err(JsonError::TooDeep));
    }

    #[test]
    fn unescapes_surrogate_pairs_like_python_json_dumps() {
        // json.dumps("héllo 😀") == "h\\u00e9llo \\ud83d\\ude00"
        let s: heapless::String<32> = unescape(RawStr(r"h\u00e9llo \ud83d\ude00")).unwrap();
        assert_eq!(s.as_str(), "héllo 😀");
        let s: heapless::String<32> = unescape(RawStr(r#"a\"b\\c\/d\n\t"#)).unwrap();
        assert_eq!(s.as_str(), "a\"b\\c/d\n\t");
    }

    #[test]
    fn rejects_lone_surrogates_and_overflow() {
        for bad in [r"\ud83d", r"\ud83dx", r"\ude00", r"\ud83d\u0041", r"\q"] {
            assert_eq!(
                unescape::<16>(RawStr(bad)),
                Err(UnescapeError::Invalid),
                "{bad}"
            );
        }
        assert_eq!(unescape::<3>(RawStr("abcd")), Err(UnescapeError::TooLong));
        assert_eq!(
            unescape::<3>(RawStr(r"\u00e9\u00e9")),
            Err(UnescapeError::TooLong)
        );
    }
}
