//! The pure logic of the example plugins, compiled natively from the same
//! source files the plugins use. The benchmark compares these native runs
//! with the WASM runs, and tests check both give the same bytes.

#[path = "../examples/wordcount/src/wordcount.rs"]
pub mod wordcount;

#[path = "../examples/mlp/src/model.rs"]
pub mod mlp;

#[path = "../examples/mlp/src/glyphs.rs"]
pub mod glyphs;
