use super::*;
use proptest::prelude::*;

/// Reads `text` both ways: where the in-place reader vouches for it, serde_json must read the
/// same row (fields, what each holds, strings in order, canonical line); where serde_json
/// refuses it, the in-place reader must not vouch. Says whether it vouched.
fn check(text: &str) -> bool {
    let fast = object(text);
    let slow = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    let (Some(fast), Some(slow)) = (&fast, &slow) else {
        assert!(fast.is_none(), "vouched for {text:?}, which serde_json does not read as an object");
        return false;
    };
    let fast_fields: Vec<(String, Looks)> = fast.fields().map(|(k, v)| (k.to_string(), Looks::of(v))).collect();
    let slow_fields: Vec<(String, Looks)> = slow.fields().map(|(k, v)| (k.to_string(), Looks::of(v))).collect();
    assert_eq!(fast_fields, slow_fields, "{text:?}");
    let (mut a, mut b) = (Vec::new(), Vec::new());
    fast.write_canonical(&mut a);
    slow.write_canonical(&mut b);
    assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap(), "{text:?}");
    for (name, _) in slow.fields() {
        assert_eq!(fast.get(name).map(Looks::of), slow.get(name).map(Looks::of), "{name} in {text:?}");
    }
    assert!(fast.get("no such field \u{1}").is_none());
    true
}

/// What code that looks at a value can see of it.
#[derive(Debug, PartialEq)]
struct Looks {
    kind: &'static str,
    null: bool,
    array: bool,
    empty: bool,
    text: Option<String>,
    number: Option<u64>,
    strings: Vec<String>,
}

impl Looks {
    fn of(v: &impl View) -> Looks {
        let mut strings = Vec::new();
        v.for_each_string(&mut |s| strings.push(s.to_string()));
        Looks {
            kind: v.kind(),
            null: v.is_null(),
            array: v.is_array(),
            empty: v.is_empty(),
            text: v.as_str().map(str::to_string),
            number: v.as_f64().map(f64::to_bits),
            strings,
        }
    }
}

#[test]
fn rows_as_people_write_them_are_read_in_place() {
    for text in [
        r#"{"instruction": "Add 2 and 2.", "input": "", "output": "4"}"#,
        r#"  {"b":1,"a":[true,false,null,{"z":"x","y":[]}],"c":{}}  "#,
        "{\"messages\":[{\"role\":\"user\",\"content\":\"caf\\u00e9 \\\"quoted\\\" a\\/b\\n\"}]}\r",
        r#"{"n": -0, "m": 1.0, "k": 1e5, "j": 18446744073709551616, "i": -12, "h": 0.1e-2}"#,
        r#"{"text": "日本語のテキスト 😀", "tab": "\t"}"#,
        "{}",
    ] {
        assert!(check(text), "not read in place: {text}");
    }
}

#[test]
fn what_serde_json_judges_otherwise_is_left_to_it() {
    for text in [
        r#"{"a": 1, "a": 2}"#,      // serde_json keeps the last
        r#"{"a": "\ud83d\ude00"}"#, // a surrogate pair
        r#"{"a": "\ud83d"}"#,       // a lone surrogate
        r#"{"a": 1e400}"#,          // out of range
        "{\"a\": \"raw\ttab\"}",    // a control character
        r#"{"a": 01}"#,
        r#"{"a": 1.}"#,
        r#"{"a": .5}"#,
        r#"{"a": +1}"#,
        r#"{"a": "\x"}"#,
        r#"{"a": "\u00zz"}"#,
        r#"{"a": "\u+0ab"}"#,
        r#"{"a": tru}"#,
        r#"{"a": 1,}"#,
        r#"{"a": [1,]}"#,
        r#"{"a" 1}"#,
        r#"{"a": 1} x"#,
        r#"{"a": 1"#,
        r#"["a"]"#,
        "\u{feff}{\"a\": 1}",
        "",
    ] {
        assert!(!check(text), "read in place: {text}");
    }
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
    assert!(!check(&deep));
    let fine = format!("{{\"a\":{}1{}}}", "[".repeat(20), "]".repeat(20));
    assert!(check(&fine));
}

fn value() -> impl Strategy<Value = Value> {
    let text = prop::collection::vec(
        prop::sample::select(vec!["a", "Z", " ", "\"", "\\", "/", "\n", "\t", "\u{1}", "é", "日", "😀", "\u{7f}", "0"]),
        0..8,
    )
    .prop_map(|parts| parts.concat());
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |x| x.is_finite()).prop_map(Value::from),
        text.clone().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text.clone(), inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn row() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z\"é]{0,4}", value(), 0..5).prop_map(|m| m.into_iter().collect())
}

/// `value` as JSON with spaces here and there and some characters escaped that need not be.
fn written(value: &Value, spaces: &mut impl Iterator<Item = bool>, out: &mut String) {
    fn space(spaces: &mut impl Iterator<Item = bool>, out: &mut String) {
        if spaces.next().unwrap_or(false) {
            out.push_str(" \t");
        }
    }
    match value {
        Value::Object(map) => {
            out.push('{');
            // Written in reverse, so the reader has to sort.
            for (i, (k, v)) in map.iter().rev().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                space(spaces, out);
                written(&Value::String(k.clone()), spaces, out);
                out.push(':');
                written(v, spaces, out);
                space(spaces, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                written(v, spaces, out);
            }
            space(spaces, out);
            out.push(']');
        }
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '/' if spaces.next().unwrap_or(false) => out.push_str("\\/"),
                    'é' if spaces.next().unwrap_or(false) => out.push_str("\\u00E9"),
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        other => out.push_str(&other.to_string()),
    }
}

proptest! {
    #[test]
    fn rows_read_in_place_are_the_rows_serde_json_reads(row in row(), spaces in prop::collection::vec(any::<bool>(), 64)) {
        let compact = serde_json::to_string(&row).unwrap();
        prop_assert!(check(&compact), "serde_json's own writing not read in place: {}", compact);
        let mut loose = String::new();
        written(&Value::Object(row), &mut spaces.into_iter().cycle(), &mut loose);
        prop_assert!(check(&loose), "not read in place: {}", loose);
    }

    #[test]
    fn broken_rows_are_never_vouched_for(row in row(), at in any::<prop::sample::Index>(), byte in prop::sample::select(b"{}[]\",:\\ 0-.eu\ttfn".to_vec()), how in 0..3u8) {
        let mut bytes = serde_json::to_string(&row).unwrap().into_bytes();
        let i = at.index(bytes.len() + 1);
        match how {
            0 => bytes.insert(i, byte),
            1 if i < bytes.len() => { bytes.remove(i); }
            _ if i < bytes.len() => bytes[i] = byte,
            _ => bytes.push(byte),
        }
        if let Ok(text) = std::str::from_utf8(&bytes) {
            check(text);
        }
    }
}
