//! Word count over UTF-8 text: lines, words, characters, bytes and the most
//! frequent words. Pure code shared by the plugin and the host benchmark.
//!
//! * lines: number of `\n` bytes;
//! * words: maximal runs of non-whitespace (ASCII whitespace), as `wc -w`;
//! * chars: UTF-8 scalar values (bytes that are not continuation bytes);
//! * top: most frequent tokens, where a token is a maximal run of ASCII
//!   letters, digits or non-ASCII bytes, compared case-insensitively (ASCII);
//!   ordered by count (descending), then by token.

/// Counts over one text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    /// `\n` count.
    pub lines: u64,
    /// Whitespace-separated words.
    pub words: u64,
    /// UTF-8 characters.
    pub chars: u64,
    /// Bytes.
    pub bytes: u64,
    /// Most frequent tokens (lower-cased) and their counts.
    pub top: Vec<(String, u64)>,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    hash: u64,
    start: u32,
    len: u32,
    count: u64,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Eight bytes from `i` (little endian), zero-padded past the end. A zero
/// byte is never part of a token.
fn load(t: &[u8], i: usize) -> u64 {
    if let Some(Ok(b)) = t.get(i..i + 8).map(<[u8; 8]>::try_from) {
        return u64::from_le_bytes(b);
    }
    let mut v = 0u64;
    for (k, b) in t.iter().skip(i).take(8).enumerate() {
        v |= u64::from(*b) << (8 * k);
    }
    v
}

/// Lower-cases the ASCII letters among eight packed bytes (SWAR; no carry
/// crosses a byte because every 7-bit value plus the constant stays < 256).
fn lower8(x: u64) -> u64 {
    let h = x & !HIGHS;
    let ge_a = h + ONES * (0x80 - b'A' as u64);
    let gt_z = h + ONES * (0x7f - b'Z' as u64);
    let upper = ge_a & !gt_z & !x & HIGHS;
    x | (upper >> 2)
}

/// High bit of each byte set where the (lower-cased) byte belongs to a
/// token: an ASCII digit or letter, or any non-ASCII byte.
fn token_mask(l: u64) -> u64 {
    let h = l & !HIGHS;
    let ge_0 = h + ONES * (0x80 - b'0' as u64);
    let gt_9 = h + ONES * (0x7f - b'9' as u64);
    let ge_a = h + ONES * (0x80 - b'a' as u64);
    let gt_z = h + ONES * (0x7f - b'z' as u64);
    (l | (ge_0 & !gt_9) | (ge_a & !gt_z)) & HIGHS
}

/// High bit of each byte set where the byte equals `b` (exact: no carry
/// crosses a byte).
fn eq(x: u64, b: u8) -> u64 {
    let v = x ^ (ONES * u64::from(b));
    !(((v & !HIGHS) + !HIGHS) | v) & HIGHS
}

fn mix(h: u64, v: u64) -> u64 {
    (h.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95)
}

fn finish(h: u64) -> u64 {
    h ^ (h >> 29)
}

/// Mask of the low `k` bytes (k < 8).
fn low_bytes(k: usize) -> u64 {
    (1u64 << (8 * k)) - 1
}

fn same_token(text: &[u8], a: usize, b: usize, len: usize) -> bool {
    let mut k = 0;
    while k < len {
        let rest = len - k;
        let m = if rest >= 8 { u64::MAX } else { low_bytes(rest) };
        if (lower8(load(text, a + k)) ^ lower8(load(text, b + k))) & m != 0 {
            return false;
        }
        k += 8;
    }
    true
}

/// Open-addressing table of tokens that borrow the input (no allocation
/// per token).
struct Table {
    slots: Vec<Slot>,
    used: usize,
}

impl Table {
    fn new() -> Self {
        Self {
            slots: vec![Slot::default(); 1024],
            used: 0,
        }
    }

    fn add(&mut self, text: &[u8], start: usize, len: usize, h: u64) {
        if (self.used + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = (h as usize) & mask;
        loop {
            let s = &mut self.slots[i];
            if s.count == 0 {
                *s = Slot {
                    hash: h,
                    start: start as u32,
                    len: len as u32,
                    count: 1,
                };
                self.used += 1;
                return;
            }
            if s.hash == h
                && s.len as usize == len
                && same_token(text, s.start as usize, start, len)
            {
                s.count += 1;
                return;
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self) {
        let bigger = vec![Slot::default(); self.slots.len() * 2];
        let old = core::mem::replace(&mut self.slots, bigger);
        let mask = self.slots.len() - 1;
        for s in old.into_iter().filter(|s| s.count > 0) {
            let mut i = (s.hash as usize) & mask;
            while self.slots[i].count != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }
}

/// Counts `text`, keeping the `top_n` most frequent tokens.
pub fn count(text: &[u8], top_n: usize) -> Counts {
    // Lines, characters and word starts, eight bytes at a time.
    let n = text.len();
    let (mut lines, mut chars, mut words) = (0u64, 0u64, 0u64);
    let mut prev_ws = HIGHS; // "before the text" counts as whitespace
    let mut i = 0;
    while i < n {
        let x = load(text, i);
        let valid = if n - i >= 8 {
            HIGHS
        } else {
            low_bytes(n - i) & HIGHS
        };
        let ws = (eq(x, b' ') | eq(x, b'\t') | eq(x, b'\n') | eq(x, 0x0c) | eq(x, b'\r')) & valid;
        let cont = x & !(x << 1) & HIGHS;
        let before = (ws << 8) | (prev_ws >> 56);
        lines += u64::from(eq(x, b'\n').count_ones());
        chars += u64::from((valid & !cont).count_ones());
        words += u64::from((!ws & valid & before).count_ones());
        prev_ws = ws;
        i += 8;
    }

    // Tokens, eight bytes at a time: find the start, hash the lower-cased
    // bytes while looking for the end.
    let mut table = Table::new();
    let mut i = 0;
    while i < n {
        let m = token_mask(lower8(load(text, i)));
        if m == 0 {
            i += 8;
            continue;
        }
        i += (m.trailing_zeros() / 8) as usize;
        let start = i;
        let mut h = 0u64;
        loop {
            let l = lower8(load(text, i));
            let stop = !token_mask(l) & HIGHS;
            if stop == 0 {
                h = mix(h, l);
                i += 8;
                continue;
            }
            let k = (stop.trailing_zeros() / 8) as usize;
            if k > 0 {
                h = mix(h, l & low_bytes(k));
            }
            i += k;
            break;
        }
        table.add(text, start, i - start, finish(h));
    }

    let mut all: Vec<Slot> = table.slots.into_iter().filter(|s| s.count > 0).collect();
    let tok = |s: &Slot| &text[s.start as usize..(s.start + s.len) as usize];
    let lower = |c: &u8| c.to_ascii_lowercase();
    all.sort_unstable_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| tok(a).iter().map(lower).cmp(tok(b).iter().map(lower)))
    });
    let top = all
        .iter()
        .take(top_n)
        .map(|s| {
            let lowered: Vec<u8> = tok(s).iter().map(lower).collect();
            (String::from_utf8_lossy(&lowered).into_owned(), s.count)
        })
        .collect();
    Counts {
        lines,
        words,
        chars,
        bytes: text.len() as u64,
        top,
    }
}

fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = core::fmt::Write::write_fmt(out, format_args!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Counts {
    /// Canonical JSON (fixed key order, no spaces).
    pub fn to_json(&self) -> String {
        let mut out = format!(
            "{{\"bytes\":{},\"chars\":{},\"lines\":{},\"top\":[",
            self.bytes, self.chars, self.lines
        );
        for (i, (w, n)) in self.top.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push('[');
            push_json_str(&mut out, w);
            out.push_str(&format!(",{n}]"));
        }
        out.push_str(&format!("],\"words\":{}}}", self.words));
        out
    }
}
