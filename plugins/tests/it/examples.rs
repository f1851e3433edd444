//! The example plugins, built from source with the SDK, against the same
//! logic compiled natively.

use std::sync::Arc;

use hal9_plugins::{
    Error, ExecRequest, Limits, ModuleDigest, TaskId,
    builder::{build_plugin, example_wasm, examples_dir},
    inspect::inspect,
    kernels::{glyphs, mlp, wordcount},
};
use sha2::{Digest, Sha256};

use crate::{engine, run_with};

fn example(name: &str) -> Vec<u8> {
    let path = example_wasm(name).expect("example builds");
    std::fs::read(path).expect("example readable")
}

fn limits() -> Option<Limits> {
    Some(Limits::default())
}

#[test]
fn echo_built_with_the_sdk_round_trips_and_is_inspectable() {
    let wasm = example("echo");
    let out = run_with(engine(), &wasm, b"\x00\xffhello", limits()).unwrap();
    assert_eq!(out.output, b"\x00\xffhello");
    let info = inspect(engine(), &wasm, None).unwrap();
    assert_eq!(info.verdict, "accepted");
    assert_eq!(info.abi_version, 1);
    assert!(info.embedded_manifest);
    assert_eq!(info.manifest.name, "echo");
    assert_eq!(info.digest, ModuleDigest::of(&wasm).to_hex());
    assert!(info.exports.iter().any(|e| e.starts_with("hal9_run")));
    assert!(
        info.imports
            .iter()
            .all(|i| i.module == "hal9" && i.capability == "core")
    );
}

#[test]
fn build_function_reports_artifact_and_digest() {
    let built = build_plugin(&examples_dir().join("sha256")).unwrap();
    assert_eq!(built.len(), 1);
    let bytes = std::fs::read(&built[0].path).unwrap();
    assert_eq!(built[0].digest, ModuleDigest::of(&bytes));
    assert_eq!(built[0].size, bytes.len());
    let e = build_plugin(&examples_dir().join("no-such-plugin")).unwrap_err();
    assert!(matches!(e, Error::Build(_)), "{e}");
}

#[test]
fn wordcount_matches_native_logic() {
    let text = "The cat sat on the mat.\nThe dog ate the cat's hat!\nÜber café, the end\n";
    let out = run_with(engine(), &example("wordcount"), text.as_bytes(), limits()).unwrap();
    let native = wordcount::count(text.as_bytes(), 10).to_json();
    assert_eq!(String::from_utf8(out.output).unwrap(), native);
    let c = wordcount::count(text.as_bytes(), 3);
    assert_eq!((c.lines, c.words), (3, 16));
    assert_eq!(c.chars, text.chars().count() as u64);
    assert_eq!(c.top[0], ("the".to_owned(), 5));
    assert_eq!(c.top[1], ("cat".to_owned(), 2));
}

#[test]
fn sha256_plugin_hashes_like_the_host() {
    let wasm = example("sha256");
    let out = run_with(engine(), &wasm, b"abc", limits()).unwrap();
    assert_eq!(
        String::from_utf8(out.output).unwrap(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let out = run_with(engine(), &wasm, &big, limits()).unwrap();
    assert_eq!(out.output, hex::encode(Sha256::digest(&big)).into_bytes());
}

#[test]
fn json_transform_runs_a_pipeline_and_reports_bad_input() {
    let wasm = example("json-transform");
    let input = br#"{"data":[{"n":"a","v":3,"t":"x"},{"n":"b","v":1,"t":"y"},{"n":"c","v":2,"t":"x"}],
        "ops":[{"op":"filter","field":"t","cmp":"eq","value":"x"},{"op":"sort","field":"v"},{"op":"pick","fields":["v","n"]}]}"#;
    let out = run_with(engine(), &wasm, input, limits()).unwrap();
    assert_eq!(out.output, br#"[{"n":"c","v":2},{"n":"a","v":3}]"#);
    // Canonical: keys sorted, whitespace gone.
    let out = run_with(
        engine(),
        &wasm,
        br#"{ "b": 1, "a": [true, null] }"#,
        limits(),
    )
    .unwrap();
    assert_eq!(out.output, br#"{"a":[true,null],"b":1}"#);
    let e = run_with(engine(), &wasm, b"{not json", limits()).unwrap_err();
    assert!(
        matches!(&e, Error::Guest { code: 1, message } if message.contains("key must be a string")),
        "{e}"
    );
}

#[test]
fn mlp_classifies_synthetic_digits_bit_identically_to_native() {
    let wasm = example("mlp");
    let set = glyphs::dataset(1000, glyphs::TEST_SEED);
    let input: Vec<u8> = set
        .iter()
        .flat_map(|(img, _)| img.iter().copied())
        .collect();
    let plugin = engine().load(&wasm).unwrap();
    let req = ExecRequest {
        module: plugin.digest(),
        input: Arc::from(input.clone()),
        task_id: TaskId([9; 32]),
        limits: limits(),
    };
    let out = engine().execute(&req).unwrap();
    let model = mlp::Mlp::from_bytes(mlp::WEIGHTS).expect("committed weights parse");
    let mut native = Vec::new();
    model.classify_into(&input, &mut native);
    assert_eq!(out.output.len(), set.len() * mlp::RESULT_BYTES);
    assert!(out.output == native, "WASM and native logits differ");
    // A second run on the same node gives the same bytes and fuel.
    let again = engine().execute(&req).unwrap();
    assert_eq!(again.output, out.output);
    assert_eq!(again.fuel_used, out.fuel_used);
    let correct = out
        .output
        .chunks_exact(mlp::RESULT_BYTES)
        .zip(&set)
        .filter(|(r, (_, label))| r[0] == *label)
        .count();
    let accuracy = correct as f64 / set.len() as f64;
    assert!(accuracy >= 0.97, "accuracy {accuracy}");
    let e = run_with(engine(), &wasm, &[0; 100], limits()).unwrap_err();
    assert!(
        matches!(&e, Error::Guest { code: 2, message } if message.contains("multiple of 256")),
        "{e}"
    );
}
