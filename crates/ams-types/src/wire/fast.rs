//! The publish body as clients send it, read without serde.
//!
//! A publish body is almost all one long string per message (`data`, base64),
//! and serde_json finds a string's end eight bytes at a time and then checks
//! its UTF-8 in a second pass: about 3.5 instructions per byte, most of a
//! small publish's decoding. This scanner reads only the shape clients send
//! (the keys spelled as documented, strings without escapes, no `null`s, no
//! other keys) and finds a string's end with `memchr`'s SIMD search. Anything
//! else, valid or not, makes it give up (`None`), and [`super::Publish::decode`]
//! then decodes the body with the full Go rules. So when it answers, it
//! answers what the full decoder would (checked against it on generated
//! bodies in the tests), and it never has to report an error itself.

use std::collections::BTreeMap;

use super::{Publish, PublishMessage};

/// `body` decoded, if it has the plain shape; `None` otherwise.
pub(super) fn decode(body: &[u8]) -> Option<Publish> {
    let mut s = Scanner { bytes: body, at: 0 };
    let mut out = Publish::default();
    s.object(|s, key| match key {
        "messages" => {
            out.messages = s.messages()?;
            Some(())
        }
        _ => None,
    })?;
    s.space();
    (s.at == body.len()).then_some(out)
}

/// A position in the body.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    /// Skips JSON whitespace.
    fn space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    /// Skips whitespace, then takes `b` if it is next.
    fn take(&mut self, b: u8) -> bool {
        self.space();
        let found = self.bytes.get(self.at) == Some(&b);
        if found {
            self.at += 1;
        }
        found
    }

    /// An object: `{`, then `value(self, key)` for each member (which reads
    /// the value after the colon), then `}`.
    fn object(&mut self, mut value: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        if !self.take(b'{') {
            return None;
        }
        if self.take(b'}') {
            return Some(());
        }
        loop {
            let key = self.string()?;
            if !self.take(b':') {
                return None;
            }
            value(self, key)?;
            if self.take(b'}') {
                return Some(());
            }
            if !self.take(b',') {
                return None;
            }
        }
    }

    /// `[message, ...]`.
    fn messages(&mut self) -> Option<Vec<PublishMessage>> {
        if !self.take(b'[') {
            return None;
        }
        let mut out = Vec::new();
        if self.take(b']') {
            return Some(out);
        }
        loop {
            out.push(self.message()?);
            if self.take(b']') {
                return Some(out);
            }
            if !self.take(b',') {
                return None;
            }
        }
    }

    /// One message object. A repeated key keeps its last value, as the full
    /// decoder does.
    fn message(&mut self) -> Option<PublishMessage> {
        let mut m = PublishMessage::default();
        self.object(|s, key| {
            match key {
                "data" => m.data = s.string()?.to_owned(),
                "attributes" => m.attributes = Some(s.attributes()?),
                "messageId" => m.message_id = Some(s.string()?.to_owned()),
                "publishTime" => m.publish_time = Some(s.string()?.to_owned()),
                _ => return None,
            }
            Some(())
        })?;
        Some(m)
    }

    /// `{"key": "value", ...}`; a repeated key keeps its last value.
    fn attributes(&mut self) -> Option<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        self.object(|s, key| {
            out.insert(key.to_owned(), s.string()?.to_owned());
            Some(())
        })?;
        Some(out)
    }

    /// A string without escapes, borrowed from the body. `None` for an
    /// escape (the full decoder unescapes), a control character or invalid
    /// UTF-8 (the full decoder reports them).
    fn string(&mut self) -> Option<&'a str> {
        if !self.take(b'"') {
            return None;
        }
        let rest = &self.bytes[self.at..];
        let end = memchr::memchr2(b'"', b'\\', rest)?;
        if rest[end] != b'"' {
            return None;
        }
        let text = &rest[..end];
        // A control character (below 0x20) is an error the full decoder
        // reports. `min` over the bytes, with no early exit, is one
        // vectorised pass.
        if text.iter().copied().min().unwrap_or(u8::MAX) < 0x20 {
            return None;
        }
        // SIMD UTF-8 validation: std's is several times slower on long text.
        let text = simdutf8::basic::from_utf8(text).ok()?;
        self.at += end + 1;
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The full decoder's answer.
    fn full(body: &[u8]) -> Result<Publish, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// Builds a publish body from a tape of choices (proptest shrinks the
    /// tape). With `plain`, only the shape the scanner reads: documented key
    /// spellings, strings without escapes or control characters, no `null`s
    /// and nothing after the object; else anything near it, valid or not.
    struct Body<'t> {
        tape: &'t [u8],
        plain: bool,
        out: Vec<u8>,
    }

    impl Body<'_> {
        fn pick(&mut self, n: u8) -> u8 {
            let (first, rest) = self.tape.split_first().unwrap_or((&0, &[]));
            self.tape = rest;
            first % n
        }

        /// A choice that is 0 in a plain body, and otherwise 0 about 19
        /// times in 20 (so that a body is rarely odd in more than one place,
        /// and the scanner still reads many of them).
        fn odd(&mut self, n: u8) -> u8 {
            if self.plain || self.pick(20) != 0 {
                0
            } else {
                self.pick(n)
            }
        }

        fn put(&mut self, s: &str) {
            self.out.extend_from_slice(s.as_bytes());
        }

        fn space(&mut self) {
            // Mostly none.
            const SPACE: [&str; 8] = ["", "", "", "", " ", "\n  ", "\t", "\r\n"];
            let i = self.pick(8) as usize;
            self.put(SPACE[i]);
        }

        fn key(&mut self, key: &str) {
            let variant = match self.odd(4) {
                0 => key.to_owned(),
                1 => key.to_uppercase(),
                2 => format!("\\u{:04x}{}", u32::from(key.as_bytes()[0]), &key[1..]),
                _ => "other".to_owned(),
            };
            self.space();
            self.put(&format!("\"{variant}\""));
            self.space();
            self.put(":");
        }

        fn string(&mut self) {
            self.space();
            self.put("\"");
            for _ in 0..self.pick(12) {
                let c = if self.pick(3) != 0 {
                    let alphabet = b"ABCxyz019+/=";
                    (alphabet[self.pick(alphabet.len() as u8) as usize] as char).to_string()
                } else {
                    ["é", "日本", "'", "/", "\u{7f}", " ", "\u{10ffff}"][self.pick(7) as usize]
                        .to_owned()
                };
                self.put(&c);
            }
            match self.odd(3) {
                0 => {}
                1 => {
                    let odd = [
                        "\\n", "\\\"", "\\\\", "\\u00e9", "\\ud800", "\u{1}", "\u{1f}", "\n",
                    ];
                    let i = self.pick(odd.len() as u8) as usize;
                    self.put(odd[i]);
                }
                _ => {
                    // Invalid UTF-8: a lone continuation byte, an overlong
                    // `/`, a surrogate, a truncated sequence or 0xff.
                    let bad: [&[u8]; 5] =
                        [b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe6\x97", b"\xff"];
                    let i = self.pick(5) as usize;
                    self.out.extend_from_slice(bad[i]);
                }
            }
            self.put("\"");
        }

        /// A value where a string belongs.
        fn string_value(&mut self) {
            match self.odd(5) {
                0 => self.string(),
                1 => self.put("null"),
                2 => self.put("5"),
                3 => self.put("{}"),
                _ => self.put("[\"a\"]"),
            }
        }

        fn members(&mut self, n: u8, mut member: impl FnMut(&mut Self)) {
            self.space();
            self.put("{");
            for i in 0..self.pick(n) {
                if i > 0 {
                    self.space();
                    self.put(",");
                }
                member(self);
            }
            if self.odd(8) == 1 {
                self.put(",");
            }
            self.space();
            self.put("}");
        }

        fn message(&mut self) {
            if self.odd(6) == 1 {
                self.space();
                self.put("null");
                return;
            }
            // Data and attributes twice as often as the ignored fields.
            self.members(6, |b| match b.pick(6) {
                0 | 1 => {
                    b.key("data");
                    b.string_value();
                }
                2 | 3 => {
                    b.key("attributes");
                    match b.odd(4) {
                        0 => b.members(4, |b| {
                            b.string();
                            b.space();
                            b.put(":");
                            b.string_value();
                        }),
                        1 => b.put("null"),
                        _ => b.put("[]"),
                    }
                }
                4 => {
                    b.key("messageId");
                    b.string_value();
                }
                _ => {
                    b.key("publishTime");
                    b.string_value();
                }
            });
        }

        fn build(tape: &[u8], plain: bool) -> Vec<u8> {
            let mut b = Body {
                tape,
                plain,
                out: Vec::new(),
            };
            b.members(3, |b| {
                b.key("messages");
                match b.odd(4) {
                    0 => {
                        b.space();
                        b.put("[");
                        for i in 0..b.pick(5) {
                            if i > 0 {
                                b.space();
                                b.put(",");
                            }
                            b.message();
                        }
                        b.space();
                        b.put("]");
                    }
                    1 => b.put("null"),
                    _ => b.put("{}"),
                }
            });
            b.space();
            if b.odd(6) == 1 {
                b.put("x");
            }
            b.out
        }
    }

    /// Whether the scanner's answer, if any, is the full decoder's.
    fn agrees(body: &[u8]) -> Result<Option<Publish>, String> {
        let Some(fast) = decode(body) else {
            return Ok(None);
        };
        match full(body) {
            Ok(full) if full == fast => Ok(Some(fast)),
            other => Err(format!(
                "{}: scanner {fast:?}, full decoder {other:?}",
                String::from_utf8_lossy(body)
            )),
        }
    }

    /// `body` with one byte replaced, dropped or added at `at`.
    fn edit(mut body: Vec<u8>, (at, how, byte): (usize, u8, u8)) -> Vec<u8> {
        let at = at % (body.len() + 1);
        match how {
            0 if at < body.len() => body[at] = byte,
            1 if at < body.len() => {
                body.remove(at);
            }
            _ => body.insert(at, byte),
        }
        body
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whenever the scanner answers, the full decoder answers the same:
        /// for bodies near the shape, and for bodies in it with a byte
        /// changed, dropped or added.
        #[test]
        fn answers_only_what_the_full_decoder_answers(
            tape in proptest::collection::vec(any::<u8>(), 0..600),
            edits in proptest::collection::vec((0usize..400, 0u8..3, any::<u8>()), 1..3),
        ) {
            let near = Body::build(&tape, false);
            prop_assert_eq!(agrees(&near).err(), None);
            let edited = edits.into_iter().fold(Body::build(&tape, true), edit);
            prop_assert_eq!(agrees(&edited).err(), None);
        }

        /// The plain shape is always read by the scanner, never left to the
        /// full decoder.
        #[test]
        fn reads_every_plain_body(tape in proptest::collection::vec(any::<u8>(), 0..600)) {
            let body = Body::build(&tape, true);
            let fast = agrees(&body);
            prop_assert!(matches!(fast, Ok(Some(_))), "{}: {fast:?}", String::from_utf8_lossy(&body));
        }
    }

    /// The comparison above is only as good as the bodies the scanner
    /// accepts: over a fixed set of tapes, many accepted bodies must carry
    /// data and attributes, from both generators.
    #[test]
    fn the_comparison_sees_real_bodies() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            // xorshift64: a fixed, dependency-free sequence.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // Accepted with a message that has data and attributes.
        let rich = |p: Publish| {
            p.messages
                .iter()
                .any(|m| !m.data.is_empty() && m.attributes.as_ref().is_some_and(|a| !a.is_empty()))
        };
        let (mut near, mut edited) = (0, 0);
        for _ in 0..5000 {
            let tape: Vec<u8> = (0..600).map(|_| next() as u8).collect();
            let one = (next() as usize % 400, (next() % 3) as u8, next() as u8);
            let body = Body::build(&tape, false);
            near += usize::from(agrees(&body).unwrap().is_some_and(rich));
            let body = edit(Body::build(&tape, true), one);
            edited += usize::from(agrees(&body).unwrap().is_some_and(rich));
        }
        // About 240 of each with this sequence (it is fixed: the counts are too).
        assert!(near >= 200 && edited >= 200, "near {near}, edited {edited}");
    }

    #[test]
    fn reads_what_clients_send() {
        // The Python client (json.dumps' separators), curl scripts, ams-bench.
        for body in [
            &br#"{"messages": [{"attributes": {"station": "NW-1"}, "data": "aGVsbG8="}]}"#[..],
            b"{\n  \"messages\": [\n    {\"data\": \"aGk=\"},\n    {\"data\": \"\"}\n  ]\n}\n",
            br#"{"messages":[{"data":"QUJD"},{"data":"REVG","attributes":{}}]}"#,
        ] {
            let fast = decode(body).expect("plain shape");
            assert_eq!(fast, full(body).unwrap());
        }
    }

    #[test]
    fn leaves_everything_else_to_the_full_decoder() {
        for body in [
            &br#"{"messages":[{"data":"a\nb"}]}"#[..],
            br#"{"messages":[{"data":"a\u0041"}]}"#,
            br#"{"Messages":[{"data":"a"}]}"#,
            br#"{"messages":[{"Data":"a"}]}"#,
            br#"{"messages":[{"data":null}]}"#,
            br#"{"messages":[null]}"#,
            br#"{"messages":null}"#,
            br#"{"messages":[{"data":"a","x":1}]}"#,
            br#"{"messages":[{"data":"a"}]} x"#,
            br#"{"messages":[{"data":"a"},]}"#,
            b"{\"messages\":[{\"data\":\"a\x01\"}]}",
            b"{\"messages\":[{\"data\":\"a\x1f\"}]}",
            b"\x0c{\"messages\":[]}",
            b"\xef\xbb\xbf{\"messages\":[]}",
            b"{\"messages\":[{\"data\":\"\xff\"}]}",
            br#"{"messages":[{"data":"a"}"#,
            b"null",
            b"",
        ] {
            assert_eq!(decode(body), None, "{}", String::from_utf8_lossy(body));
        }
    }
}
