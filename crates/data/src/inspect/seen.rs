//! The rows seen so far, by the 128-bit hash of their content, each with the line it was first
//! seen on. A table of a million rows is far larger than the cache and the hashes are random,
//! so every lookup is a trip to memory; this table lets the caller ask for the slots of the
//! rows coming next ([`Seen::prefetch`]) while it handles this one, which overlaps those trips.
//! Open addressing with linear probing, at most half full.

pub(super) struct Seen {
    /// A power of two of them.
    slots: Vec<Slot>,
    len: usize,
}

/// A row's hash in two halves and its line plus one (0: an empty slot), so that zeroed memory
/// is an empty table.
#[derive(Clone, Copy, Default)]
struct Slot {
    hi: u64,
    lo: u64,
    line: u64,
}

const FIRST_SLOTS: usize = 1024;

impl Default for Seen {
    fn default() -> Seen {
        Seen { slots: vec![Slot::default(); FIRST_SLOTS], len: 0 }
    }
}

impl Seen {
    /// Makes room for `rows` rows in all, at once rather than by doubling.
    pub(super) fn reserve(&mut self, rows: usize) {
        let wanted = (rows.saturating_mul(2)).next_power_of_two();
        if wanted > self.slots.len() {
            self.resize(wanted);
        }
    }

    /// Asks for the slot where `key` would be to be brought into the cache.
    #[inline]
    pub(super) fn prefetch(&self, key: u128) {
        let slot: *const Slot = &self.slots[self.home(key as u64)];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: prefetching only hints the cache; the pointer is to a live slot.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(slot.cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    /// The line `key` was first seen on; `None` when it is new, and then it is recorded as
    /// seen on `line`.
    pub(super) fn first_or_insert(&mut self, key: u128, line: u64) -> Option<u64> {
        if (self.len + 1) * 2 > self.slots.len() {
            self.resize(self.slots.len() * 2);
        }
        let (hi, lo) = ((key >> 64) as u64, key as u64);
        let mask = self.slots.len() - 1;
        let mut i = self.home(lo);
        loop {
            let slot = &mut self.slots[i];
            if slot.line == 0 {
                *slot = Slot { hi, lo, line: line.wrapping_add(1) };
                self.len += 1;
                return None;
            }
            if slot.hi == hi && slot.lo == lo {
                return Some(slot.line.wrapping_sub(1));
            }
            i = (i + 1) & mask;
        }
    }

    /// The first slot a key with the low half `lo` may be in.
    fn home(&self, lo: u64) -> usize {
        lo as usize & (self.slots.len() - 1)
    }

    fn resize(&mut self, slots: usize) {
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); slots]);
        let mask = slots - 1;
        for slot in old.into_iter().filter(|s| s.line != 0) {
            let mut i = self.home(slot.lo);
            while self.slots[i].line != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Seen;
    use std::collections::HashMap;

    #[test]
    fn it_answers_as_a_map_of_first_lines_through_growth() {
        let mut seen = Seen::default();
        let mut expected: HashMap<u128, u64> = HashMap::new();
        // Keys that share their low bits collide in the table: probing must tell them apart.
        let key = |i: u64| ((i % 3000) as u128) << 64 | ((i % 3000) * 4096) as u128;
        for line in 0..10_000u64 {
            if line == 5000 {
                seen.reserve(20_000);
            }
            let k = key(line);
            let want = expected.get(&k).copied();
            expected.entry(k).or_insert(line);
            seen.prefetch(k);
            assert_eq!(seen.first_or_insert(k, line), want, "line {line}");
        }
        assert_eq!(seen.len, 3000);
        assert!(seen.slots.len() >= 40_000, "reserved for 20 000 rows: {}", seen.slots.len());
    }
}
