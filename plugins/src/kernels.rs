//! The pure logic of the example plugins, compiled natively from the same
//! source files the plugins use. The benchmark compares these native runs
//! with the WASM runs, and tests check both give the same bytes.

#[path = "../examples/wordcount/src/wordcount.rs"]
pub mod wordcount;

#[path = "../examples/mlp/src/model.rs"]
pub mod mlp;

#[path = "../examples/mlp/src/glyphs.rs"]
pub mod glyphs;

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{glyphs::Rng, wordcount};

    /// Byte-at-a-time reference of `wordcount::count`.
    fn reference(text: &[u8], top_n: usize) -> wordcount::Counts {
        let lines = text.iter().filter(|b| **b == b'\n').count() as u64;
        let chars = text.iter().filter(|b| (**b & 0xC0) != 0x80).count() as u64;
        let words = text
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .count() as u64;
        let mut freq: HashMap<Vec<u8>, u64> = HashMap::new();
        for tok in text
            .split(|b| !(b.is_ascii_alphanumeric() || *b >= 0x80))
            .filter(|t| !t.is_empty())
        {
            *freq.entry(tok.to_ascii_lowercase()).or_default() += 1;
        }
        let mut all: Vec<(Vec<u8>, u64)> = freq.into_iter().collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        wordcount::Counts {
            lines,
            words,
            chars,
            bytes: text.len() as u64,
            top: all
                .into_iter()
                .take(top_n)
                .map(|(w, n)| (String::from_utf8_lossy(&w).into_owned(), n))
                .collect(),
        }
    }

    #[test]
    fn wordcount_matches_a_byte_at_a_time_reference() {
        const ALPHABET: &[u8] = b"aAbBzZ09 \t\n\r\x0c\x0b.,-!\x00\x7f\xc3\xa9\xe2\x82\xac@[`{";
        let mut rng = Rng(3);
        for len in (0..40).chain([63, 64, 65, 1000, 4097]) {
            for _ in 0..20 {
                let text: Vec<u8> = (0..len)
                    .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize])
                    .collect();
                assert_eq!(
                    wordcount::count(&text, 5),
                    reference(&text, 5),
                    "text {text:?}"
                );
            }
        }
        let prose = b"The quick brown fox. THE LAZY dog; the end\n\xc3\x9cber alles\n";
        assert_eq!(wordcount::count(prose, 3), reference(prose, 3));
    }
}
