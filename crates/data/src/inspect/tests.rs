use super::*;
use crate::read::OnMalformed;
use serde_json::json;

fn inspect_lines(lines: &[Value], extra: &str) -> Inspection {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.jsonl");
    let mut text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    text.push_str(extra);
    std::fs::write(&path, text).unwrap();
    let mut rows = Rows::open(&path, OnMalformed::Skip).unwrap();
    inspect(&mut rows, &InspectSettings::default()).unwrap()
}

/// A long text: 120 different words.
fn story() -> String {
    (0..120).map(|i| format!("w{}", i * 31)).collect::<Vec<_>>().join(" ")
}

#[test]
fn counts_columns_nulls_empties_and_numbers_across_a_mixed_schema() {
    let i = inspect_lines(
        &[
            json!({"prompt": "2+2=", "answer": "4", "score": 1}),
            json!({"prompt": "", "answer": null, "score": 0.5}),
            json!({"prompt": "3+3=", "tags": []}),
        ],
        "not json\n",
    );
    assert_eq!((i.rows, i.skipped), (3, 1));
    assert!(i.skipped_examples[0].contains(":4: not JSON"), "{:?}", i.skipped_examples);
    let col = |name: &str| i.columns.iter().find(|c| c.name == name).unwrap();
    assert_eq!((col("prompt").present, col("prompt").empty), (3, 1));
    assert_eq!((col("answer").present, col("answer").nulls), (2, 1));
    assert_eq!(col("answer").types, BTreeMap::from([("null".into(), 1), ("string".into(), 1)]));
    assert_eq!((col("tags").present, col("tags").empty), (1, 1), "a column only some rows have");
    let n = col("score").numbers.clone().unwrap();
    assert_eq!((n.count, n.min, n.max, n.mean), (2, 0.5, 1.0, 0.75));
    assert_eq!(col("prompt").chars.clone().unwrap().max, 4);
    assert_eq!(i.samples.len(), 3);
}

#[test]
fn finds_exact_and_near_duplicates_and_says_which_rows() {
    let story = story();
    let near = story.replacen("w310", "changed", 1);
    let i = inspect_lines(
        &[
            json!({"text": story}),
            json!({"text": "something else entirely, about arithmetic and reversing words in a small model"}),
            json!({"text": story}),
            json!({"text": near}),
            json!({"text": story}),
        ],
        "",
    );
    assert_eq!(i.exact_duplicates.count, 2);
    assert_eq!(i.exact_duplicates.examples, vec![(3, 1), (5, 1)]);
    let near = i.near_duplicates.unwrap();
    assert_eq!(near.found.count, 1, "exact repeats are not counted again as near ones");
    assert_eq!(near.found.examples, vec![(4, 1)]);
    assert_eq!(near.threshold, 0.8);
}

#[test]
fn lengths_scripts_and_languages() {
    let rows: Vec<Value> = (1..=100).map(|n| json!({"text": "a".repeat(n)})).collect();
    let i = inspect_lines(&rows, "");
    let chars = i.text_chars.unwrap();
    assert_eq!((chars.min, chars.max, chars.p50, chars.p90, chars.p99), (1, 100, 50, 90, 99));
    assert_eq!(chars.mean, 50.5);
    assert_eq!(i.text_tokens.unwrap().max, 25, "about four characters a token");

    let i = inspect_lines(
        &[
            json!({"text": "Le chat est sur la table et les enfants sont dans le jardin pour jouer"}),
            json!({"text": "数学の問題を解く"}),
        ],
        "",
    );
    assert_eq!(i.languages[0].language, "fr", "{:?}", i.languages);
    assert!(i.scripts["han"] >= 3 && i.scripts["kana"] >= 3, "{:?}", i.scripts);
    assert!(i.scripts["ascii"] > 50);
}

#[test]
fn long_lengths_are_within_one_percent() {
    let mut h = Histogram::default();
    for v in [5_000u64, 10_000, 20_000, 1_000_000] {
        h.add(v);
    }
    let p50 = h.quantile(0.5) as f64;
    assert!((p50 - 10_000.0).abs() / 10_000.0 < 0.01, "{p50}");
    assert_eq!(h.quantile(1.0), 1_000_000, "never beyond the largest seen");
}

#[test]
fn token_estimate_counts_words_in_pieces_and_punctuation() {
    assert_eq!(approximate_tokens(""), 0);
    assert_eq!(approximate_tokens("hello, world!"), 2 + 1 + 2 + 1);
    assert_eq!(approximate_tokens("a b c"), 3);
    assert_eq!(approximate_tokens("naïve café\u{000b}x"), 2 + 1 + 1, "letters beyond ASCII and a vertical tab");
}

proptest::proptest! {
    /// ASCII text, counted byte by byte without decoding, gives the count of its definition.
    #[test]
    fn ascii_token_estimate_matches_its_definition(text in "[a-zA-Z0-9 \t\n\x0b.,!]{0,400}") {
        proptest::prop_assert_eq!(approximate_tokens(&text), tokens_by_characters(&text));
    }

    /// Both ways of classifying a block of bytes agree with the definition, byte by byte.
    #[test]
    fn blocks_are_classified_as_their_bytes_are(bytes in proptest::collection::vec(0u8..128, 64)) {
        let block: &[u8; 64] = bytes.as_slice().try_into().unwrap();
        let (mut word, mut mark) = (0u64, 0u64);
        for (i, b) in bytes.iter().enumerate() {
            word |= u64::from(b.is_ascii_alphanumeric()) << i;
            let space = b.is_ascii_whitespace() || *b == 0x0b;
            mark |= u64::from(!b.is_ascii_alphanumeric() && !space) << i;
        }
        proptest::prop_assert_eq!(classes_by_words(block), (word, mark));
        proptest::prop_assert_eq!(classes(block), (word, mark));
    }

    /// Words longer than a block, and words that cross from one block into the next.
    #[test]
    fn long_words_are_counted_across_blocks(text in "([a-z0-9]{0,150}[ .,]{1,2}){0,6}") {
        proptest::prop_assert_eq!(approximate_tokens(&text), tokens_by_characters(&text));
    }

    /// The byte-level count agrees with the plain definition over characters on any text.
    #[test]
    fn token_estimate_matches_its_definition(text in "(\\PC|[ \t\n\x0b.,!])*") {
        proptest::prop_assert_eq!(approximate_tokens(&text), tokens_by_characters(&text));
    }
}

#[test]
fn a_file_read_on_every_core_is_inspected_as_row_by_row() {
    // More than a few chunks of lines, with repeats, near repeats, several scripts and
    // languages, malformed lines, and rows early in later chunks that must not become samples.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.jsonl");
    let mut text = String::new();
    for i in 0..30_000u64 {
        let row = match i % 7 {
            0 => json!({"instruction": format!("{} {}", story(), i / 7), "output": "the cat and the dog"}),
            1 => json!({"instruction": "le chat et la souris dans la maison", "output": i}),
            2 => json!({"prompt": "数学の問題 漢字", "chosen": "はい", "rejected": "いいえ", "n": i as f64 / 3.0}),
            3 => json!({"instruction": "repeat me exactly", "output": "same"}),
            // Escapes, nesting and negative numbers: the in-place reader must see what the parser does.
            5 => {
                json!({"messages": [{"role": "user", "content": format!("line\nbreak \"{i}\" é\t")}], "id": -(i as i64)})
            }
            _ => json!({"instruction": format!("question number {i} about the river"), "input": "", "output": null}),
        };
        text.push_str(&format!("{row}\n"));
        if i % 1000 == 999 {
            text.push_str("{broken\n\n");
        }
    }
    std::fs::write(&path, &text).unwrap();
    assert!(text.len() > 3 * crate::read::parallel::CHUNK_BYTES, "several chunks");
    let settings = InspectSettings::default();
    let parallel = inspect(&mut Rows::open(&path, OnMalformed::Skip).unwrap(), &settings).unwrap();
    let mut acc = Accumulator::new(&settings);
    let mut rows = Rows::open(&path, OnMalformed::Skip).unwrap();
    for row in rows.by_ref() {
        acc.add(&row.unwrap());
    }
    let one_by_one = acc.finish(rows.skipped().count, rows.skipped().first.clone());
    assert_eq!(parallel, one_by_one);
    assert_eq!((parallel.rows, parallel.skipped), (30_000, 30));
    assert!(parallel.exact_duplicates.count > 1000 && parallel.near_duplicates.as_ref().unwrap().found.count > 1000);
    assert_eq!(parallel.samples.len(), 3);
    assert_eq!(parallel.samples[0]["output"], "the cat and the dog");
}

#[test]
fn a_rows_text_joins_every_string_even_empty_ones_by_a_newline() {
    let i = inspect_lines(&[json!({"input": "", "instruction": "xy", "output": "z"})], "");
    let chars = i.text_chars.unwrap();
    assert_eq!((chars.min, chars.max), (5, 5), "\"\" + \\n + \"xy\" + \\n + \"z\"");
    assert_eq!(i.scripts["ascii"], 5);
    assert_eq!(i.text_tokens.unwrap().max, 2);
}
