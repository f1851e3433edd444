//! Synthetic handwritten-like digits: a 5x7 bitmap font rendered into a
//! 16x16 grayscale image with random scale, shear, offset, stroke intensity,
//! noise and speckles. Deterministic for a given seed on every platform
//! (only integer ops and exactly rounded f32 `+ - * /`).

/// Image side in pixels.
pub const SIDE: usize = 16;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;

/// 5x7 font for the digits 0-9; bit 4 is the leftmost column.
pub const FONT: [[u8; 7]; 10] = [
    [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], // 0
    [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E], // 1
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], // 2
    [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E], // 3
    [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], // 4
    [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E], // 5
    [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], // 6
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08], // 7
    [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], // 8
    [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C], // 9
];

/// SplitMix64: small, fast, deterministic.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

fn glyph_on(digit: usize, col: i32, row: i32) -> bool {
    (0..5).contains(&col)
        && (0..7).contains(&row)
        && (FONT[digit][row as usize] >> (4 - col)) & 1 == 1
}

/// Renders `digit` (0-9) with random distortions.
pub fn render(digit: usize, rng: &mut Rng) -> [u8; PIXELS] {
    let digit = digit % 10;
    let sx = rng.range(1.7, 2.5);
    let sy = rng.range(1.6, 2.1);
    let shear = rng.range(-0.35, 0.35);
    let width = 5.0 * sx;
    let height = 7.0 * sy;
    let ox = rng.range(0.0, (SIDE as f32 - width).max(0.0) + 0.5);
    let oy = rng.range(0.0, (SIDE as f32 - height).max(0.0) + 0.5);
    let ink = rng.range(150.0, 255.0);
    let mut img = [0u8; PIXELS];
    for y in 0..SIDE {
        for x in 0..SIDE {
            let fy = (y as f32 + 0.5 - oy) / sy;
            let fx = (x as f32 + 0.5 - ox) / sx - shear * (fy - 3.5);
            let on = fx >= 0.0 && fy >= 0.0 && glyph_on(digit, fx as i32, fy as i32);
            let mut v = if on { ink } else { 0.0 };
            v += rng.range(-40.0, 40.0);
            if rng.below(100) < 3 {
                v = rng.range(100.0, 255.0);
            }
            img[y * SIDE + x] = v.clamp(0.0, 255.0) as u8;
        }
    }
    img
}

/// `n` labelled images; labels cycle 0..9 so classes are balanced.
pub fn dataset(n: usize, seed: u64) -> Vec<([u8; PIXELS], u8)> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let d = i % 10;
            (render(d, &mut rng), d as u8)
        })
        .collect()
}

/// Seed of the training set used by `mlp-train`.
pub const TRAIN_SEED: u64 = 0x4841_4c39_0001;
/// Seed of the held-out test set (never seen in training).
pub const TEST_SEED: u64 = 0x4841_4c39_7e57;
