//! Near duplicates: MinHash signatures of each text's word shingles, banded for locality-
//! sensitive hashing, as datasketch's `MinHashLSH` does. Two texts land in the same bucket of
//! some band with a probability that rises steeply around the Jaccard threshold; the band and
//! row counts are chosen for the threshold by minimising the false-positive and false-negative
//! areas, the standard way. Only one 64-bit key per band is kept per text, so memory grows by a
//! few dozen bytes a row whatever the texts' length.

use std::collections::HashMap;
use std::sync::Arc;

/// Permutations in a signature.
pub const PERMUTATIONS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NearSettings {
    /// Jaccard similarity of word shingles above which two texts are near duplicates.
    pub threshold: f64,
    /// Words per shingle.
    pub shingle: usize,
}

impl Default for NearSettings {
    fn default() -> NearSettings {
        NearSettings { threshold: 0.8, shingle: 5 }
    }
}

/// Finds, for each text added, an earlier text it nearly duplicates.
pub struct NearDuplicates {
    /// Shared with the threads that sign texts.
    signer: Arc<Signer>,
    /// Band key to the first text seen with it.
    buckets: HashMap<u64, u64, Keyed>,
}

/// Turns a text into its band keys: the part of the work that needs no memory of other texts,
/// so it can run on any thread.
pub struct Signer {
    settings: NearSettings,
    bands: usize,
    rows: usize,
    /// Seeds of the permutations: `(a * x + b) >> 32` over 64-bit shingle hashes.
    a: [u64; PERMUTATIONS],
    b: [u64; PERMUTATIONS],
}

impl NearDuplicates {
    pub fn new(settings: NearSettings) -> NearDuplicates {
        let (bands, rows) = bands_for(settings.threshold, PERMUTATIONS);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            // splitmix64: fixed seeds, so a dataset's duplicates are the same on every run.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut a = [0u64; PERMUTATIONS];
        let mut b = [0u64; PERMUTATIONS];
        for i in 0..PERMUTATIONS {
            a[i] = next() | 1;
            b[i] = next();
        }
        NearDuplicates { signer: Arc::new(Signer { settings, bands, rows, a, b }), buckets: HashMap::default() }
    }

    /// Bands and rows per band the threshold chose.
    pub fn shape(&self) -> (usize, usize) {
        (self.signer.bands, self.signer.rows)
    }

    pub fn signer(&self) -> &Arc<Signer> {
        &self.signer
    }

    /// Records text `id` and returns the id of an earlier text it nearly duplicates, if any.
    /// A text with no shingle (no words) is never a near duplicate.
    pub fn add(&mut self, id: u64, text: &str) -> Option<u64> {
        let keys = self.signer.band_keys(text)?;
        self.insert(id, &keys)
    }

    /// [`NearDuplicates::add`] for a text whose band keys `signer` gave.
    pub fn insert(&mut self, id: u64, band_keys: &[u64]) -> Option<u64> {
        let mut found = None;
        for key in band_keys {
            match self.buckets.get(key) {
                Some(first) => {
                    found = found.or(Some(*first));
                }
                None => {
                    self.buckets.insert(*key, id);
                }
            }
        }
        found
    }
}

impl Signer {
    /// One key per band of the text's signature; `None` for a text with no words.
    pub fn band_keys(&self, text: &str) -> Option<Vec<u64>> {
        let signature = self.signature(text)?;
        Some(
            (0..self.bands)
                .map(|band| {
                    let mut key = 0xcbf2_9ce4_8422_2325u64 ^ band as u64;
                    for v in &signature[band * self.rows..(band + 1) * self.rows] {
                        key = (key ^ u64::from(*v)).wrapping_mul(0x0100_0000_01b3);
                    }
                    key
                })
                .collect(),
        )
    }

    fn signature(&self, text: &str) -> Option<[u32; PERMUTATIONS]> {
        let words = word_hashes(text);
        if words.is_empty() {
            return None;
        }
        let k = self.settings.shingle.max(1).min(words.len());
        let mut mins = [u32::MAX; PERMUTATIONS];
        for window in words.windows(k) {
            let mut x = 0x8422_2325_cbf2_9ce4u64;
            for w in window {
                x = (x ^ w).wrapping_mul(0x0100_0000_01b3).rotate_left(29);
            }
            for ((m, a), b) in mins.iter_mut().zip(&self.a).zip(&self.b) {
                let v = (a.wrapping_mul(x).wrapping_add(*b) >> 32) as u32;
                *m = (*m).min(v);
            }
        }
        Some(mins)
    }
}

/// Hashes of the text's words: runs of letters and digits, lower-cased. A word's hash is
/// [`hash_word`] of its lower-case UTF-8.
pub(crate) fn word_hashes(text: &str) -> Vec<u64> {
    let mut out = Vec::with_capacity(text.len() / 5);
    word_hashes_into(text, &mut out);
    out
}

/// [`word_hashes`], appended to `out`.
pub(crate) fn word_hashes_into(text: &str, out: &mut Vec<u64>) {
    let bytes = text.as_bytes();
    let mut lower = Vec::new();
    // A letter or digit at `i`, and its length in bytes.
    let letter_at = |i: usize| -> (bool, usize) {
        let b = bytes[i];
        if b.is_ascii() {
            (b.is_ascii_alphanumeric(), 1)
        } else {
            let c = text[i..].chars().next().unwrap_or(' ');
            (c.is_alphanumeric(), c.len_utf8())
        }
    };
    let mut i = 0;
    while i < bytes.len() {
        let (letter, step) = letter_at(i);
        if !letter {
            i += step;
            continue;
        }
        let start = i;
        let mut ascii = true;
        while i < bytes.len() {
            // ASCII, most text, eight bytes at a time without decoding characters.
            if let Some(eight) = bytes.get(i..i + 8) {
                let others = !ascii_alphanumerics(u64::from_le_bytes(eight.try_into().expect("eight bytes"))) & HIGHS;
                if others == 0 {
                    i += 8;
                    continue;
                }
                i += others.trailing_zeros() as usize / 8;
            }
            let b = bytes[i];
            if b.is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
            let (letter, step) = letter_at(i);
            if !letter {
                break;
            }
            ascii = false;
            i += step;
        }
        if ascii {
            // Lower case for an ASCII letter or digit is setting bit 0x20 (digits have it).
            out.push(hash_word(&bytes[start..i], 0x20));
        } else {
            lower.clear();
            for c in text[start..i].chars().flat_map(char::to_lowercase) {
                lower.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            }
            out.push(hash_word(&lower, 0));
        }
    }
}

const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `w` (eight bytes) that is an ASCII letter or digit. Each test
/// works within its byte: with the high bit clear, `(x | 0x80) - lo` keeps it set exactly when
/// `x >= lo`, and `(hi | 0x80) - x` exactly when `x <= hi`.
fn ascii_alphanumerics(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let low = w & !HIGHS;
    let at_least = |x: u64, lo: u8| (x | HIGHS).wrapping_sub(ONES * u64::from(lo)) & HIGHS;
    let at_most = |x: u64, hi: u8| ((ONES * u64::from(hi)) | HIGHS).wrapping_sub(x) & HIGHS;
    let digits = at_least(low, b'0') & at_most(low, b'9');
    let folded = low | (ONES * 0x20);
    let letters = at_least(folded, b'a') & at_most(folded, b'z');
    (digits | letters) & !w
}

/// A 64-bit hash of a word's bytes, each OR-ed with `or` first; eight bytes at a time.
fn hash_word(word: &[u8], or: u8) -> u64 {
    let or = u64::from_le_bytes([or; 8]);
    let mut h = (word.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut chunks = word.chunks_exact(8);
    for chunk in chunks.by_ref() {
        let v = u64::from_le_bytes(chunk.try_into().expect("eight bytes")) | or;
        h = (h ^ v).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(31);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // Byte by byte: a copy of a few bytes into a buffer would call memcpy.
        let last = rest.iter().rev().fold(0u64, |v, b| (v << 8) | u64::from(*b));
        let v = last | (or >> (8 * (8 - rest.len())));
        h = (h ^ v).wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(31);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Hashes keys that are already hashes: a final mix (MurmurHash3's) spreads them over the
/// table, far cheaper than the SipHash a `HashMap` uses by default.
#[derive(Default, Clone, Copy)]
pub(crate) struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        z = (z ^ (z >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        z ^ (z >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
    fn write_u128(&mut self, v: u128) {
        self.0 ^= (v as u64) ^ ((v >> 64) as u64);
    }
}

pub(crate) type Keyed = std::hash::BuildHasherDefault<KeyHasher>;

/// The bands and rows (bands x rows <= permutations) whose S-curve best separates pairs above
/// `threshold` from pairs below it: the smallest sum of the false-positive area below the
/// threshold and the false-negative area above it.
fn bands_for(threshold: f64, permutations: usize) -> (usize, usize) {
    let integrate = |f: &dyn Fn(f64) -> f64, lo: f64, hi: f64| {
        let steps = 200;
        let dx = (hi - lo) / steps as f64;
        (0..steps).map(|i| f(lo + (i as f64 + 0.5) * dx) * dx).sum::<f64>()
    };
    let mut best = (1, permutations, f64::INFINITY);
    for bands in 1..=permutations {
        for rows in 1..=permutations / bands {
            let p = |s: f64| 1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32);
            let fp = integrate(&p, 0.0, threshold);
            let fnr = integrate(&|s| 1.0 - p(s), threshold, 1.0);
            if fp + fnr < best.2 {
                best = (bands, rows, fp + fnr);
            }
        }
    }
    (best.0, best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bands_follow_the_threshold() {
        let chance = |(bands, rows): (usize, usize), s: f64| 1.0 - (1.0 - s.powi(rows as i32)).powi(bands as i32);
        let shape = bands_for(0.8, PERMUTATIONS);
        assert!(shape.0 * shape.1 <= PERMUTATIONS);
        assert!(chance(shape, 0.95) > 0.99, "{shape:?}: pairs well above the threshold are found");
        assert!(chance(shape, 0.5) < 0.02, "{shape:?}: pairs well below it are not");
        let low = bands_for(0.5, PERMUTATIONS);
        assert!(chance(low, 0.7) > 0.95 && chance(shape, 0.7) < 0.5, "{low:?} vs {shape:?}");
    }

    #[test]
    fn eight_bytes_at_once_tell_letters_and_digits_as_one_at_a_time() {
        for start in (0..=255u16).step_by(3) {
            let bytes: [u8; 8] = std::array::from_fn(|k| ((start + k as u16 * 37) % 256) as u8);
            let mask = ascii_alphanumerics(u64::from_le_bytes(bytes));
            for (k, b) in bytes.iter().enumerate() {
                assert_eq!(mask >> (8 * k + 7) & 1 == 1, b.is_ascii_alphanumeric(), "byte {b:#x} of {bytes:?}");
            }
        }
    }

    #[test]
    fn word_hashes_read_ascii_and_other_scripts_alike() {
        // The plain definition: each word lower-cased, its UTF-8 hashed.
        let reference = |text: &str| -> Vec<u64> {
            text.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| hash_word(w.chars().flat_map(char::to_lowercase).collect::<String>().as_bytes(), 0))
                .collect()
        };
        proptest::proptest!(|(text in "([a-zA-Z0-9 .,-]|\\PC){0,80}")| {
            proptest::prop_assert_eq!(word_hashes(&text), reference(&text));
        });
        for text in ["Hello, World 42!", "  Straße ÜBER naïve—ΣΊΣΥΦΟΣ İstanbul 東京 ok", "", "a", "\u{0}x\u{7f}y"]
        {
            assert_eq!(word_hashes(text), reference(text), "{text:?}");
        }
        assert_eq!(word_hashes("MiXeD case"), word_hashes("mixed CASE"));
        assert_eq!(word_hashes("a-very-long-word-indeed ok"), word_hashes("A VERY LONG WORD INDEED Ok"));
        assert_ne!(word_hashes("abcdefgh1"), word_hashes("abcdefgh2"), "bytes past the first eight count");
    }

    /// `n` words, all different.
    fn text(n: usize, seed: usize) -> Vec<String> {
        (0..n).map(|i| format!("word{}", i * 7919 + seed)).collect()
    }

    #[test]
    fn finds_near_copies_and_leaves_different_texts_alone() {
        // 200 words with one changed: 5 of 196 shingles differ, a Jaccard similarity of 0.95.
        let base = text(200, 0);
        let mut near = base.clone();
        near[100] = "changed".into();
        let mut nd = NearDuplicates::new(NearSettings::default());
        assert_eq!(nd.add(1, &base.join(" ")), None);
        assert_eq!(nd.add(2, &text(200, 1).join(" ")), None);
        assert_eq!(nd.add(3, &near.join(" ")), Some(1));
        assert_eq!(nd.add(4, &base.join(" ").to_uppercase()), Some(1), "case does not matter");
        // Half the words changed: a similarity far below the threshold.
        let mut far = base.clone();
        for w in far.iter_mut().step_by(2) {
            *w = "other".into();
        }
        assert_eq!(nd.add(5, &far.join(" ")), None);
        assert_eq!(nd.add(6, ""), None);
        assert_eq!(nd.add(7, "  ...  "), None, "no words, no shingles");
    }

    #[test]
    fn recall_and_precision_on_planted_pairs() {
        // Texts of 150 random words; near copies change one of them (a Jaccard similarity of
        // 5-word shingles of 0.93, where the bands catch 99% of pairs; at 0.87 they catch about
        // 80%, as the S-curve of any LSH tuned to 0.8 does); unrelated texts share words but
        // hardly a shingle.
        let vocab: Vec<String> = (0..5000).map(|i| format!("w{i}")).collect();
        let mut state = 7u64;
        let mut rnd = move |n: usize| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as usize) % n
        };
        let mut nd = NearDuplicates::new(NearSettings::default());
        let (mut found, mut false_hits) = (0, 0);
        for i in 0..300u64 {
            let words: Vec<&str> = (0..150).map(|_| vocab[rnd(vocab.len())].as_str()).collect();
            if nd.add(2 * i, &words.join(" ")).is_some() {
                false_hits += 1;
            }
            let mut copy = words.clone();
            copy[rnd(150)] = "changed";
            if nd.add(2 * i + 1, &copy.join(" ")) == Some(2 * i) {
                found += 1;
            }
        }
        assert!(found >= 290, "recall {found} of 300");
        assert_eq!(false_hits, 0);
    }
}
