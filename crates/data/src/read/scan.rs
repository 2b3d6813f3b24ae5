//! A JSON object read in place: names and strings are borrowed from the line wherever they
//! hold no escape, fields are kept in key order as a row's map keeps them. It stands in for
//! serde_json's values where a row is only looked at: the inspection reads every row of a file,
//! and building values (a string allocated per field) was most of its time.
//!
//! It vouches only for text that serde_json reads to the same row. Anything else (a surrogate
//! escape, a repeated key, deep nesting, a syntax error) gives `None`, and the caller parses the
//! line with serde_json, which has the last word on what the row is and what is wrong with it.
//! [`View`] and [`Fields`] let the code that looks at rows take either kind.

use crate::version::{next_special, write_string};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;

/// Nesting beyond this is left to serde_json (which refuses it past 128).
const MAX_DEPTH: usize = 64;

#[derive(Debug, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    /// Borrowed when the line holds the string as it is: then it needs no escape either.
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// An object's fields, sorted by name, no name twice.
#[derive(Debug, PartialEq)]
pub(crate) struct Object<'a> {
    fields: Vec<(Cow<'a, str>, Json<'a>)>,
}

/// The object `text` holds, if serde_json would read it to the same row.
pub(crate) fn object(text: &str) -> Option<Object<'_>> {
    let mut p = Parser { text, at: 0 };
    p.skip_space();
    let object = p.object(0)?;
    p.skip_space();
    (p.at == text.len()).then_some(object)
}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn value(&mut self, depth: usize) -> Option<Json<'a>> {
        Some(match self.peek()? {
            b'{' => Json::Object(self.object(depth + 1)?),
            b'[' => Json::Array(self.array(depth + 1)?),
            b'"' => Json::String(self.string()?),
            b't' => self.literal("true", Json::Bool(true))?,
            b'f' => self.literal("false", Json::Bool(false))?,
            b'n' => self.literal("null", Json::Null)?,
            b'-' | b'0'..=b'9' => Json::Number(self.number()?),
            _ => return None,
        })
    }

    fn literal(&mut self, word: &str, value: Json<'a>) -> Option<Json<'a>> {
        self.text[self.at..].starts_with(word).then(|| {
            self.at += word.len();
            value
        })
    }

    fn object(&mut self, depth: usize) -> Option<Object<'a>> {
        let mut fields = self.list(depth, b'{', b'}', |p| {
            if p.peek()? != b'"' {
                return None;
            }
            let name = p.string()?;
            p.skip_space();
            p.eat(b':')?;
            p.skip_space();
            Some((name, p.value(depth)?))
        })?;
        // Rows' maps sort by name; a repeated name keeps its last value there, left to serde_json.
        if !fields.is_sorted_by(|a, b| a.0 < b.0) {
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            if fields.windows(2).any(|w| w[0].0 == w[1].0) {
                return None;
            }
        }
        Some(Object { fields })
    }

    fn array(&mut self, depth: usize) -> Option<Vec<Json<'a>>> {
        self.list(depth, b'[', b']', |p| p.value(depth))
    }

    /// What stands between `open` and `close`, separated by commas, each part read by `part`.
    fn list<T>(
        &mut self,
        depth: usize,
        open: u8,
        close: u8,
        mut part: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(open)?;
        self.skip_space();
        let mut parts = Vec::new();
        if self.eat(close).is_some() {
            return Some(parts);
        }
        loop {
            parts.push(part(self)?);
            self.skip_space();
            match self.peek()? {
                b',' => {
                    self.at += 1;
                    self.skip_space();
                }
                b if b == close => {
                    self.at += 1;
                    return Some(parts);
                }
                _ => return None,
            }
        }
    }

    /// A string, from its opening quote.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        let start = self.at + 1;
        let i = next_special(self.text.as_bytes(), start);
        match *self.text.as_bytes().get(i)? {
            b'"' => {
                self.at = i + 1;
                Some(Cow::Borrowed(&self.text[start..i]))
            }
            b'\\' => self.escaped(start, i).map(Cow::Owned),
            // serde_json refuses raw control characters in strings.
            _ => None,
        }
    }

    /// The rest of a string that holds an escape at `i`.
    fn escaped(&mut self, start: usize, mut i: usize) -> Option<String> {
        let bytes = self.text.as_bytes();
        let mut out = String::with_capacity(i - start + 16);
        let mut run = start;
        loop {
            match *bytes.get(i)? {
                b'"' => {
                    out.push_str(&self.text[run..i]);
                    self.at = i + 1;
                    return Some(out);
                }
                b'\\' => {
                    out.push_str(&self.text[run..i]);
                    let (c, len) = match *bytes.get(i + 1)? {
                        b'"' => ('"', 2),
                        b'\\' => ('\\', 2),
                        b'/' => ('/', 2),
                        b'b' => ('\x08', 2),
                        b'f' => ('\x0c', 2),
                        b'n' => ('\n', 2),
                        b'r' => ('\r', 2),
                        b't' => ('\t', 2),
                        b'u' => (self.unicode_escape(i + 2)?, 6),
                        _ => return None,
                    };
                    out.push(c);
                    i += len;
                    run = i;
                    i = next_special(bytes, i);
                }
                _ => return None,
            }
        }
    }

    /// The character of `\uXXXX` whose digits start at `at`; surrogates (pairs or lone) are
    /// left to serde_json.
    fn unicode_escape(&self, at: usize) -> Option<char> {
        let digits = self.text.as_bytes().get(at..at + 4)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let code = u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
        char::from_u32(code)
    }

    /// A number as JSON writes one; serde_json reads its value (so a number it would refuse,
    /// out of range, is refused here too).
    fn number(&mut self) -> Option<Number> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut i = start + usize::from(bytes[start] == b'-');
        let digits = |i: &mut usize| {
            let from = *i;
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > from
        };
        match bytes.get(i)? {
            b'0' => i += 1,
            b'1'..=b'9' => {
                digits(&mut i);
            }
            _ => return None,
        }
        let mut plain = true;
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            plain = false;
            if !digits(&mut i) {
                return None;
            }
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            plain = false;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        let text = &self.text[start..i];
        self.at = i;
        // A plain count, the common case, without a deserializer (u64 is what serde_json makes).
        if plain
            && bytes[start] != b'-'
            && let Ok(n) = text.parse::<u64>()
        {
            return Some(Number::from(n));
        }
        serde_json::from_str(text).ok()
    }
}

/// A JSON value as code that only looks at rows sees it, however the row was read.
pub(crate) trait View {
    fn kind(&self) -> &'static str;
    fn is_null(&self) -> bool;
    fn is_array(&self) -> bool;
    fn as_str(&self) -> Option<&str>;
    fn as_f64(&self) -> Option<f64>;
    /// An empty list or object, or a string of white space at most.
    fn is_empty(&self) -> bool;
    /// Every string in the value, in order (an object's in its fields' order).
    fn for_each_string<'s>(&'s self, f: &mut impl FnMut(&'s str));
}

/// A row's fields, in name order, however the row was read.
pub(crate) trait Fields {
    type Value: View;
    fn fields(&self) -> impl Iterator<Item = (&str, &Self::Value)>;
    fn get(&self, name: &str) -> Option<&Self::Value>;
    /// The row as canonical JSON (see `version.rs`) and a newline.
    fn write_canonical(&self, out: &mut Vec<u8>);
}

impl View for Value {
    fn kind(&self) -> &'static str {
        super::kind_of(self)
    }

    fn is_null(&self) -> bool {
        Value::is_null(self)
    }

    fn is_array(&self) -> bool {
        Value::is_array(self)
    }

    fn as_str(&self) -> Option<&str> {
        Value::as_str(self)
    }

    fn as_f64(&self) -> Option<f64> {
        Value::as_f64(self)
    }

    fn is_empty(&self) -> bool {
        match self {
            Value::String(s) => s.trim().is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        }
    }

    fn for_each_string<'s>(&'s self, f: &mut impl FnMut(&'s str)) {
        match self {
            Value::String(s) => f(s),
            Value::Array(items) => items.iter().for_each(|v| v.for_each_string(f)),
            Value::Object(map) => map.values().for_each(|v| v.for_each_string(f)),
            _ => {}
        }
    }
}

impl Fields for Map<String, Value> {
    type Value = Value;

    fn fields(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.iter().map(|(k, v)| (k.as_str(), v))
    }

    fn get(&self, name: &str) -> Option<&Value> {
        Map::get(self, name)
    }

    fn write_canonical(&self, out: &mut Vec<u8>) {
        crate::version::canonical_line(self, out);
    }
}

impl View for Json<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "boolean",
            Json::Number(_) => "number",
            Json::String(_) => "string",
            Json::Array(_) => "array",
            Json::Object(_) => "object",
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Json::Null)
    }

    fn is_array(&self) -> bool {
        matches!(self, Json::Array(_))
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Json::String(s) => s.trim().is_empty(),
            Json::Array(a) => a.is_empty(),
            Json::Object(o) => o.fields.is_empty(),
            _ => false,
        }
    }

    fn for_each_string<'s>(&'s self, f: &mut impl FnMut(&'s str)) {
        match self {
            Json::String(s) => f(s),
            Json::Array(items) => items.iter().for_each(|v| v.for_each_string(f)),
            Json::Object(o) => o.fields.iter().for_each(|(_, v)| v.for_each_string(f)),
            _ => {}
        }
    }
}

impl<'a> Fields for Object<'a> {
    type Value = Json<'a>;

    fn fields(&self) -> impl Iterator<Item = (&str, &Json<'a>)> {
        self.fields.iter().map(|(k, v)| (k.as_ref(), v))
    }

    fn get(&self, name: &str) -> Option<&Json<'a>> {
        let i = self.fields.binary_search_by(|(k, _)| k.as_ref().cmp(name)).ok()?;
        Some(&self.fields[i].1)
    }

    fn write_canonical(&self, out: &mut Vec<u8>) {
        write_object(self, out);
        out.push(b'\n');
    }
}

fn write_object(object: &Object<'_>, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (name, value)) in object.fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_text(name, out);
        out.push(b':');
        write_value(value, out);
    }
    out.push(b'}');
}

fn write_value(value: &Json<'_>, out: &mut Vec<u8>) {
    match value {
        Json::Null => out.extend_from_slice(b"null"),
        Json::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Json::Number(n) => serde_json::to_writer(&mut *out, n).expect("a JSON number serializes"),
        Json::String(s) => write_text(s, out),
        Json::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        Json::Object(o) => write_object(o, out),
    }
}

/// A string as canonical JSON writes it: one borrowed from the line had nothing to escape.
#[expect(clippy::ptr_arg, reason = "whether the string was borrowed is what matters here")]
fn write_text(s: &Cow<'_, str>, out: &mut Vec<u8>) {
    match s {
        Cow::Borrowed(s) => {
            out.reserve(s.len() + 2);
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        }
        Cow::Owned(s) => write_string(s, out),
    }
}

#[cfg(test)]
mod tests;
