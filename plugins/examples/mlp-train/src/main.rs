//! Trains the example MLP on synthetic digit glyphs and writes
//! `mlp/weights.bin`. Deterministic: fixed seeds, per-sample SGD in a fixed
//! order.
//!
//! 1. trains a float 256-64-10 perceptron;
//! 2. quantises the first layer to int8 with one scale per hidden unit;
//! 3. fine-tunes the float parts (biases, second layer) on top of the
//!    quantised first layer, which is what the plugin runs.
//!
//! Run from `plugins/examples`:
//!
//! ```text
//! cargo run --release -p mlp-train            # train, write, report accuracy
//! cargo run --release -p mlp-train -- --check # only evaluate the committed weights
//! ```

// Backpropagation reads best with explicit indices.
#![allow(clippy::needless_range_loop)]

#[path = "../../mlp/src/glyphs.rs"]
mod glyphs;
#[path = "../../mlp/src/model.rs"]
#[allow(dead_code)]
mod model;

use glyphs::{PIXELS, Rng, dataset};
use model::{CLASSES, HIDDEN, INPUTS, Mlp, argmax};

const EPOCHS: u64 = 12;
const FINE_TUNE_EPOCHS: u64 = 3;
const PER_EPOCH: usize = 20_000;
const TEST_SIZE: usize = 5_000;

/// The float network used for training (same layout as `Mlp`).
struct Float {
    w1: Vec<f32>,
    b1: Vec<f32>,
    w2: Vec<f32>,
    b2: Vec<f32>,
}

impl Float {
    fn init(rng: &mut Rng) -> Self {
        let a1 = (6.0 / (INPUTS + HIDDEN) as f32).sqrt();
        let a2 = (6.0 / (HIDDEN + CLASSES) as f32).sqrt();
        Self {
            w1: (0..INPUTS * HIDDEN).map(|_| rng.range(-a1, a1)).collect(),
            b1: vec![0.0; HIDDEN],
            w2: (0..HIDDEN * CLASSES).map(|_| rng.range(-a2, a2)).collect(),
            b2: vec![0.0; CLASSES],
        }
    }

    fn hidden(&self, x: &[f32]) -> [f32; HIDDEN] {
        let mut h = [0.0f32; HIDDEN];
        h.copy_from_slice(&self.b1);
        for (i, xi) in x.iter().enumerate() {
            if *xi != 0.0 {
                for j in 0..HIDDEN {
                    h[j] += xi * self.w1[i * HIDDEN + j];
                }
            }
        }
        h.map(|v| v.max(0.0))
    }

    fn quantize(&self) -> Mlp {
        let mut m = Mlp::zeros();
        for j in 0..HIDDEN {
            let max = (0..INPUTS)
                .map(|i| self.w1[i * HIDDEN + j].abs())
                .fold(1e-12f32, f32::max);
            let scale = max / 127.0;
            for i in 0..INPUTS {
                m.w1[i * HIDDEN + j] = (self.w1[i * HIDDEN + j] / scale)
                    .round()
                    .clamp(-127.0, 127.0) as i8;
            }
            m.s1[j] = scale / 255.0;
        }
        m.b1.copy_from_slice(&self.b1);
        m.w2.copy_from_slice(&self.w2);
        m.b2.copy_from_slice(&self.b2);
        m
    }
}

fn output_grad(o: &[f32; CLASSES], label: usize) -> [f32; CLASSES] {
    let max = o.iter().cloned().fold(f32::MIN, f32::max);
    let e = o.map(|v| (v - max).exp());
    let sum: f32 = e.iter().sum();
    let mut d = e.map(|v| v / sum);
    d[label] -= 1.0;
    d
}

/// Backpropagates through the second layer; returns dL/dh (masked by ReLU).
fn step_top(
    w2: &mut [f32],
    b2: &mut [f32],
    h: &[f32; HIDDEN],
    d_o: &[f32; CLASSES],
    lr: f32,
) -> [f32; HIDDEN] {
    let mut d_h = [0.0f32; HIDDEN];
    for j in 0..HIDDEN {
        if h[j] > 0.0 {
            for k in 0..CLASSES {
                d_h[j] += w2[j * CLASSES + k] * d_o[k];
            }
        }
    }
    for j in 0..HIDDEN {
        for k in 0..CLASSES {
            w2[j * CLASSES + k] -= lr * h[j] * d_o[k];
        }
    }
    for k in 0..CLASSES {
        b2[k] -= lr * d_o[k];
    }
    d_h
}

fn logits(w2: &[f32], b2: &[f32], h: &[f32; HIDDEN]) -> [f32; CLASSES] {
    let mut o = [0.0f32; CLASSES];
    o.copy_from_slice(b2);
    for j in 0..HIDDEN {
        for k in 0..CLASSES {
            o[k] += h[j] * w2[j * CLASSES + k];
        }
    }
    o
}

fn train_float(m: &mut Float, img: &[u8; PIXELS], label: usize, lr: f32) {
    let x: Vec<f32> = img.iter().map(|p| f32::from(*p) / 255.0).collect();
    let h = m.hidden(&x);
    let d_o = output_grad(&logits(&m.w2, &m.b2, &h), label);
    let d_h = step_top(&mut m.w2, &mut m.b2, &h, &d_o, lr);
    for i in 0..INPUTS {
        if x[i] != 0.0 {
            for j in 0..HIDDEN {
                m.w1[i * HIDDEN + j] -= lr * x[i] * d_h[j];
            }
        }
    }
    for j in 0..HIDDEN {
        m.b1[j] -= lr * d_h[j];
    }
}

fn fine_tune(m: &mut Mlp, img: &[u8; PIXELS], label: usize, lr: f32) {
    let mut h = [0.0f32; HIDDEN];
    m.hidden(img, &mut h);
    let d_o = output_grad(&m.logits_from_hidden(&h), label);
    let d_h = step_top(&mut m.w2, &mut m.b2, &h, &d_o, lr);
    for j in 0..HIDDEN {
        m.b1[j] -= lr * d_h[j];
    }
}

fn shuffled(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    order
}

fn accuracy(m: &Mlp, set: &[([u8; PIXELS], u8)]) -> f64 {
    let ok = set
        .iter()
        .filter(|(img, label)| argmax(&m.logits(img)) == *label as usize)
        .count();
    ok as f64 / set.len() as f64
}

fn main() {
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../mlp/weights.bin");
    let test = dataset(TEST_SIZE, glyphs::TEST_SEED);
    if std::env::args().any(|a| a == "--check") {
        let bytes = std::fs::read(&out).unwrap_or_default();
        match Mlp::from_bytes(&bytes) {
            Some(m) => println!(
                "test accuracy {:.2}% on {TEST_SIZE} held-out synthetic digits",
                accuracy(&m, &test) * 100.0
            ),
            None => {
                eprintln!("{} is missing or malformed", out.display());
                std::process::exit(1);
            }
        }
        return;
    }
    let mut rng = Rng(7);
    let mut f = Float::init(&mut rng);
    for epoch in 0..EPOCHS {
        let lr = 0.02 * (1.0 - epoch as f32 / EPOCHS as f32) + 0.001;
        let train = dataset(PER_EPOCH, glyphs::TRAIN_SEED + epoch);
        for i in shuffled(train.len(), &mut rng) {
            train_float(&mut f, &train[i].0, train[i].1 as usize, lr);
        }
        println!(
            "epoch {epoch:2}: lr {lr:.4} test {:.2}% (float, evaluated quantised)",
            accuracy(&f.quantize(), &test) * 100.0
        );
    }
    let mut m = f.quantize();
    for epoch in 0..FINE_TUNE_EPOCHS {
        let lr = 0.002;
        let train = dataset(PER_EPOCH, glyphs::TRAIN_SEED + EPOCHS + epoch);
        for i in shuffled(train.len(), &mut rng) {
            fine_tune(&mut m, &train[i].0, train[i].1 as usize, lr);
        }
        println!(
            "fine-tune {epoch}: test {:.2}% (int8 first layer)",
            accuracy(&m, &test) * 100.0
        );
    }
    if let Err(e) = std::fs::write(&out, m.to_bytes()) {
        eprintln!("writing {}: {e}", out.display());
        std::process::exit(1);
    }
    println!(
        "wrote {} ({} bytes); test accuracy {:.2}% on {TEST_SIZE} held-out synthetic digits",
        out.display(),
        model::WEIGHTS_BYTES,
        accuracy(&m, &test) * 100.0
    );
}
