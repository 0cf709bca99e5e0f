//! JSON as the original (Go `encoding/json`) reads and writes it.
//!
//! Encoding (contract §0.4): 3-space, 1-space or compact layouts, HTML-safe
//! escaping of `<`, `>`, `&` (and U+2028/U+2029), struct key order as declared.
//!
//! Decoding (contract §0.3): object keys match struct fields case-insensitively
//! (exact match preferred), unknown keys are ignored, the last of duplicate keys
//! wins, and `null` means "absent". serde derives none of that, so bodies are
//! parsed into a [`serde_json::Value`] first and then deserialized through
//! [`GoValue`], a deserializer that folds keys onto the field names serde asks for.

use std::io;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::{Serialize, forward_to_deserialize_any};
use serde_json::ser::{CharEscape, Formatter};
use serde_json::{Map, Value};

/// How a response body is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// `MarshalIndent(v, "", "   ")`: most resources and every error envelope.
    Indent3,
    /// `MarshalIndent(v, "", " ")`: status, version, VA metrics, schemas.
    Indent1,
    /// `Marshal(v)`: topic subscription lists, timeToOffset, push-delete messages.
    Compact,
}

/// Serializes `value` with the given layout and Go's escaping.
pub fn to_vec<T: Serialize + ?Sized>(value: &T, layout: Layout) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let indent: &[u8] = match layout {
        Layout::Indent3 => b"   ",
        Layout::Indent1 => b" ",
        Layout::Compact => b"",
    };
    let formatter = GoFormatter {
        pretty: serde_json::ser::PrettyFormatter::with_indent(indent),
        compact: layout == Layout::Compact,
    };
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing plain data types into a Vec cannot fail.
    value
        .serialize(&mut ser)
        .expect("JSON serialization of wire types is infallible");
    out
}

/// serde_json's pretty/compact formatter with Go's HTML-safe string escaping.
struct GoFormatter<'a> {
    pretty: serde_json::ser::PrettyFormatter<'a>,
    compact: bool,
}

macro_rules! delegate {
    ($($name:ident($($arg:ident : $ty:ty),*)),* $(,)?) => {
        $(
            fn $name<W: ?Sized + io::Write>(&mut self, w: &mut W $(, $arg: $ty)*) -> io::Result<()> {
                if self.compact {
                    serde_json::ser::CompactFormatter.$name(w $(, $arg)*)
                } else {
                    self.pretty.$name(w $(, $arg)*)
                }
            }
        )*
    };
}

impl Formatter for GoFormatter<'_> {
    delegate!(
        begin_array(),
        end_array(),
        begin_array_value(first: bool),
        end_array_value(),
        begin_object(),
        end_object(),
        begin_object_key(first: bool),
        end_object_key(),
        begin_object_value(),
        end_object_value(),
    );

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Byte scan (the hot path of every pull: message data is most of the
        // output): `<`, `>`, `&`, and U+2028/U+2029 (E2 80 A8/A9 in UTF-8).
        let bytes = fragment.as_bytes();
        if fragment.is_ascii() {
            // SIMD search for the three ASCII characters Go escapes.
            let mut start = 0;
            for i in memchr::memchr3_iter(b'<', b'>', b'&', bytes) {
                w.write_all(&bytes[start..i])?;
                w.write_all(match bytes[i] {
                    b'<' => b"\\u003c",
                    b'>' => b"\\u003e",
                    _ => b"\\u0026",
                })?;
                start = i + 1;
            }
            return w.write_all(&bytes[start..]);
        }
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let (esc, len): (&[u8], usize) = match bytes[i] {
                b'<' => (b"\\u003c", 1),
                b'>' => (b"\\u003e", 1),
                b'&' => (b"\\u0026", 1),
                0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA8) => {
                    (b"\\u2028", 3)
                }
                0xE2 if bytes.get(i + 1) == Some(&0x80) && bytes.get(i + 2) == Some(&0xA9) => {
                    (b"\\u2029", 3)
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            w.write_all(&bytes[start..i])?;
            w.write_all(esc)?;
            i += len;
            start = i;
        }
        w.write_all(&bytes[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        // Go writes \b and \f as \u0008 and \u000c; the rest as serde_json does.
        match escape {
            CharEscape::Backspace => w.write_all(b"\\u0008"),
            CharEscape::FormFeed => w.write_all(b"\\u000c"),
            other => serde_json::ser::CompactFormatter.write_char_escape(w, other),
        }
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(format_go_float(value).as_bytes())
    }
}

/// Go's `strconv.FormatFloat(f, 'f' or 'e', -1, 64)` as `encoding/json` uses it:
/// shortest representation, integral values without `.0`.
pub fn format_go_float(value: f64) -> String {
    if !value.is_finite() {
        return "0".to_owned();
    }
    let abs = value.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Exponent form, e.g. 1e+21, 1e-07.
        let s = format!("{value:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{value}");
    s.strip_suffix(".0").map(str::to_owned).unwrap_or(s)
}

/// A body that could not be decoded into the expected shape.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(String);

impl DecodeError {
    /// A decode error with this description.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl de::Error for DecodeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

/// Decodes a request body the way Go's `json.Unmarshal` would (see module docs).
/// An empty body is an error, as in the original.
pub fn from_slice<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| DecodeError(e.to_string()))?;
    T::deserialize(GoValue(value))
}

/// Decodes an already-parsed value the same way as [`from_slice`].
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, DecodeError> {
    T::deserialize(GoValue(value))
}

/// A [`Value`] deserializer with Go's field matching rules.
pub struct GoValue(pub Value);

/// Folds `map`'s keys onto `fields`: an exact match wins, else the first field
/// equal ignoring ASCII case. Later duplicates overwrite earlier ones; nulls are
/// dropped so that the field takes its default.
fn fold_keys(map: Map<String, Value>, fields: &'static [&'static str]) -> Map<String, Value> {
    let mut out = Map::with_capacity(map.len());
    for (key, value) in map {
        let canonical = if fields.contains(&key.as_str()) {
            key
        } else if let Some(f) = fields.iter().find(|f| f.eq_ignore_ascii_case(&key)) {
            (*f).to_owned()
        } else {
            continue; // unknown key: ignored, as Go does
        };
        if value.is_null() {
            out.shift_remove(&canonical);
        } else {
            out.insert(canonical, value);
        }
    }
    out
}

impl<'de> de::Deserializer<'de> for GoValue {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => visitor.visit_seq(SeqAccess(items.into_iter())),
            Value::Object(map) => visitor.visit_map(MapAccess {
                iter: map.into_iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(GoValue(other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Object(map) => visitor.visit_map(MapAccess {
                iter: fold_keys(map, fields).into_iter(),
                value: None,
            }),
            // Go leaves a struct untouched when given `null`.
            Value::Null => visitor.visit_map(MapAccess {
                iter: Map::new().into_iter(),
                value: None,
            }),
            other => Err(de::Error::custom(format!(
                "expected an object, got {other}"
            ))),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            other => Err(de::Error::custom(format!("expected a string, got {other}"))),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct SeqAccess(std::vec::IntoIter<Value>);

impl<'de> de::SeqAccess<'de> for SeqAccess {
    type Error = DecodeError;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        self.0
            .next()
            .map(|v| seed.deserialize(GoValue(v)))
            .transpose()
    }
}

struct MapAccess {
    iter: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl<'de> de::MapAccess<'de> for MapAccess {
    type Error = DecodeError;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(GoValue(Value::String(k))).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let v = self.value.take().unwrap_or(Value::Null);
        seed.deserialize(GoValue(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default)]
    struct Pull {
        #[serde(rename = "maxMessages")]
        max_messages: Option<String>,
        #[serde(rename = "returnImmediately")]
        return_immediately: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default)]
    struct Outer {
        inner: Option<Inner>,
        list: Vec<Inner>,
        attrs: Option<BTreeMap<String, String>>,
        offset: i64,
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default)]
    struct Inner {
        #[serde(rename = "ackIds")]
        ack_ids: Option<Vec<String>>,
    }

    #[test]
    fn keys_match_case_insensitively_at_every_level() {
        let p: Pull = from_slice(br#"{"MAXMESSAGES":"3","returnimmediately":"false"}"#).unwrap();
        assert_eq!(p.max_messages.as_deref(), Some("3"));
        assert_eq!(p.return_immediately.as_deref(), Some("false"));
        let o: Outer = from_slice(br#"{"Inner":{"ACKIDS":["a"]},"LIST":[{"AckIds":[]}]}"#).unwrap();
        assert_eq!(o.inner.unwrap().ack_ids.unwrap(), vec!["a"]);
        assert_eq!(o.list[0].ack_ids.as_deref(), Some(&[][..]));
    }

    #[test]
    fn free_form_map_keys_are_kept_verbatim() {
        let o: Outer = from_slice(br#"{"attrs":{"Foo":"bar","foo":"baz"}}"#).unwrap();
        let attrs = o.attrs.unwrap();
        assert_eq!(attrs.len(), 2);
    }

    #[test]
    fn duplicates_last_wins_and_null_is_absent() {
        let p: Pull = from_slice(br#"{"maxMessages":"1","MaxMessages":"2"}"#).unwrap();
        assert_eq!(p.max_messages.as_deref(), Some("2"));
        let p: Pull = from_slice(br#"{"maxMessages":null}"#).unwrap();
        assert_eq!(p, Pull::default());
        let o: Outer = from_slice(br#"{"list":null,"offset":null}"#).unwrap();
        assert_eq!(o, Outer::default());
    }

    #[test]
    fn type_mismatches_and_empty_bodies_fail() {
        assert!(from_slice::<Pull>(br#"{"maxMessages":5}"#).is_err());
        assert!(from_slice::<Pull>(br#"{"returnImmediately":true}"#).is_err());
        assert!(from_slice::<Pull>(b"").is_err());
        assert!(from_slice::<Pull>(b"[]").is_err());
        assert!(from_slice::<Pull>(b"{} x").is_err());
        assert!(from_slice::<Outer>(br#"{"offset":"3"}"#).is_err());
        assert!(from_slice::<Outer>(br#"{"offset":3.5}"#).is_err());
        assert!(from_slice::<Outer>(br#"{"offset":1e400}"#).is_err());
        assert!(from_slice::<Outer>(br#"{"attrs":{"a":1}}"#).is_err());
        assert!(from_slice::<Outer>(br#"{"attrs":[{"key":"a","value":"b"}]}"#).is_err());
    }

    #[derive(Serialize)]
    struct Out {
        name: &'static str,
        list: Vec<u32>,
        empty: Vec<u32>,
        rate: f64,
    }

    #[test]
    fn layouts_and_escaping_match_go() {
        let v = Out {
            name: "<a&b>",
            list: vec![1, 2],
            empty: vec![],
            rate: 10.0,
        };
        let s = String::from_utf8(to_vec(&v, Layout::Indent3)).unwrap();
        assert_eq!(
            s,
            "{\n   \"name\": \"\\u003ca\\u0026b\\u003e\",\n   \"list\": [\n      1,\n      2\n   ],\n   \"empty\": [],\n   \"rate\": 10\n}"
        );
        let s = String::from_utf8(to_vec(&v, Layout::Compact)).unwrap();
        assert_eq!(
            s,
            r#"{"name":"\u003ca\u0026b\u003e","list":[1,2],"empty":[],"rate":10}"#
        );
        let s = String::from_utf8(to_vec(
            &serde_json::json!({"a": {}, "u": "x\u{2028}y\u{2029}z\u{2027}é<"}),
            Layout::Indent1,
        ))
        .unwrap();
        assert_eq!(
            s,
            "{\n \"a\": {},\n \"u\": \"x\\u2028y\\u2029z\u{2027}é\\u003c\"\n}"
        );
        let s = String::from_utf8(to_vec(&serde_json::json!({"a": {}}), Layout::Indent1)).unwrap();
        assert_eq!(s, "{\n \"a\": {}\n}");
    }

    #[test]
    fn go_floats() {
        assert_eq!(format_go_float(10.0), "10");
        assert_eq!(format_go_float(0.42), "0.42");
        assert_eq!(format_go_float(0.0), "0");
        assert_eq!(format_go_float(1e21), "1e+21");
        assert_eq!(format_go_float(1e-7), "1e-07");
        assert_eq!(format_go_float(123456.5), "123456.5");
    }
}
