//! Does a training set contain evaluation items? The three tests used to decontaminate LLM
//! training data, run against an index of the evaluation side built once:
//!
//! - **exact**: a field of a training record equals an evaluation text;
//! - **normalised**: an evaluation text, lower-cased with runs of whitespace made one space,
//!   appears inside a training record, on word boundaries (`12+3=` is not found in `112+3=`);
//! - **n-gram**: an evaluation text of at least `n` words shares a run of `n` words with a
//!   training record (words are runs of letters and digits, lower-cased).
//!
//! Evaluation texts shorter than `min_chars` once normalised are left out: a three-digit answer
//! occurs everywhere and says nothing about leakage.

use crate::minhash::{Keyed, word_hashes, word_hashes_into};
use crate::read::scan::View;
use aho_corasick::AhoCorasick;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Words in a shared run that counts as overlap.
    pub ngram: usize,
    /// Evaluation texts shorter than this (normalised, in characters) are not checked.
    pub min_chars: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { ngram: 13, min_chars: 8 }
    }
}

/// One evaluation item: a name to report it by (`problems.jsonl:17`) and its texts (a prompt,
/// an answer...); the item is contaminated when any of its texts is found.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalItem {
    pub name: String,
    pub texts: Vec<String>,
}

/// One training record, as the texts it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub fields: Vec<String>,
}

impl Record {
    /// Every string value of `value`, at any depth (so `messages` lists count).
    pub fn from_value(value: &serde_json::Value) -> Record {
        let mut fields = Vec::new();
        collect_strings(value, &mut fields);
        Record { fields }
    }

    /// A JSONL line: every string value in it, at any depth (so `messages` lists count); a line
    /// that is not JSON is one text.
    pub fn from_json_line(line: &str) -> Record {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(value) => Record::from_value(&value),
            Err(_) => Record { fields: vec![line.to_string()] },
        }
    }
}

fn collect_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    value.for_each_string(&mut |s| out.push(s.to_string()));
}

/// The items of an evaluation file: in JSONL (by `source`'s extension), one per line holding the
/// `fields` asked for (every string field when none are), named `source:LINE`; otherwise one
/// per non-empty line.
pub fn items_of_file(source: &str, text: &str, fields: &[String]) -> Vec<EvalItem> {
    let jsonl = source.ends_with(".jsonl") || source.ends_with(".ndjson");
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let name = format!("{source}:{}", i + 1);
            let texts = match serde_json::from_str::<serde_json::Value>(line) {
                Ok(serde_json::Value::Object(map)) if jsonl && !fields.is_empty() => {
                    let mut texts = Vec::new();
                    fields.iter().filter_map(|f| map.get(f)).for_each(|v| collect_strings(v, &mut texts));
                    texts
                }
                Ok(value) if jsonl => {
                    let mut texts = Vec::new();
                    collect_strings(&value, &mut texts);
                    texts
                }
                _ => vec![line.to_string()],
            };
            EvalItem { name, texts }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Match {
    Exact,
    Normalised,
    Ngram,
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Match::Exact => "exact match",
            Match::Normalised => "normalised match",
            Match::Ngram => "shared n-gram",
        })
    }
}

/// The evaluation side, indexed for checking many training records.
pub struct EvalIndex {
    names: Vec<String>,
    exact: HashMap<String, Vec<usize>, foldhash::fast::RandomState>,
    /// Normalised texts shorter than an n-gram, searched for in every record.
    patterns: Option<AhoCorasick>,
    pattern_items: Vec<usize>,
    /// Normalised texts of an n-gram or more, per item: such a text can only be inside a record
    /// that shares its n-grams, so it is looked for only in the records the n-grams flag.
    long: HashMap<usize, Vec<String>>,
    ngrams: HashMap<u64, Vec<usize>, Keyed>,
    /// One bit per slot of n-gram keys, set for the slots `ngrams` holds keys in: small enough
    /// to stay in the processor's cache, it answers most lookups of a training text's n-grams
    /// (almost all absent) without touching the table.
    ngram_slots: Vec<u64>,
    settings: Settings,
}

/// Slots of [`EvalIndex::ngram_slots`], as a power of two (256 KiB of bits).
const NGRAM_SLOT_BITS: u32 = 21;

/// The slot of an n-gram key: the high bits of a multiple (the polynomial keys' low bits are
/// weak).
fn ngram_slot(key: u64) -> usize {
    (key.wrapping_mul(0xd6e8_feb8_6659_fd93) >> (64 - NGRAM_SLOT_BITS)) as usize
}

impl EvalIndex {
    pub fn new(items: Vec<EvalItem>, settings: Settings) -> EvalIndex {
        let mut exact: HashMap<String, Vec<usize>, _> = HashMap::default();
        let mut normalised = Vec::new();
        let mut pattern_items = Vec::new();
        let mut long: HashMap<usize, Vec<String>> = HashMap::new();
        let mut ngrams: HashMap<u64, Vec<usize>, Keyed> = HashMap::default();
        let mut names = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            for text in &item.texts {
                let norm = normalise(text);
                if norm.chars().count() < settings.min_chars {
                    continue;
                }
                exact.entry(text.clone()).or_default().push(i);
                let words = word_hashes(text);
                if settings.ngram > 0 && words.len() >= settings.ngram {
                    for key in ngram_keys(&words, settings.ngram) {
                        let ids = ngrams.entry(key).or_default();
                        if ids.last() != Some(&i) {
                            ids.push(i);
                        }
                    }
                    long.entry(i).or_default().push(norm);
                } else {
                    normalised.push(norm);
                    pattern_items.push(i);
                }
            }
            names.push(item.name);
        }
        let patterns = (!normalised.is_empty())
            .then(|| AhoCorasick::new(&normalised).expect("plain string patterns always build"));
        let mut ngram_slots = vec![0u64; (1 << NGRAM_SLOT_BITS) / 64];
        for key in ngrams.keys() {
            let slot = ngram_slot(*key);
            ngram_slots[slot / 64] |= 1 << (slot % 64);
        }
        EvalIndex { names, exact, patterns, pattern_items, long, ngrams, ngram_slots, settings }
    }

    /// How many evaluation items there are (checked or too short to check).
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn name(&self, item: usize) -> &str {
        &self.names[item]
    }

    /// The evaluation items a training record contains, each once with the strongest way it
    /// was found.
    pub fn check(&self, record: &Record) -> BTreeMap<usize, Match> {
        let texts: Vec<&str> = record.fields.iter().map(String::as_str).collect();
        self.check_texts(&texts)
    }

    /// [`EvalIndex::check`] of a record given as its texts, borrowed.
    pub fn check_texts(&self, texts: &[&str]) -> BTreeMap<usize, Match> {
        let mut found: BTreeMap<usize, Match> = BTreeMap::new();
        let mut note = |item: usize, kind: Match| {
            found.entry(item).and_modify(|k| *k = (*k).min(kind)).or_insert(kind);
        };
        for field in texts {
            if let Some(items) = self.exact.get(*field) {
                items.iter().for_each(|&i| note(i, Match::Exact));
            }
        }
        // The texts joined by newlines are only made when a finding needs them.
        let joined = || texts.join("\n");
        let mut hay: Option<String> = None;
        if let Some(patterns) = &self.patterns {
            let hay = hay.get_or_insert_with(|| normalise(&joined()));
            for m in patterns.find_overlapping_iter(hay.as_str()) {
                if on_word_boundaries(hay, m.start(), m.end()) {
                    note(self.pattern_items[m.pattern().as_usize()], Match::Normalised);
                }
            }
        }
        if !self.ngrams.is_empty() {
            // The words of the joined texts are those of each text, one after another.
            let mut words = Vec::new();
            texts.iter().for_each(|t| word_hashes_into(t, &mut words));
            let mut by_ngram = Vec::new();
            for key in ngram_keys(&words, self.settings.ngram) {
                let slot = ngram_slot(key);
                if self.ngram_slots[slot / 64] & (1 << (slot % 64)) == 0 {
                    continue;
                }
                if let Some(items) = self.ngrams.get(&key) {
                    by_ngram.extend_from_slice(items);
                }
            }
            by_ngram.sort_unstable();
            by_ngram.dedup();
            for item in by_ngram {
                note(item, Match::Ngram);
                // The whole text may be there too: the stronger finding.
                let hay = hay.get_or_insert_with(|| normalise(&joined()));
                let whole = self.long.get(&item).is_some_and(|texts| {
                    texts
                        .iter()
                        .any(|t| hay.match_indices(t.as_str()).any(|(at, _)| on_word_boundaries(hay, at, at + t.len())))
                });
                if whole {
                    note(item, Match::Normalised);
                }
            }
        }
        found
    }

    /// Checks every record; keeps, per contaminated item, the first record that holds it.
    pub fn scan(&self, records: impl IntoIterator<Item = Record>) -> Report {
        let mut first: BTreeMap<usize, Overlap> = BTreeMap::new();
        let mut rows = 0;
        let mut rows_flagged = 0;
        for (row, record) in records.into_iter().enumerate() {
            rows += 1;
            let found = self.check(&record);
            if !found.is_empty() {
                rows_flagged += 1;
            }
            for (item, kind) in found {
                first.entry(item).or_insert(Overlap { item, row, kind });
            }
        }
        Report { items: self.len(), rows, rows_flagged, overlaps: first.into_values().collect() }
    }
}

/// A contaminated evaluation item and the first training record found holding it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overlap {
    pub item: usize,
    /// Zero-based position of the training record.
    pub row: usize,
    pub kind: Match,
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Evaluation items in the index.
    pub items: usize,
    /// Training records checked.
    pub rows: usize,
    /// Training records holding at least one evaluation item.
    pub rows_flagged: usize,
    /// One per contaminated evaluation item, in item order.
    pub overlaps: Vec<Overlap>,
}

impl Report {
    /// The share of evaluation items found in the training data.
    pub fn fraction(&self) -> f64 {
        if self.items == 0 { 0.0 } else { self.overlaps.len() as f64 / self.items as f64 }
    }
}

/// Lower case, runs of whitespace as one space, no leading or trailing space.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        if word.is_ascii() {
            out.extend(word.bytes().map(|b| char::from(b.to_ascii_lowercase())));
        } else {
            out.extend(word.chars().flat_map(char::to_lowercase));
        }
    }
    out
}

/// The base of the n-gram keys' polynomial.
const NGRAM_BASE: u64 = 0x9e37_79b9_7f4a_7c15;

/// One key for a run of words (their hashes, in order): the polynomial with the words as
/// coefficients, so the key of the next run follows from this one in three operations.
fn hash_words(words: &[u64]) -> u64 {
    words.iter().fold(0, |h, w| h.wrapping_mul(NGRAM_BASE).wrapping_add(*w))
}

/// The key ([`hash_words`]) of every run of `n` words, in order, each from the one before.
fn ngram_keys(words: &[u64], n: usize) -> impl Iterator<Item = u64> + '_ {
    let n = n.max(1);
    let first = (words.len() >= n).then(|| hash_words(&words[..n]));
    // The weight of the word that leaves the window.
    let top = (1..n).fold(1u64, |p, _| p.wrapping_mul(NGRAM_BASE));
    let rest = words.get(n..).unwrap_or(&[]).iter().zip(words);
    first.into_iter().chain(rest.scan(first.unwrap_or(0), move |h, (incoming, outgoing)| {
        *h = h.wrapping_sub(outgoing.wrapping_mul(top)).wrapping_mul(NGRAM_BASE).wrapping_add(*incoming);
        Some(*h)
    }))
}

/// A match may not cut a word in two: at each end, either the text beside it or the match's own
/// edge is not a letter or digit.
fn on_word_boundaries(hay: &str, start: usize, end: usize) -> bool {
    let inner_first = hay[start..end].chars().next();
    let inner_last = hay[start..end].chars().next_back();
    let before = hay[..start].chars().next_back();
    let after = hay[end..].chars().next();
    let cut = |outside: Option<char>, inside: Option<char>| matches!((outside, inside), (Some(o), Some(i)) if o.is_alphanumeric() && i.is_alphanumeric());
    !cut(before, inner_first) && !cut(after, inner_last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn item(name: &str, texts: &[&str]) -> EvalItem {
        EvalItem { name: name.into(), texts: texts.iter().map(|t| t.to_string()).collect() }
    }

    fn record(fields: &[&str]) -> Record {
        Record { fields: fields.iter().map(|t| t.to_string()).collect() }
    }

    fn index() -> EvalIndex {
        EvalIndex::new(
            vec![
                item("bench:0", &["Q: 123+456=", "579"]),
                item("bench:1", &["reverse the word: planet"]),
                item(
                    "bench:2",
                    &["the quick brown fox jumps over the lazy dog while the cat sleeps on a warm mat by the fire"],
                ),
            ],
            Settings::default(),
        )
    }

    #[test]
    fn finds_each_kind_of_overlap() {
        let idx = index();
        assert_eq!(idx.check(&record(&["Q: 123+456=", "579"])), BTreeMap::from([(0, Match::Exact)]));
        assert_eq!(idx.check(&record(&["q:   123+456=  579"])), BTreeMap::from([(0, Match::Normalised)]));
        assert_eq!(
            idx.check(&record(&["Then: REVERSE the word:\tplanet.", "tenalp"])),
            BTreeMap::from([(1, Match::Normalised)])
        );
        let thirteen = "a story: The quick brown fox jumps over the lazy dog while the cat sleeps on a cold floor";
        assert_eq!(idx.check(&record(&[thirteen])), BTreeMap::from([(2, Match::Ngram)]));
        // A long text there whole, re-cased and re-spaced, is the stronger finding.
        let whole =
            "Story:  THE quick brown fox jumps over the lazy dog while the cat sleeps on a warm mat by the fire.";
        assert_eq!(idx.check(&record(&[whole])), BTreeMap::from([(2, Match::Normalised)]));
        // ...but not when it runs on into a longer word.
        let cut = "the quick brown fox jumps over the lazy dog while the cat sleeps on a warm mat by the firefly";
        assert_eq!(idx.check(&record(&[cut])), BTreeMap::from([(2, Match::Ngram)]));
    }

    #[test]
    fn near_misses_are_clean() {
        let idx = index();
        // A different problem that contains the benchmark's characters, but not on word boundaries.
        assert!(idx.check(&record(&["Q: 1123+456=", "1579"])).is_empty());
        assert!(idx.check(&record(&["Q: 123+4567="])).is_empty());
        // The short answer alone is not evidence.
        assert!(idx.check(&record(&["Q: 100+479=", "579"])).is_empty());
        // Twelve shared words are not thirteen.
        assert!(idx.check(&record(&["the quick brown fox jumps over the lazy dog while the cat"])).is_empty());
        assert!(idx.check(&record(&["reverse the word: planets"])).is_empty());
    }

    #[test]
    fn json_lines_give_every_string_at_any_depth() {
        let r = Record::from_json_line(r#"{"messages": [{"role": "user", "content": "Q: 123+456="}], "n": 3}"#);
        assert_eq!(r.fields, vec!["Q: 123+456=", "user"]);
        assert_eq!(Record::from_json_line("not json {").fields, vec!["not json {"]);
    }

    #[test]
    fn scan_reports_the_first_record_per_item_and_the_share() {
        let idx = index();
        let rows = vec![
            record(&["nothing here"]),
            record(&["x", "Q: 123+456="]),
            record(&["q: 123+456= again, and reverse the word: planet"]),
        ];
        let report = idx.scan(rows);
        assert_eq!(report.rows, 3);
        assert_eq!(report.rows_flagged, 2);
        assert_eq!(
            report.overlaps,
            vec![Overlap { item: 0, row: 1, kind: Match::Exact }, Overlap { item: 1, row: 2, kind: Match::Normalised }]
        );
        assert!((report.fraction() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(idx.name(1), "bench:1");
    }

    #[test]
    fn files_give_items_by_line() {
        let jsonl =
            "{\"prompt\": \"Q: 1+2=\", \"answer\": \"3\", \"id\": 7}\n\n{\"prompt\": \"Q: 4+5=\", \"answer\": \"9\"}\n";
        let all = items_of_file("b/p.jsonl", jsonl, &[]);
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].name, "b/p.jsonl:3");
        assert_eq!(all[0].texts, vec!["3", "Q: 1+2="]);
        let prompts = items_of_file("b/p.jsonl", jsonl, &["prompt".to_string()]);
        assert_eq!(prompts[0].texts, vec!["Q: 1+2="]);
        let text = items_of_file("valid.txt", "first line\n\n{\"a\": 1}\n", &["prompt".to_string()]);
        assert_eq!(text.iter().map(|i| i.texts[0].as_str()).collect::<Vec<_>>(), vec!["first line", "{\"a\": 1}"]);
    }

    proptest::proptest! {
        /// Each rolled key is the key of its window.
        #[test]
        fn rolled_ngram_keys_are_the_keys_of_their_windows(
            words in proptest::collection::vec(proptest::num::u64::ANY, 0..40),
            n in 1usize..15,
        ) {
            let rolled: Vec<u64> = ngram_keys(&words, n).collect();
            let direct: Vec<u64> = words.windows(n).map(hash_words).collect();
            proptest::prop_assert_eq!(rolled, direct);
        }
    }

    #[test]
    fn an_empty_index_finds_nothing() {
        let idx = EvalIndex::new(vec![item("short", &["abc"])], Settings::default());
        assert_eq!(idx.len(), 1);
        assert!(idx.check(&record(&["abc"])).is_empty());
    }

    proptest! {
        /// Whatever the case, spacing and surrounding text, an evaluation text inside a record
        /// is found.
        #[test]
        fn embedded_items_are_always_found(
            words in proptest::collection::vec("[a-z0-9+=]{1,6}", 3..8),
            before in "[a-z ]{0,10}",
            after in "[a-z ]{0,10}",
            upper in any::<bool>(),
        ) {
            let text = words.join(" ");
            prop_assume!(text.len() >= 8);
            let idx = EvalIndex::new(vec![item("x", &[&text])], Settings::default());
            let mut shown = words.join("  \n ");
            if upper {
                shown = shown.to_uppercase();
            }
            let hay = format!("{before} {shown} {after}");
            prop_assert!(idx.check(&record(&[&hay])).contains_key(&0), "{hay:?}");
        }
    }
}
