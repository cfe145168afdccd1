//! Every phrase the rules look for, found in one pass over the lowercased body.
//!
//! Rules keep their phrase lists next to them and each module registers its lists in `LISTS`.
//! At compile time the distinct phrases become one sorted table, indexed by the byte pairs that
//! start a phrase and filtered by a hashed bitmap of their first three bytes, and `phrases!(LIST)`
//! turns a list into a bit mask; at run time `scan` walks the body once and `Evidence::has` is a
//! bitwise AND. A list that is used but not registered does not compile.

use std::cmp::Ordering;

use super::{families, limits, retry_after, signals};

/// Every phrase list a rule searches the body for, by module.
const LISTS: &[&[&[&str]]] = &[signals::PHRASES, limits::PHRASES, families::PHRASES, retry_after::PHRASES];

const MAX: usize = 256;
const WORDS: usize = MAX / 64;

/// A set of phrases: bit `i` stands for `TABLE.phrases[i]`.
#[derive(Clone, Copy, Default)]
pub struct Mask([u64; WORDS]);

impl Mask {
    pub fn intersects(&self, other: &Mask) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a & b != 0)
    }

    const fn with(mut self, i: usize) -> Mask {
        self.0[i / 64] |= 1 << (i % 64);
        self
    }
}

/// The mask of a registered list; a phrase missing from `LISTS` stops the build.
pub const fn mask(list: &[&str]) -> Mask {
    let mut m = Mask([0; WORDS]);
    let mut i = 0;
    while i < list.len() {
        match TABLE.position(list[i]) {
            Some(p) => m = m.with(p),
            None => panic!("phrase list not registered in classify::phrases::LISTS"),
        }
        i += 1;
    }
    m
}

/// `phrases!(LIST)`: the list's mask, computed at compile time.
macro_rules! phrases {
    ($list:expr) => {
        const { $crate::classify::phrases::mask($list) }
    };
}
pub(crate) use phrases;

/// The phrases that occur in `text`.
pub fn scan(text: &[u8]) -> Mask {
    let mut found = Mask::default();
    let [a, b, ref after @ ..] = *text else { return found };
    // The three bytes starting at `i`, in the low 24 bits.
    let mut triple = u32::from(a) << 8 | u32::from(b);
    for (i, &c) in after.iter().enumerate() {
        triple = (triple << 8 | u32::from(c)) & 0xFF_FFFF;
        // Most positions start no phrase's first three bytes: one hashed bit says so.
        let h = hash3(triple);
        if TABLE.triples[h / 64] >> (h % 64) & 1 == 0 {
            continue;
        }
        let key = (triple >> 8) as usize;
        let word = TABLE.pairs[key / 64];
        let bit = 1u64 << (key % 64);
        if word & bit == 0 {
            continue;
        }
        // The pair's rank among the set bits numbers its run of phrases.
        let run = usize::from(TABLE.rank[key / 64]) + (word & (bit - 1)).count_ones() as usize;
        let rest = &text[i + 2..];
        for k in usize::from(TABLE.runs[run])..usize::from(TABLE.runs[run + 1]) {
            // Within a run the phrases are ordered by their third byte.
            match TABLE.third[k].cmp(&c) {
                Ordering::Less => continue,
                Ordering::Greater => break,
                Ordering::Equal => {}
            }
            let tail = &TABLE.phrases[k].as_bytes()[2..];
            // Inline compare: candidates are short and few, not worth a memcmp call.
            if rest.len() >= tail.len() && rest.iter().zip(tail).all(|(a, b)| a == b) {
                found = found.with(k);
            }
        }
    }
    found
}

struct Table {
    /// The distinct phrases in byte order; `len` of them are used.
    phrases: [&'static str; MAX],
    len: usize,
    /// Bit `a << 8 | b` is set when some phrase starts with the bytes `a b`.
    pairs: [u64; 1024],
    /// The number of bits set in `pairs` before each word.
    rank: [u16; 1024],
    /// `runs[r]..runs[r + 1]`: the phrases starting with the `r`-th pair in byte order.
    runs: [u16; MAX + 1],
    /// Each phrase's third byte, checked before comparing the rest.
    third: [u8; MAX],
    /// Bit `hash3(first three bytes)` is set for every phrase.
    triples: [u64; 64],
}

const TABLE: Table = Table::build();

impl Table {
    const fn build() -> Table {
        let mut t =
            Table { phrases: [""; MAX], len: 0, pairs: [0; 1024], rank: [0; 1024], runs: [0; MAX + 1], third: [0; MAX], triples: [0; 64] };
        let mut m = 0;
        while m < LISTS.len() {
            let mut l = 0;
            while l < LISTS[m].len() {
                let mut p = 0;
                while p < LISTS[m][l].len() {
                    t.insert(LISTS[m][l][p]);
                    p += 1;
                }
                l += 1;
            }
            m += 1;
        }
        // Sorted phrases: equal leading pairs are adjacent, and pairs come in key order.
        let mut runs = 0;
        let mut i = 0;
        while i < t.len {
            let key = pair_key(t.phrases[i]);
            let s = t.phrases[i].as_bytes();
            t.third[i] = s[2];
            let h = hash3((s[0] as u32) << 16 | (s[1] as u32) << 8 | s[2] as u32);
            t.triples[h / 64] |= 1 << (h % 64);
            if i == 0 || key != pair_key(t.phrases[i - 1]) {
                t.pairs[key / 64] |= 1 << (key % 64);
                t.runs[runs] = i as u16;
                runs += 1;
            }
            i += 1;
        }
        t.runs[runs] = t.len as u16;
        let mut w = 1;
        while w < 1024 {
            t.rank[w] = t.rank[w - 1] + t.pairs[w - 1].count_ones() as u16;
            w += 1;
        }
        t
    }

    /// Insertion into the sorted, distinct phrases.
    const fn insert(&mut self, phrase: &'static str) {
        assert!(phrase.len() >= 3, "a phrase is at least three bytes");
        let mut at = 0;
        while at < self.len && cmp(self.phrases[at].as_bytes(), phrase.as_bytes()) < 0 {
            at += 1;
        }
        if at < self.len && cmp(self.phrases[at].as_bytes(), phrase.as_bytes()) == 0 {
            return;
        }
        assert!(self.len < MAX, "more than MAX distinct phrases");
        let mut j = self.len;
        while j > at {
            self.phrases[j] = self.phrases[j - 1];
            j -= 1;
        }
        self.phrases[at] = phrase;
        self.len += 1;
    }

    const fn position(&self, phrase: &str) -> Option<usize> {
        let mut i = 0;
        while i < self.len {
            if cmp(self.phrases[i].as_bytes(), phrase.as_bytes()) == 0 {
                return Some(i);
            }
            i += 1;
        }
        None
    }
}

/// Three bytes hashed to 12 bits (Fibonacci hashing: the multiply mixes them into the top bits).
const fn hash3(triple: u32) -> usize {
    (triple.wrapping_mul(0x9E37_79B1) >> 20) as usize
}

const fn pair_key(phrase: &str) -> usize {
    let s = phrase.as_bytes();
    (s[0] as usize) << 8 | s[1] as usize
}

/// Byte order, as a const fn.
const fn cmp(a: &[u8], b: &[u8]) -> i32 {
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] as i32 - b[i] as i32;
        }
        i += 1;
    }
    a.len() as i32 - b.len() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_what_contains_finds() {
        let texts = ["", "x", "rate limit per day", "per dayper minper min", "(tpd) daily", "quota", "modelmodel '"];
        for text in texts {
            let found = scan(text.as_bytes());
            for (i, p) in TABLE.phrases[..TABLE.len].iter().enumerate() {
                let bit = found.intersects(&Mask::default().with(i));
                assert_eq!(bit, text.contains(p), "{p:?} in {text:?}");
            }
        }
    }
}
