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

fn lower(b: u8) -> u8 {
    b.to_ascii_lowercase()
}

fn hash_token(t: &[u8]) -> u64 {
    // FNV-1a over the lower-cased bytes.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in t {
        h ^= u64::from(lower(b));
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn same_token(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| lower(*x) == lower(*y))
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

    fn add(&mut self, text: &[u8], start: usize, len: usize) {
        if (self.used + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let tok = &text[start..start + len];
        let h = hash_token(tok);
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
            if s.hash == h && same_token(&text[s.start as usize..(s.start + s.len) as usize], tok) {
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

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// Counts `text`, keeping the `top_n` most frequent tokens.
pub fn count(text: &[u8], top_n: usize) -> Counts {
    let mut lines = 0u64;
    let mut words = 0u64;
    let mut chars = 0u64;
    let mut in_word = false;
    let mut tok_start: Option<usize> = None;
    let mut table = Table::new();
    for (i, &b) in text.iter().enumerate() {
        lines += u64::from(b == b'\n');
        chars += u64::from((b & 0xC0) != 0x80);
        let ws = b.is_ascii_whitespace();
        words += u64::from(!ws && !in_word);
        in_word = !ws;
        if is_token_byte(b) {
            if tok_start.is_none() {
                tok_start = Some(i);
            }
        } else if let Some(s) = tok_start.take() {
            table.add(text, s, i - s);
        }
    }
    if let Some(s) = tok_start {
        table.add(text, s, text.len() - s);
    }
    let mut all: Vec<Slot> = table.slots.into_iter().filter(|s| s.count > 0).collect();
    let tok = |s: &Slot| &text[s.start as usize..(s.start + s.len) as usize];
    all.sort_unstable_by(|a, b| {
        b.count.cmp(&a.count).then_with(|| {
            let (x, y) = (
                tok(a).iter().map(|c| lower(*c)),
                tok(b).iter().map(|c| lower(*c)),
            );
            x.cmp(y)
        })
    });
    let top = all
        .iter()
        .take(top_n)
        .map(|s| {
            let lowered: Vec<u8> = tok(s).iter().map(|c| lower(*c)).collect();
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
