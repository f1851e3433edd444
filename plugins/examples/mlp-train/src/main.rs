//! Trains the example MLP on synthetic digit glyphs and writes
//! `mlp/weights.bin`. Deterministic: fixed seeds, per-sample SGD in a fixed
//! order. Run from `plugins/examples`:
//!
//! ```text
//! cargo run --release -p mlp-train            # train, write, report accuracy
//! cargo run --release -p mlp-train -- --check # only evaluate the committed weights
//! ```

#[path = "../../mlp/src/glyphs.rs"]
mod glyphs;
#[path = "../../mlp/src/model.rs"]
#[allow(dead_code)]
mod model;

use glyphs::{PIXELS, Rng, dataset};
use model::{CLASSES, HIDDEN, INPUTS, Mlp, argmax};

const EPOCHS: u64 = 12;
const PER_EPOCH: usize = 20_000;
const TEST_SIZE: usize = 5_000;

fn init(rng: &mut Rng) -> Mlp {
    let mut m = Mlp::zeros();
    let a1 = (6.0 / (INPUTS + HIDDEN) as f32).sqrt();
    let a2 = (6.0 / (HIDDEN + CLASSES) as f32).sqrt();
    for w in &mut m.w1 {
        *w = rng.range(-a1, a1);
    }
    for w in &mut m.w2 {
        *w = rng.range(-a2, a2);
    }
    m
}

fn train_one(m: &mut Mlp, img: &[u8; PIXELS], label: usize, lr: f32) {
    let x: Vec<f32> = img.iter().map(|p| f32::from(*p) / 255.0).collect();
    let mut h = [0.0f32; HIDDEN];
    m.hidden(img, &mut h);
    let o = m.logits_from_hidden(&h);
    let max = o.iter().cloned().fold(f32::MIN, f32::max);
    let e: Vec<f32> = o.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = e.iter().sum();
    let d_o: Vec<f32> = (0..CLASSES)
        .map(|k| e[k] / sum - if k == label { 1.0 } else { 0.0 })
        .collect();
    let mut d_h = [0.0f32; HIDDEN];
    for j in 0..HIDDEN {
        if h[j] > 0.0 {
            for k in 0..CLASSES {
                d_h[j] += m.w2[j * CLASSES + k] * d_o[k];
            }
        }
    }
    for j in 0..HIDDEN {
        for k in 0..CLASSES {
            m.w2[j * CLASSES + k] -= lr * h[j] * d_o[k];
        }
    }
    for k in 0..CLASSES {
        m.b2[k] -= lr * d_o[k];
    }
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
    let mut m = init(&mut rng);
    for epoch in 0..EPOCHS {
        let lr = 0.02 * (1.0 - epoch as f32 / EPOCHS as f32) + 0.001;
        let train = dataset(PER_EPOCH, glyphs::TRAIN_SEED + epoch);
        // Shuffle deterministically so classes interleave randomly.
        let mut order: Vec<usize> = (0..train.len()).collect();
        for i in (1..order.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            order.swap(i, j);
        }
        for &i in &order {
            train_one(&mut m, &train[i].0, train[i].1 as usize, lr);
        }
        println!(
            "epoch {epoch:2}: lr {lr:.4} train {:.2}% test {:.2}%",
            accuracy(&m, &train[..2000]) * 100.0,
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
