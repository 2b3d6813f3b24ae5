//! Near duplicates: MinHash signatures of each text's word shingles, banded for locality-
//! sensitive hashing, as datasketch's `MinHashLSH` does. Two texts land in the same bucket of
//! some band with a probability that rises steeply around the Jaccard threshold; the band and
//! row counts are chosen for the threshold by minimising the false-positive and false-negative
//! areas, the standard way. Only one 64-bit key per band is kept per text, so memory grows by a
//! few dozen bytes a row whatever the texts' length.

use std::collections::HashMap;

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
    settings: NearSettings,
    bands: usize,
    rows: usize,
    /// Seeds of the permutations: `(a * x + b) >> 32` over 64-bit shingle hashes.
    a: [u64; PERMUTATIONS],
    b: [u64; PERMUTATIONS],
    /// Band key to the first text seen with it.
    buckets: HashMap<u64, u64, Keyed>,
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
        NearDuplicates { settings, bands, rows, a, b, buckets: HashMap::default() }
    }

    /// Bands and rows per band the threshold chose.
    pub fn shape(&self) -> (usize, usize) {
        (self.bands, self.rows)
    }

    /// Records text `id` and returns the id of an earlier text it nearly duplicates, if any.
    /// A text with no shingle (no words) is never a near duplicate.
    pub fn add(&mut self, id: u64, text: &str) -> Option<u64> {
        let signature = self.signature(text)?;
        let mut found = None;
        for band in 0..self.bands {
            let mut key = 0xcbf2_9ce4_8422_2325u64 ^ band as u64;
            for v in &signature[band * self.rows..(band + 1) * self.rows] {
                key = (key ^ u64::from(*v)).wrapping_mul(0x0100_0000_01b3);
            }
            match self.buckets.get(&key) {
                Some(first) => {
                    found = found.or(Some(*first));
                }
                None => {
                    self.buckets.insert(key, id);
                }
            }
        }
        found
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

/// Hashes of the text's words: runs of letters and digits, lower-cased.
pub(crate) fn word_hashes(text: &str) -> Vec<u64> {
    const START: u64 = 0xcbf2_9ce4_8422_2325;
    let mix = |h: u64, c: u32| (h ^ u64::from(c)).wrapping_mul(0x0100_0000_01b3);
    let mut out = Vec::with_capacity(text.len() / 5);
    let mut h = START;
    let mut in_word = false;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        // ASCII, most text, without decoding characters or Unicode case tables; the same hashes
        // as the general path below gives.
        let (letter, step) = if b.is_ascii() {
            if b.is_ascii_alphanumeric() {
                h = mix(h, u32::from(b.to_ascii_lowercase()));
            }
            (b.is_ascii_alphanumeric(), 1)
        } else {
            let c = text[i..].chars().next().unwrap_or(' ');
            if c.is_alphanumeric() {
                for l in c.to_lowercase() {
                    h = mix(h, u32::from(l));
                }
            }
            (c.is_alphanumeric(), c.len_utf8())
        };
        if letter {
            in_word = true;
        } else if in_word {
            out.push(h);
            h = START;
            in_word = false;
        }
        i += step;
    }
    if in_word {
        out.push(h);
    }
    out
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
    fn word_hashes_read_ascii_and_other_scripts_alike() {
        // The plain definition, character by character.
        let reference = |text: &str| -> Vec<u64> {
            text.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| {
                    w.chars().flat_map(char::to_lowercase).fold(0xcbf2_9ce4_8422_2325u64, |h, l| {
                        (h ^ u64::from(u32::from(l))).wrapping_mul(0x0100_0000_01b3)
                    })
                })
                .collect()
        };
        for text in ["Hello, World 42!", "  Straße ÜBER naïve—ΣΊΣΥΦΟΣ İstanbul 東京 ok", "", "a", "\u{0}x\u{7f}y"]
        {
            assert_eq!(word_hashes(text), reference(text), "{text:?}");
        }
        assert_eq!(word_hashes("MiXeD case"), word_hashes("mixed CASE"));
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
