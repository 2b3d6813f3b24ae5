//! What is in a dataset, in one streaming pass: its schema and row count, each column's
//! types, nulls, empty values, lengths and numbers, the length of each row's text in characters
//! and approximate tokens, exact duplicates (a hash of the whole row), near duplicates (MinHash
//! with LSH over the row's text), the scripts its characters are written in and hints of its
//! language, and a few sample rows. Memory is bounded by the number of rows (a hash per row,
//! a few band keys per row for near duplicates), never by their size.

use crate::formats::{Shape, recognise_fields};
use crate::minhash::{NearDuplicates, NearSettings, Signer};
use crate::read::parallel::{Batch, CHUNK_BYTES, workers};
use crate::read::scan::{self, Fields, View};
use crate::read::{ReadError, Row, Rows, row_from_text};
use crate::version::Hasher as ContentHasher;
use seen::Seen;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq)]
pub struct InspectSettings {
    /// Near duplicates to look for, or none.
    pub near: Option<NearSettings>,
    /// Sample rows shown.
    pub samples: usize,
    /// Examples kept of each kind of duplicate.
    pub examples: usize,
}

impl Default for InspectSettings {
    fn default() -> InspectSettings {
        InspectSettings { near: Some(NearSettings::default()), samples: 3, examples: 5 }
    }
}

/// Rows read before the table of distinct rows is sized for the whole file.
const SIZED_AFTER_ROWS: u64 = 1000;
/// How many rows ahead the table of rows seen is asked for a row's slot.
const PREFETCH_AHEAD: usize = 8;
/// Rows the table is sized for at most (about 200 MB); it grows past that as needed.
const MAX_SIZED_ROWS: usize = 4 << 20;

/// Rows on the file's first lines give the language hints (the counts need no more).
const LANGUAGE_LINES: u64 = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inspection {
    pub rows: u64,
    /// Malformed rows skipped, and the first few of them.
    pub skipped: u64,
    pub skipped_examples: Vec<String>,
    /// Columns in the order they were first seen.
    pub columns: Vec<ColumnReport>,
    /// Each row's text (every string in it), in characters and approximate tokens.
    pub text_chars: Option<Lengths>,
    pub text_tokens: Option<Lengths>,
    pub exact_duplicates: Duplicates,
    pub near_duplicates: Option<NearReport>,
    /// Characters by the script they belong to.
    pub scripts: BTreeMap<String, u64>,
    /// Languages whose common words the text uses, with their share of those words.
    pub languages: Vec<LanguageHint>,
    /// Rows by the post-training shape they have (rows of no known shape are not counted).
    pub shapes: BTreeMap<Shape, u64>,
    /// The content's version (see `version.rs`), when no row was skipped.
    pub version: Option<String>,
    pub samples: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnReport {
    pub name: String,
    /// Rows that have the column at all (a mixed schema shows here).
    pub present: u64,
    pub nulls: u64,
    /// Empty strings, lists and objects.
    pub empty: u64,
    /// JSON types seen, with counts.
    pub types: BTreeMap<String, u64>,
    /// Lengths of its strings, in characters.
    pub chars: Option<Lengths>,
    pub numbers: Option<Numbers>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Numbers {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
}

/// A distribution of lengths: exact below 1024, within 1% above.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lengths {
    pub count: u64,
    pub min: u64,
    pub max: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    /// How the lengths spread: about [`BINS`] bins of equal width from `min` to `max` (of equal
    /// ratio when the range spans more than two orders of magnitude), for plots.
    pub histogram: Vec<Bin>,
}

/// Values in `from..=to`, and how many.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bin {
    pub from: u64,
    pub to: u64,
    pub count: u64,
}

/// Bins of a length histogram.
pub const BINS: usize = 24;

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Duplicates {
    /// Rows that repeat an earlier row.
    pub count: u64,
    /// `(row, earlier row)` by line.
    pub examples: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearReport {
    pub threshold: f64,
    pub shingle: usize,
    pub bands: usize,
    pub rows_per_band: usize,
    /// Rows that nearly repeat an earlier row and are not exact repeats of one.
    #[serde(flatten)]
    pub found: Duplicates,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LanguageHint {
    pub language: String,
    pub share: f64,
}

impl Inspection {
    /// The inspection in a few lines of plain text, for a reader with little room (an agent's
    /// tool result): counts, columns, shapes, duplicates, languages and the start of a few rows.
    pub fn brief(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = write!(out, "{} rows", self.rows);
        if self.skipped > 0 {
            let _ = write!(out, " ({} malformed skipped)", self.skipped);
        }
        out.push('\n');
        if let Some(l) = &self.text_chars {
            let _ = writeln!(out, "characters per row: min {}, median {}, p90 {}, max {}", l.min, l.p50, l.p90, l.max);
        }
        if let Some(l) = &self.text_tokens {
            let _ = writeln!(out, "tokens per row (approx.): median {}, p90 {}, max {}", l.p50, l.p90, l.max);
        }
        for c in &self.columns {
            let types: Vec<String> = c.types.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = write!(out, "column {}: {}", c.name, types.join(", "));
            if c.nulls + c.empty > 0 {
                let _ = write!(out, "; {} null, {} empty", c.nulls, c.empty);
            }
            if let Some(l) = &c.chars {
                let _ = write!(out, "; {}..{} chars (median {})", l.min, l.max, l.p50);
            }
            out.push('\n');
        }
        if !self.shapes.is_empty() {
            let shapes: Vec<String> = self.shapes.iter().map(|(s, n)| format!("{s} {n}")).collect();
            let _ = writeln!(out, "post-training shape: {}", shapes.join(", "));
        }
        let _ = write!(out, "exact duplicates: {}", self.exact_duplicates.count);
        if let Some(near) = &self.near_duplicates {
            let _ = write!(out, "; near duplicates (similarity > {}): {}", near.threshold, near.found.count);
        }
        out.push('\n');
        if !self.languages.is_empty() {
            let langs: Vec<String> =
                self.languages.iter().map(|l| format!("{} {:.0}%", l.language, 100.0 * l.share)).collect();
            let _ = writeln!(out, "language hints: {}", langs.join(", "));
        }
        for (i, sample) in self.samples.iter().enumerate() {
            let text = sample.to_string();
            let shown: String = text.chars().take(240).collect();
            let more = if shown.len() < text.len() { "…" } else { "" };
            let _ = writeln!(out, "row {}: {shown}{more}", i + 1);
        }
        out
    }
}

/// Reads `rows` to the end and says what is in them. Rows are worked out on every core the
/// file's format allows (see [`Rows::map_each`]) and tallied in file order.
pub fn inspect(rows: &mut Rows, settings: &InspectSettings) -> Result<Inspection, ReadError> {
    let mut acc = Accumulator::new(settings);
    acc.file_bytes = std::fs::metadata(rows.path()).ok().map(|m| m.len());
    if rows.reads_in_parallel() {
        let analyser = acc.analyser();
        rows.fold_lines_in_parallel(
            workers(),
            CHUNK_BYTES,
            &|facts: &mut Facts, text: &str, line, nth| analyser.add_line(facts, text, line, nth),
            &mut |facts, taken| {
                acc.absorb(facts, taken);
                Ok::<_, ReadError>(())
            },
        )?;
    } else {
        for row in rows.by_ref() {
            acc.add_owned(row?);
        }
    }
    let skipped = rows.skipped().clone();
    Ok(acc.finish(skipped.count, skipped.first))
}

/// The inspection of rows given one at a time.
pub struct Accumulator {
    settings: InspectSettings,
    rows: u64,
    columns: Vec<ColumnAcc>,
    column_index: HashMap<String, usize>,
    /// The last row's names (as [`RowFacts`] holds them) and their columns.
    schema: (Vec<u8>, Vec<usize>),
    text_chars: Histogram,
    text_tokens: Histogram,
    /// Each distinct row's hash and the line it was first seen on.
    seen: Seen,
    /// The file's size, when known, and the canonical bytes of the rows so far: the table of
    /// rows is made its final size early, from the first rows' size, rather than grown (fresh
    /// memory costs a page of zeros at a time).
    file_bytes: Option<u64>,
    row_bytes: u64,
    exact: Duplicates,
    near: Option<(NearDuplicates, Duplicates)>,
    scripts: [u64; SCRIPTS.len()],
    language_words: [u64; COMMON_WORDS.len()],
    shapes: BTreeMap<Shape, u64>,
    version: ContentHasher,
    samples: Vec<Value>,
    /// The facts of a row given by [`Accumulator::add`], kept for the next one.
    scratch: Facts,
}

struct ColumnAcc {
    name: String,
    present: u64,
    nulls: u64,
    empty: u64,
    types: BTreeMap<&'static str, u64>,
    chars: Histogram,
    numbers: Option<Numbers>,
}

/// What a batch of rows adds to an inspection, worked out without the rest of the file (so on
/// any thread) by an [`Analyser`]. Each row's parts of varying size lie one after another in
/// buffers the batch's rows share.
#[derive(Default)]
pub struct Facts {
    rows: Vec<RowFacts>,
    /// The fields' names, each as its length (four bytes) and bytes: rows of one schema compare
    /// equal here.
    names: Vec<u8>,
    fields: Vec<FieldFacts>,
    /// The rows as the version hashes them (canonical JSON lines).
    canonical: Vec<u8>,
    /// Band keys for near duplicates (none for a row without words).
    band_keys: Vec<u64>,
}

/// One row of [`Facts`].
struct RowFacts {
    line: u64,
    /// Where the row's parts end in the batch's buffers; each starts where the row before ends.
    ends: Ends,
    chars: u64,
    tokens: u64,
    scripts: [u64; SCRIPTS.len()],
    /// For rows on the file's first lines only.
    language_words: Option<[u64; COMMON_WORDS.len()]>,
    /// A 128-bit hash of the canonical row, for exact duplicates.
    key: u128,
    shape: Option<Shape>,
    /// The row itself, when it may be one of the samples.
    row: Option<Map<String, Value>>,
}

#[derive(Default, Clone, Copy)]
struct Ends {
    names: usize,
    fields: usize,
    canonical: usize,
    band_keys: usize,
}

impl Facts {
    /// Where row `i`'s parts start.
    fn starts(&self, i: usize) -> Ends {
        i.checked_sub(1).map_or_else(Ends::default, |before| self.rows[before].ends)
    }
}

impl Batch for Facts {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn clear(&mut self) {
        self.rows.clear();
        self.names.clear();
        self.fields.clear();
        self.canonical.clear();
        self.band_keys.clear();
    }
}

struct FieldFacts {
    kind: &'static str,
    null: bool,
    empty: bool,
    chars: Option<u64>,
    number: Option<f64>,
}

/// Works out each row's [`RowFacts`]; shared by the threads reading a file.
pub struct Analyser {
    samples: usize,
    near: Option<Arc<Signer>>,
}

impl Analyser {
    /// Adds the facts of `row`, the `nth` of its batch (rows early in a batch keep themselves,
    /// as the file's samples are taken from its first rows).
    pub fn add(&self, facts: &mut Facts, row: Row, nth: usize) {
        self.add_fields(facts, row.line, &row.fields);
        if nth < self.samples {
            facts.rows.last_mut().expect("a row was just added").row = Some(row.fields);
        }
    }

    /// [`Analyser::add`] of the JSON line `text`: read in place (see `read/scan.rs`), or parsed
    /// into a row when it is a sample or the in-place reader leaves it to the parser.
    pub(crate) fn add_line(&self, facts: &mut Facts, text: &str, line: u64, nth: usize) -> Result<(), String> {
        if nth >= self.samples
            && let Some(object) = scan::object(text)
        {
            self.add_fields(facts, line, &object);
            return Ok(());
        }
        self.add(facts, row_from_text(text, line)?, nth);
        Ok(())
    }

    fn add_fields(&self, facts: &mut Facts, line: u64, row: &impl Fields) {
        // The row's text is every string in it, one per line, as the contamination engine
        // joins them; its lengths and scripts are summed string by string, and the joined
        // text made only for what reads across strings.
        let mut text = TextStats::default();
        let mut strings = 0u64;
        for (name, value) in row.fields() {
            facts.names.extend_from_slice(&(name.len() as u32).to_le_bytes());
            facts.names.extend_from_slice(name.as_bytes());
            let mut chars = 0;
            value.for_each_string(&mut |s| {
                chars = text.add(s);
                strings += 1;
            });
            // A string field's length is the one just counted.
            facts.fields.push(FieldFacts::of(value, value.as_str().map(|_| chars)));
        }
        text.add_separators(strings.saturating_sub(1));
        let joined = (line <= LANGUAGE_LINES || self.near.is_some()).then(|| {
            let mut joined = String::with_capacity(text.bytes as usize);
            let mut first = true;
            for (_, value) in row.fields() {
                value.for_each_string(&mut |s| {
                    if !std::mem::take(&mut first) {
                        joined.push('\n');
                    }
                    joined.push_str(s);
                });
            }
            joined
        });
        let language_words = joined.as_ref().filter(|_| line <= LANGUAGE_LINES).map(|joined| {
            let mut counts = [0u64; COMMON_WORDS.len()];
            count_language_words(joined, &mut counts);
            counts
        });
        let start = facts.canonical.len();
        row.write_canonical(&mut facts.canonical);
        let key = hash128(&facts.canonical[start..]);
        if let Some((signer, text)) = self.near.as_ref().zip(joined.as_ref())
            && let Some(keys) = signer.band_keys(text)
        {
            facts.band_keys.extend(keys);
        }
        let ends = Ends {
            names: facts.names.len(),
            fields: facts.fields.len(),
            canonical: facts.canonical.len(),
            band_keys: facts.band_keys.len(),
        };
        facts.rows.push(RowFacts {
            line,
            ends,
            chars: text.chars,
            tokens: text.tokens,
            scripts: text.scripts,
            language_words,
            key,
            shape: recognise_fields(row),
            row: None,
        });
    }
}

impl FieldFacts {
    fn of(value: &impl View, chars: Option<u64>) -> FieldFacts {
        FieldFacts { kind: value.kind(), null: value.is_null(), empty: value.is_empty(), chars, number: value.as_f64() }
    }
}

impl Accumulator {
    pub fn new(settings: &InspectSettings) -> Accumulator {
        Accumulator {
            settings: settings.clone(),
            rows: 0,
            columns: Vec::new(),
            column_index: HashMap::new(),
            schema: (Vec::new(), Vec::new()),
            text_chars: Histogram::default(),
            text_tokens: Histogram::default(),
            seen: Seen::default(),
            file_bytes: None,
            row_bytes: 0,
            exact: Duplicates::default(),
            near: settings.near.map(|s| (NearDuplicates::new(s), Duplicates::default())),
            scripts: [0; SCRIPTS.len()],
            language_words: [0; COMMON_WORDS.len()],
            shapes: BTreeMap::new(),
            version: ContentHasher::default(),
            samples: Vec::new(),
            scratch: Facts::default(),
        }
    }

    /// What works out each row's facts for [`Accumulator::absorb`].
    pub fn analyser(&self) -> Analyser {
        Analyser { samples: self.settings.samples, near: self.near.as_ref().map(|(nd, _)| nd.signer().clone()) }
    }

    pub fn add(&mut self, row: &Row) {
        self.add_owned(row.clone());
    }

    /// [`Accumulator::add`] of a row the caller no longer needs (it may become a sample).
    pub fn add_owned(&mut self, row: Row) {
        let mut facts = std::mem::take(&mut self.scratch);
        facts.clear();
        self.analyser().add(&mut facts, row, self.samples.len());
        self.absorb(&mut facts, 0..1);
        self.scratch = facts;
    }

    /// Tallies the facts of a batch's rows `taken` (taking its sample rows); rows must come in
    /// file order.
    pub fn absorb(&mut self, facts: &mut Facts, taken: Range<usize>) {
        if taken.is_empty() {
            return;
        }
        let first = facts.starts(taken.start);
        let mut starts = first;
        for i in taken.clone() {
            // The rows' slots in the table of rows seen are far apart in memory: ask for those
            // of the rows a few places ahead while this one is tallied.
            if i + PREFETCH_AHEAD < taken.end {
                self.seen.prefetch(facts.rows[i + PREFETCH_AHEAD].key);
            }
            let ends = facts.rows[i].ends;
            let names = &facts.names[starts.names..ends.names];
            let fields = &facts.fields[starts.fields..ends.fields];
            let band_keys = &facts.band_keys[starts.band_keys..ends.band_keys];
            let row_bytes = (ends.canonical - starts.canonical) as u64;
            starts = ends;
            let row = &mut facts.rows[i];
            self.absorb_row(row, names, fields, band_keys, row_bytes);
        }
        // The rows as canonical JSON (keys in order), one after another, go into the file's
        // version at once.
        self.version.add_canonical(
            &facts.canonical[first.canonical..starts.canonical],
            facts.rows[taken].iter().map(|r| r.shape),
        );
    }

    fn absorb_row(&mut self, facts: &mut RowFacts, names: &[u8], fields: &[FieldFacts], band_keys: &[u64], bytes: u64) {
        self.rows += 1;
        // Most rows have the last row's fields: their columns are known without a lookup.
        if names != self.schema.0 {
            let mut columns = Vec::with_capacity(fields.len());
            let mut rest = names;
            while let Some((len, after)) = rest.split_first_chunk::<4>() {
                let (name, after) = after.split_at(u32::from_le_bytes(*len) as usize);
                let name = std::str::from_utf8(name).expect("names are written from strings");
                columns.push(self.column(name));
                rest = after;
            }
            self.schema = (names.to_vec(), columns);
        }
        for (field, &i) in fields.iter().zip(&self.schema.1) {
            self.columns[i].add(field);
        }
        self.text_chars.add(facts.chars);
        self.text_tokens.add(facts.tokens);
        for (total, n) in self.scripts.iter_mut().zip(facts.scripts) {
            *total += n;
        }
        if let Some(words) = facts.language_words {
            for (total, n) in self.language_words.iter_mut().zip(words) {
                *total += n;
            }
        }
        self.row_bytes += bytes;
        if self.rows == SIZED_AFTER_ROWS
            && let Some(file) = self.file_bytes
        {
            let expected = file as f64 / self.row_bytes as f64 * self.rows as f64;
            // Bounded, in case the first rows are far shorter than the rest.
            self.seen.reserve(((expected * 1.05) as usize).min(MAX_SIZED_ROWS));
        }
        // The hash of the whole row finds exact duplicates.
        let repeat = self.seen.first_or_insert(facts.key, facts.line);
        if let Some(first) = repeat {
            self.exact.count += 1;
            if self.exact.examples.len() < self.settings.examples {
                self.exact.examples.push((facts.line, first));
            }
        }
        if let Some((near, found)) = &mut self.near
            && !band_keys.is_empty()
        {
            let earlier = near.insert(facts.line, band_keys);
            if let (Some(first), None) = (earlier, repeat) {
                found.count += 1;
                if found.examples.len() < self.settings.examples {
                    found.examples.push((facts.line, first));
                }
            }
        }
        if let Some(shape) = facts.shape {
            *self.shapes.entry(shape).or_default() += 1;
        }
        if self.samples.len() < self.settings.samples
            && let Some(row) = facts.row.take()
        {
            self.samples.push(Value::Object(row));
        }
    }

    /// The column called `name`, made when it is first seen.
    fn column(&mut self, name: &str) -> usize {
        if let Some(i) = self.column_index.get(name) {
            return *i;
        }
        self.columns.push(ColumnAcc::new(name));
        self.column_index.insert(name.to_string(), self.columns.len() - 1);
        self.columns.len() - 1
    }

    pub fn finish(self, skipped: u64, skipped_examples: Vec<String>) -> Inspection {
        let total: u64 = self.language_words.iter().sum();
        let mut languages: Vec<LanguageHint> = COMMON_WORDS
            .iter()
            .zip(self.language_words)
            .map(|((l, _), n)| LanguageHint { language: (*l).to_string(), share: n as f64 / total.max(1) as f64 })
            .filter(|h| h.share >= 0.05)
            .collect();
        languages.sort_by(|a, b| b.share.total_cmp(&a.share).then(a.language.cmp(&b.language)));
        Inspection {
            rows: self.rows,
            skipped,
            skipped_examples,
            columns: self.columns.into_iter().map(ColumnAcc::finish).collect(),
            text_chars: self.text_chars.finish(),
            text_tokens: self.text_tokens.finish(),
            exact_duplicates: self.exact,
            near_duplicates: self.near.map(|(nd, found)| {
                let (bands, rows_per_band) = nd.shape();
                let s = self.settings.near.unwrap_or_default();
                NearReport { threshold: s.threshold, shingle: s.shingle, bands, rows_per_band, found }
            }),
            scripts: SCRIPTS
                .iter()
                .zip(self.scripts)
                .filter(|(_, n)| *n > 0)
                .map(|(k, n)| (k.to_string(), n))
                .collect(),
            languages,
            shapes: self.shapes,
            // Rows skipped leave the file's content undefined: no version for it.
            version: (skipped == 0).then(|| self.version.finish().0),
            samples: self.samples,
        }
    }
}

impl ColumnAcc {
    fn new(name: &str) -> ColumnAcc {
        ColumnAcc {
            name: name.to_string(),
            present: 0,
            nulls: 0,
            empty: 0,
            types: BTreeMap::new(),
            chars: Histogram::default(),
            numbers: None,
        }
    }

    fn add(&mut self, field: &FieldFacts) {
        self.present += 1;
        *self.types.entry(field.kind).or_insert(0) += 1;
        self.nulls += u64::from(field.null);
        self.empty += u64::from(field.empty);
        if let Some(chars) = field.chars {
            self.chars.add(chars);
        }
        if let Some(x) = field.number {
            let s = self.numbers.get_or_insert(Numbers { count: 0, min: x, max: x, mean: 0.0 });
            s.count += 1;
            s.min = s.min.min(x);
            s.max = s.max.max(x);
            s.mean += (x - s.mean) / s.count as f64;
        }
    }

    fn finish(self) -> ColumnReport {
        ColumnReport {
            name: self.name,
            present: self.present,
            nulls: self.nulls,
            empty: self.empty,
            types: self.types.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            chars: self.chars.finish(),
            numbers: self.numbers,
        }
    }
}

/// The length of a text in bytes, characters and approximate tokens, and its characters by
/// script, added up string by string.
#[derive(Default)]
struct TextStats {
    bytes: u64,
    chars: u64,
    tokens: u64,
    scripts: [u64; SCRIPTS.len()],
}

impl TextStats {
    /// Adds `s`; its length in characters.
    fn add(&mut self, s: &str) -> u64 {
        self.bytes += s.len() as u64;
        let chars = if s.is_ascii() {
            // Most text: a character per byte, all of one script.
            self.scripts[0] += s.len() as u64;
            self.tokens += ascii_tokens(s.as_bytes());
            s.len() as u64
        } else {
            count_scripts(s, &mut self.scripts);
            self.tokens += tokens_by_characters(s);
            s.chars().count() as u64
        };
        self.chars += chars;
        chars
    }

    /// The newlines that join `n + 1` strings into one text (white space: no token).
    fn add_separators(&mut self, n: u64) {
        self.bytes += n;
        self.chars += n;
        self.scripts[0] += n;
    }
}

/// Tokens as a byte-pair tokenizer of English would make them, roughly: a word piece per four
/// characters of a word, and each punctuation mark its own.
pub fn approximate_tokens(text: &str) -> u64 {
    if text.is_ascii() { ascii_tokens(text.as_bytes()) } else { tokens_by_characters(text) }
}

/// [`approximate_tokens`] by its definition, character by character.
fn tokens_by_characters(text: &str) -> u64 {
    let mut tokens = 0u64;
    let mut run = 0u64;
    for c in text.chars() {
        if c.is_alphanumeric() {
            run += 1;
        } else {
            tokens += run.div_ceil(4) + u64::from(!c.is_whitespace());
            run = 0;
        }
    }
    tokens + run.div_ceil(4)
}

/// [`approximate_tokens`] of ASCII text, 64 bytes at a time: a word of n letters or digits
/// makes a token at its 1st, 5th, 9th... character (n/4 rounded up), a mark one token. Each
/// block becomes two bit masks (letters and digits, marks) that the compiler can work out in
/// vector registers, and the tokens are counted in the masks.
fn ascii_tokens(bytes: &[u8]) -> u64 {
    let mut tokens = 0u64;
    // Where the word that runs into the next block is: its last byte's place after its last
    // token (0 to 3).
    let mut carry = None;
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        tokens += block_tokens(block.try_into().expect("64 bytes"), &mut carry);
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        let mut last = [b' '; 64];
        last[..rest.len()].copy_from_slice(rest);
        tokens += block_tokens(&last, &mut carry);
    }
    tokens
}

/// The tokens of one block of ASCII text; `carry` as [`ascii_tokens`] keeps it.
fn block_tokens(block: &[u8; 64], carry: &mut Option<u32>) -> u64 {
    let (word, mark) = classes(block);
    // Tokens start where a word starts, and every fourth character after while it goes on:
    // a bit moves on by four while the five bits from it to there are all in the word.
    let mut starts = word & !(word << 1);
    if let Some(c) = carry.take() {
        // The word from the last block goes on here: its next token is 3 - c bytes in.
        starts &= !1;
        let k = 3 - c;
        let upto = (2u64 << k) - 1;
        if word & upto == upto {
            starts |= 1 << k;
        }
    }
    let runs_of_five = word & (word << 1) & (word << 2) & (word << 3) & (word << 4);
    let (mut found, mut next) = (starts, starts);
    while next != 0 {
        next = (next << 4) & runs_of_five;
        found |= next;
    }
    if word >> 63 == 1 {
        *carry = Some(found.leading_zeros());
    }
    u64::from(found.count_ones() + mark.count_ones())
}

/// The letters and digits, and the marks (neither those nor white space, vertical tab
/// included), among 64 ASCII bytes: bit i for byte i.
fn classes(block: &[u8; 64]) -> (u64, u64) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2.
        return unsafe { classes_avx2(block) };
    }
    classes_by_words(block)
}

/// [`classes`] eight bytes to a 64-bit word: a byte's high bit says whether it is in a range,
/// then the eight high bits are gathered into a byte by one multiplication.
fn classes_by_words(block: &[u8; 64]) -> (u64, u64) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = ONES * 0x80;
    // For bytes below 0x80 (ASCII): the high bit of each sum says byte >= lo, or byte > hi.
    let in_range = |w: u64, lo: u8, hi: u8| {
        w.wrapping_add(ONES * u64::from(0x80 - lo)) & !w.wrapping_add(ONES * u64::from(0x7f - hi)) & HIGHS
    };
    let gather = |highs: u64| (highs >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56;
    let (mut word, mut mark) = (0u64, 0u64);
    for (i, eight) in block.chunks_exact(8).enumerate() {
        let w = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
        let alnum = in_range(w, b'0', b'9') | in_range(w | (ONES * 0x20), b'a', b'z');
        let space = in_range(w, b' ', b' ') | in_range(w, 0x09, 0x0d);
        word |= gather(alnum) << (8 * i);
        mark |= gather(HIGHS & !alnum & !space) << (8 * i);
    }
    (word, mark)
}

/// [`classes`] 32 bytes at a time in vector registers.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn classes_avx2(block: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{__m256i, _mm256_loadu_si256};
    #[target_feature(enable = "avx2")]
    fn half(v: __m256i) -> (u64, u64) {
        use std::arch::x86_64::*;
        // ASCII bytes are positive as signed bytes, so signed comparisons bound them.
        let in_range = |v: __m256i, lo: u8, hi: u8| {
            _mm256_and_si256(
                _mm256_cmpgt_epi8(v, _mm256_set1_epi8(lo as i8 - 1)),
                _mm256_cmpgt_epi8(_mm256_set1_epi8(hi as i8 + 1), v),
            )
        };
        let alnum =
            _mm256_or_si256(in_range(v, b'0', b'9'), in_range(_mm256_or_si256(v, _mm256_set1_epi8(0x20)), b'a', b'z'));
        let space = _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(b' ' as i8)), in_range(v, 0x09, 0x0d));
        let mark = _mm256_andnot_si256(_mm256_or_si256(alnum, space), _mm256_set1_epi8(-1));
        (u64::from(_mm256_movemask_epi8(alnum) as u32), u64::from(_mm256_movemask_epi8(mark) as u32))
    }
    // SAFETY: each load reads 32 of the block's 64 bytes.
    let (lo, hi) =
        unsafe { (_mm256_loadu_si256(block.as_ptr().cast()), _mm256_loadu_si256(block.as_ptr().add(32).cast())) };
    let ((word_lo, mark_lo), (word_hi, mark_hi)) = (half(lo), half(hi));
    (word_lo | word_hi << 32, mark_lo | mark_hi << 32)
}

fn hash128(bytes: &[u8]) -> u128 {
    twox_hash::XxHash3_128::oneshot(bytes)
}

/// The scripts characters are counted by.
const SCRIPTS: [&str; 13] = [
    "ascii",
    "latin",
    "greek",
    "cyrillic",
    "hebrew",
    "arabic",
    "devanagari",
    "kana",
    "han",
    "hangul",
    "emoji and symbols",
    "replacement character",
    "other",
];

/// The index in [`SCRIPTS`] of the script `c` is written in.
fn script_of(c: char) -> usize {
    match c as u32 {
        0x00..=0x7f => 0,
        0x80..=0x24f | 0x1e00..=0x1eff => 1,
        0x370..=0x3ff => 2,
        0x400..=0x52f => 3,
        0x590..=0x5ff => 4,
        0x600..=0x6ff | 0x750..=0x77f => 5,
        0x900..=0x97f => 6,
        0x3040..=0x30ff => 7,
        0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xf900..=0xfaff => 8,
        0xac00..=0xd7af | 0x1100..=0x11ff => 9,
        0x1f300..=0x1faff | 0x2600..=0x27bf => 10,
        0xfffd => 11,
        _ => 12,
    }
}

fn count_scripts(text: &str, scripts: &mut [u64; SCRIPTS.len()]) {
    // Most text is ASCII: count it without a lookup per character.
    let ascii = text.bytes().filter(u8::is_ascii).count();
    scripts[0] += ascii as u64;
    if ascii != text.len() {
        for c in text.chars().filter(|c| !c.is_ascii()) {
            scripts[script_of(c)] += 1;
        }
    }
}

/// The most common words of a few languages written in Latin script; a text's language shows
/// in which of them it uses. Words shared by two lists count for neither.
const COMMON_WORDS: &[(&str, &[&str])] = &[
    ("en", &["the", "and", "of", "to", "is", "in", "that", "it", "with", "for", "this", "are", "was", "be", "you"]),
    ("fr", &["le", "la", "les", "et", "des", "est", "une", "du", "que", "pour", "dans", "pas", "qui", "sur", "au"]),
    (
        "de",
        &["der", "die", "und", "das", "ist", "nicht", "ein", "zu", "den", "mit", "von", "sich", "auch", "auf", "ich"],
    ),
    ("es", &["el", "los", "las", "y", "del", "es", "por", "una", "con", "para", "como", "pero", "su", "se", "lo"]),
    (
        "it",
        &["il", "di", "che", "è", "non", "per", "gli", "della", "sono", "con", "anche", "nel", "questo", "ma", "si"],
    ),
    ("pt", &["o", "os", "não", "uma", "com", "para", "mais", "como", "dos", "ao", "foi", "ele", "das", "tem", "à"]),
    ("nl", &["het", "een", "van", "en", "niet", "dat", "zijn", "op", "voor", "met", "ook", "maar", "wat", "bij", "er"]),
];

/// Adds to `counts` (by language, in [`COMMON_WORDS`] order) the common words `text` uses.
fn count_language_words(text: &str, counts: &mut [u64; COMMON_WORDS.len()]) {
    thread_local! {
        static WORDS: HashMap<&'static str, usize> = {
            let mut owner: HashMap<&'static str, Option<usize>> = HashMap::new();
            for (lang, (_, words)) in COMMON_WORDS.iter().enumerate() {
                for w in *words {
                    owner.entry(w).and_modify(|o| *o = None).or_insert(Some(lang));
                }
            }
            owner.into_iter().filter_map(|(w, l)| Some((w, l?))).collect()
        };
    }
    WORDS.with(|words| {
        for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty() && w.len() <= 6) {
            let lower = word.to_lowercase();
            if let Some(lang) = words.get(lower.as_str()) {
                counts[*lang] += 1;
            }
        }
    });
}

/// Counts of values, exact below 1024 and in buckets 1% wide above.
#[derive(Debug, Clone, Default)]
struct Histogram {
    /// By bucket (a few thousand at most), grown as larger values come.
    counts: Vec<u64>,
    count: u64,
    min: u64,
    max: u64,
    sum: f64,
}

const EXACT_BELOW: u64 = 1024;

impl Histogram {
    fn bucket(v: u64) -> u32 {
        if v < EXACT_BELOW {
            v as u32
        } else {
            EXACT_BELOW as u32 + ((v as f64 / EXACT_BELOW as f64).ln() / 1.01f64.ln()) as u32
        }
    }

    fn value_of(bucket: u32) -> u64 {
        if u64::from(bucket) < EXACT_BELOW {
            u64::from(bucket)
        } else {
            // The bucket's middle.
            (EXACT_BELOW as f64 * 1.01f64.powf((bucket - EXACT_BELOW as u32) as f64 + 0.5)).round() as u64
        }
    }

    fn add(&mut self, v: u64) {
        let bucket = Self::bucket(v) as usize;
        if bucket >= self.counts.len() {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += 1;
        self.min = if self.count == 0 { v } else { self.min.min(v) };
        self.max = self.max.max(v);
        self.count += 1;
        self.sum += v as f64;
    }

    /// The buckets that hold values, in order, and how many each holds.
    fn occupied(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.counts.iter().enumerate().filter(|(_, n)| **n > 0).map(|(b, n)| (b as u32, *n))
    }

    fn quantile(&self, q: f64) -> u64 {
        let rank = ((q * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, n) in self.occupied() {
            seen += n;
            if seen == self.count {
                return self.max; // the last bucket holds the largest value, known exactly
            }
            if seen >= rank {
                return Self::value_of(bucket).clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// The counts regrouped into about [`BINS`] plot bins.
    fn bins(&self) -> Vec<Bin> {
        let (lo, hi) = (self.min, self.max);
        if hi == lo {
            return vec![Bin { from: lo, to: hi, count: self.count }];
        }
        let ratio = (hi.max(1) as f64) / (lo.max(1) as f64);
        let edges: Vec<u64> = if ratio > 100.0 {
            let (a, b) = ((lo.max(1) as f64).ln(), (hi as f64).ln());
            (0..=BINS).map(|i| (a + (b - a) * i as f64 / BINS as f64).exp().round() as u64).collect()
        } else {
            (0..=BINS).map(|i| lo + ((hi - lo) as f64 * i as f64 / BINS as f64).round() as u64).collect()
        };
        let mut edges = edges;
        edges[0] = lo;
        edges.dedup();
        let mut bins: Vec<Bin> =
            edges.windows(2).map(|w| Bin { from: w[0], to: w[1].saturating_sub(1).max(w[0]), count: 0 }).collect();
        if let Some(last) = bins.last_mut() {
            last.to = hi;
        }
        for (bucket, n) in self.occupied() {
            let v = Self::value_of(bucket).clamp(lo, hi);
            let i = bins.partition_point(|b| b.to < v).min(bins.len() - 1);
            bins[i].count += n;
        }
        bins
    }

    fn finish(self) -> Option<Lengths> {
        (self.count > 0).then(|| Lengths {
            count: self.count,
            min: self.min,
            max: self.max,
            mean: self.sum / self.count as f64,
            p50: self.quantile(0.5),
            p90: self.quantile(0.9),
            p99: self.quantile(0.99),
            histogram: self.bins(),
        })
    }
}

mod seen;
#[cfg(test)]
mod tests;
