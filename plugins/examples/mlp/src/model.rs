//! A two-layer perceptron that classifies 16x16 grayscale digits.
//!
//! The first layer (256 x 64, 97% of the work) uses int8 weights with one
//! f32 scale per hidden unit, applied to the u8 pixels with exact i32
//! accumulation; the rest is f32. Every f32 operation happens in a fixed
//! order (no fused multiply-add, no reassociation), so the logits are
//! bit-identical wherever the same code runs: natively, or as WASM on any
//! hal9 node. The inner loops run over output units
//! (`acc[j] += x * w[i][j]`), which vectorises without changing the order of
//! the additions of any single output.

/// Input features (16x16 pixels).
pub const INPUTS: usize = 256;
/// Hidden units.
pub const HIDDEN: usize = 64;
/// Classes.
pub const CLASSES: usize = 10;
/// Magic bytes at the start of a weights file (format 2: int8 first layer).
pub const MAGIC: &[u8; 8] = b"H9MLP\x02\x00\x00";
/// Size of a weights file in bytes.
pub const WEIGHTS_BYTES: usize =
    8 + 4 * HIDDEN + INPUTS * HIDDEN + 4 * (HIDDEN + HIDDEN * CLASSES + CLASSES);
/// Bytes of one classification in the plugin output: class + 10 logits.
pub const RESULT_BYTES: usize = 1 + 4 * CLASSES;

/// The committed weights (written by `mlp-train`).
pub static WEIGHTS: &[u8] = include_bytes!("../weights.bin");

/// Weights of the network. `w1` is input-major (`w1[i * HIDDEN + j]`),
/// `w2` is hidden-major (`w2[j * CLASSES + k]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    /// Per hidden unit: the f32 value of one step of `w1` times one pixel
    /// step (weight scale / 255).
    pub s1: Vec<f32>,
    /// Input to hidden weights, int8.
    pub w1: Vec<i8>,
    /// Hidden biases.
    pub b1: Vec<f32>,
    /// Hidden to output weights.
    pub w2: Vec<f32>,
    /// Output biases.
    pub b2: Vec<f32>,
}

impl Mlp {
    /// All-zero weights.
    pub fn zeros() -> Self {
        Self {
            s1: vec![0.0; HIDDEN],
            w1: vec![0; INPUTS * HIDDEN],
            b1: vec![0.0; HIDDEN],
            w2: vec![0.0; HIDDEN * CLASSES],
            b2: vec![0.0; CLASSES],
        }
    }

    /// Parses a weights file; `None` if its size or magic is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != WEIGHTS_BYTES || &bytes[..8] != MAGIC {
            return None;
        }
        let f32s = |b: &[u8]| -> Vec<f32> {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        };
        let (s1, rest) = bytes[8..].split_at(4 * HIDDEN);
        let (w1, rest) = rest.split_at(INPUTS * HIDDEN);
        let (b1, rest) = rest.split_at(4 * HIDDEN);
        let (w2, b2) = rest.split_at(4 * HIDDEN * CLASSES);
        Some(Self {
            s1: f32s(s1),
            w1: w1.iter().map(|b| *b as i8).collect(),
            b1: f32s(b1),
            w2: f32s(w2),
            b2: f32s(b2),
        })
    }

    /// Serialises to the weights file format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(WEIGHTS_BYTES);
        out.extend_from_slice(MAGIC);
        for x in &self.s1 {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend(self.w1.iter().map(|w| *w as u8));
        for v in [&self.b1, &self.w2, &self.b2] {
            for x in v.iter() {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        out
    }

    /// Hidden activations (after ReLU) for one image.
    pub fn hidden(&self, pixels: &[u8], h: &mut [f32; HIDDEN]) {
        let mut acc = [0i32; HIDDEN];
        for (i, &p) in pixels.iter().take(INPUTS).enumerate() {
            if p == 0 {
                continue;
            }
            let x = i16::from(p);
            let row = &self.w1[i * HIDDEN..(i + 1) * HIDDEN];
            for (a, w) in acc.iter_mut().zip(row) {
                // |255 * 127| < 2^15: the product fits in i16.
                *a += i32::from(x * i16::from(*w));
            }
        }
        for j in 0..HIDDEN {
            // |acc| <= 256 * 255 * 127 < 2^24: exact in f32.
            let v = self.b1[j] + acc[j] as f32 * self.s1[j];
            h[j] = if v > 0.0 { v } else { 0.0 };
        }
    }

    /// Logits for one image from its hidden activations.
    pub fn logits_from_hidden(&self, h: &[f32; HIDDEN]) -> [f32; CLASSES] {
        let mut out = [0.0f32; CLASSES];
        out.copy_from_slice(&self.b2);
        for (j, &hj) in h.iter().enumerate() {
            if hj == 0.0 {
                continue;
            }
            let row = &self.w2[j * CLASSES..(j + 1) * CLASSES];
            for (ok, wk) in out.iter_mut().zip(row) {
                *ok += hj * *wk;
            }
        }
        out
    }

    /// Logits for one image of 256 pixels (missing pixels count as 0).
    pub fn logits(&self, pixels: &[u8]) -> [f32; CLASSES] {
        let mut h = [0.0f32; HIDDEN];
        self.hidden(pixels, &mut h);
        self.logits_from_hidden(&h)
    }

    /// Classifies every complete 256-byte image of `input` and appends, per
    /// image, the predicted class (one byte) and the 10 logits (f32 little
    /// endian) to `out`. A trailing partial image is ignored.
    pub fn classify_into(&self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() / INPUTS * RESULT_BYTES);
        for img in input.chunks_exact(INPUTS) {
            let l = self.logits(img);
            out.push(argmax(&l) as u8);
            for v in l {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// Index of the largest value (first one on ties).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}
