//! The `id` of a JSON frame read as its bytes go by, without keeping them: what a frame over
//! the inbound limit, whose payload is dropped as it arrives, still answers with (PROTOCOL.md
//! section 1: a request carrying `id` gets exactly one answer echoing it, ERROR 1005 too).
//!
//! Only the top-level object's `id` member counts, as the protocol's envelope reads it: a
//! non-negative integer that fits 32 bits. Anything else (another type, a key written with
//! escapes, a second `id`, bytes that are not JSON) gives no id, and the answer goes without
//! one, as it does for a frame the envelope cannot read.

/// Where the scan is in the top-level object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Before the opening brace.
    Start,
    /// Inside the top-level object, where a key may start.
    KeyNext,
    /// Inside a key string at depth 1: how many bytes of `id` it matched, or `None` once it
    /// cannot be `id`.
    Key(Option<u8>),
    /// After a key, before its colon; whether the key was `id`.
    Colon(bool),
    /// After the colon, before the value; whether it is `id`'s.
    Value(bool),
    /// Digits of `id`'s value so far.
    Digits(u64),
    /// Inside some other value, nested `depth` levels below the top-level object.
    Skip,
    /// Nothing more can be learnt: the object closed, or the bytes are not what the
    /// envelope would read.
    Done,
}

/// A scan of one frame's payload for its top-level `id`.
#[derive(Debug, Clone)]
pub(super) struct IdScan {
    at: At,
    /// Nesting below the top-level object, while skipping a value.
    depth: u32,
    in_string: bool,
    escaped: bool,
    id: Option<u32>,
    /// A second `id` makes the first one ambiguous.
    ids_seen: u8,
}

impl Default for IdScan {
    fn default() -> Self {
        IdScan {
            at: At::Start,
            depth: 0,
            in_string: false,
            escaped: false,
            id: None,
            ids_seen: 0,
        }
    }
}

impl IdScan {
    /// Reads the next bytes of the payload (already unmasked).
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.at == At::Done {
                return;
            }
            self.step(b);
        }
    }

    /// The top-level `id` found so far, if exactly one was found.
    pub(super) fn id(&self) -> Option<u32> {
        if self.ids_seen == 1 { self.id } else { None }
    }

    fn step(&mut self, b: u8) {
        let ws = matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        self.at = match self.at {
            At::Start if ws => At::Start,
            At::Start if b == b'{' => At::KeyNext,
            At::KeyNext if ws || b == b',' => At::KeyNext,
            At::KeyNext if b == b'"' => At::Key(Some(0)),
            // An escaped key is never taken for `id`; its escapes still have to be skipped.
            At::Key(_) if self.escaped => {
                self.escaped = false;
                At::Key(None)
            }
            At::Key(m) => match (b, m) {
                (b'"', Some(2)) => At::Colon(true),
                (b'"', _) => At::Colon(false),
                (b'\\', _) => {
                    self.escaped = true;
                    At::Key(None)
                }
                (b'i', Some(0)) => At::Key(Some(1)),
                (b'd', Some(1)) => At::Key(Some(2)),
                _ => At::Key(None),
            },
            At::Colon(is_id) if ws => At::Colon(is_id),
            At::Colon(is_id) if b == b':' => At::Value(is_id),
            At::Value(is_id) if ws => At::Value(is_id),
            At::Value(true) if b.is_ascii_digit() => {
                self.ids_seen = self.ids_seen.saturating_add(1);
                At::Digits(u64::from(b - b'0'))
            }
            At::Value(true) => {
                // `id` of another type: the envelope rejects it, so no id.
                self.ids_seen = self.ids_seen.saturating_add(2);
                self.skip_value(b)
            }
            At::Value(false) => self.skip_value(b),
            At::Digits(v) if b.is_ascii_digit() => {
                let v = v * 10 + u64::from(b - b'0');
                if v > u64::from(u32::MAX) {
                    self.ids_seen = self.ids_seen.saturating_add(1);
                    At::Skip
                } else {
                    At::Digits(v)
                }
            }
            At::Digits(v) => {
                self.id = u32::try_from(v).ok();
                self.after_value(b)
            }
            At::Skip => self.skip(b),
            At::Start | At::KeyNext | At::Colon(_) | At::Done => At::Done,
        };
    }

    /// The first byte of a value that is not `id`'s.
    fn skip_value(&mut self, b: u8) -> At {
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
        self.skip(b)
    }

    /// One byte of a skipped value: strings and nesting are followed until the value ends
    /// at depth 0 with a comma or the closing brace.
    fn skip(&mut self, b: u8) -> At {
        if self.in_string {
            match (b, self.escaped) {
                (_, true) => self.escaped = false,
                (b'\\', false) => self.escaped = true,
                (b'"', false) => self.in_string = false,
                _ => {}
            }
            return At::Skip;
        }
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.depth = self.depth.saturating_add(1),
            b'}' | b']' if self.depth > 0 => self.depth -= 1,
            b',' | b'}' if self.depth == 0 => return self.after_value(b),
            _ => {}
        }
        At::Skip
    }

    /// The byte after a top-level value.
    fn after_value(&mut self, b: u8) -> At {
        match b {
            b',' => At::KeyNext,
            b'}' => At::Done,
            b' ' | b'\t' | b'\n' | b'\r' => At::Skip,
            _ => {
                // `12x`: not a number the envelope reads.
                self.ids_seen = self.ids_seen.saturating_add(2);
                At::Done
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(s: &str) -> Option<u32> {
        let mut a = IdScan::default();
        a.feed(s.as_bytes());
        // Fed a byte at a time, the answer is the same.
        let mut b = IdScan::default();
        for c in s.as_bytes().chunks(1) {
            b.feed(c);
        }
        assert_eq!(a.id(), b.id(), "{s}");
        a.id()
    }

    #[test]
    fn finds_the_top_level_id_wherever_it_stands() {
        assert_eq!(scan(r#"{"op":1,"id":77,"d":null}"#), Some(77));
        assert_eq!(scan(r#"{"id":0,"op":1}"#), Some(0));
        assert_eq!(
            scan(r#"{"op":20,"d":{"content":"x"},"id":4294967295}"#),
            Some(u32::MAX)
        );
        assert_eq!(scan(" {\n \"id\" : 5 , \"op\" : 1 } "), Some(5));
        let pad = "y".repeat(20_000);
        assert_eq!(
            scan(&format!(r#"{{"op":1,"pad":"{pad}","id":9}}"#)),
            Some(9)
        );
    }

    #[test]
    fn nested_and_string_ids_do_not_count() {
        assert_eq!(scan(r#"{"op":1,"d":{"id":3}}"#), None);
        assert_eq!(scan(r#"{"op":1,"d":["id",{"id":3}],"x":"\"id\":4"}"#), None);
        assert_eq!(scan(r#"{"op":1,"d":{"id":3},"id":8}"#), Some(8));
        assert_eq!(scan(r#"{"op":1,"s":"a\\","id":6}"#), Some(6));
        assert_eq!(scan(r#"{"\"":null,"id":0}"#), Some(0));
        assert_eq!(scan(r#"{"a\\":1,"id":2}"#), Some(2));
    }

    #[test]
    fn ids_the_envelope_would_not_read_give_none() {
        for s in [
            r#"{"id":-1}"#,
            r#"{"id":1.5}"#,
            r#"{"id":"7"}"#,
            r#"{"id":null}"#,
            r#"{"id":4294967296}"#,
            r#"{"id":12x}"#,
            r#"{"id":1,"id":2}"#,
            r#"{"i\u0064":3}"#,
            r#"["id",1]"#,
            r#"not json "id":1"#,
            "",
        ] {
            assert_eq!(scan(s), None, "{s}");
        }
        assert_eq!(scan(r#"{"idx":1,"xid":2}"#), None);
    }

    /// Any JSON object, written compactly or pretty, fed in any chunks: the scan finds what
    /// a JSON parser finds as the top-level `id` when it is a u32, and nothing otherwise.
    mod props {
        use super::*;
        use proptest::prelude::*;
        use serde_json::{Map, Value, json};

        fn leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                any::<u64>().prop_map(|n| json!(n)),
                (0u64..=u64::from(u32::MAX)).prop_map(|n| json!(n)),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(|f| json!(f)),
                "[a-z\\\\\"{}\\[\\],:id é]{0,12}".prop_map(Value::String),
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            leaf().prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::vec(("(id|op|d|x|i|idd)", inner), 0..4)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn finds_what_a_parser_finds(
                members in prop::collection::vec(("(id|op|d|x|\"|i\\\\d)", value()), 0..6),
                pretty in any::<bool>(),
                chunk in 1usize..64,
            ) {
                let obj: Map<String, Value> = members.into_iter().collect();
                let want = obj.get("id").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok());
                let v = Value::Object(obj);
                let text = if pretty {
                    serde_json::to_string_pretty(&v).expect("a Value serializes")
                } else {
                    v.to_string()
                };
                let mut scan = IdScan::default();
                for c in text.as_bytes().chunks(chunk) {
                    scan.feed(c);
                }
                prop_assert_eq!(scan.id(), want, "{}", text);
            }

            #[test]
            fn any_bytes_are_read_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
                let mut scan = IdScan::default();
                scan.feed(&bytes);
                let _ = scan.id();
            }
        }
    }
}
