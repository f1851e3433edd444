//! Hostile modules: each ends in its typed error and the host keeps going.

use std::time::{Duration, Instant};

use hal9_plugins::{EngineConfig, Error, Limits, PluginEngine};

use crate::{ECHO_WAT, assert_healthy, engine, run_with, tight, wat};

const LOOP: &str = r#"
(module
  (memory (export "memory") 1)
  (func (export "hal9_run") (result i32)
    (loop $l (br $l))
    (i32.const 0)))
"#;

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let e = run_with(engine(), &wat(LOOP), b"", Some(tight())).unwrap_err();
    assert!(matches!(e, Error::OutOfFuel { limit: 5_000_000 }), "{e}");
    assert!(e.is_deterministic());
    assert_healthy(engine());
}

#[test]
fn infinite_loop_with_ample_fuel_hits_the_wall_clock_guard() {
    let limits = Limits {
        fuel: u64::MAX / 4,
        wall_clock: Duration::from_millis(200),
        ..tight()
    };
    let start = Instant::now();
    let e = run_with(engine(), &wat(LOOP), b"", Some(limits)).unwrap_err();
    let took = start.elapsed();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(!e.is_deterministic());
    // The ticker really runs: the guard fires near the limit, not never.
    assert!(took >= Duration::from_millis(150), "fired after {took:?}");
    assert!(took < Duration::from_secs(10), "fired after {took:?}");
    assert_healthy(engine());
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let bomb = r#"
    (module
      (memory (export "memory") 1)
      (func (export "hal9_run") (result i32)
        (loop $l
          (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
        (i32.const 0)))
    "#;
    let e = run_with(engine(), &wat(bomb), b"", Some(tight())).unwrap_err();
    match e {
        Error::MemoryLimit { limit, requested } => {
            assert_eq!(limit, 4 << 20);
            assert!(requested > limit);
        }
        other => panic!("expected MemoryLimit, got {other}"),
    }
    assert_healthy(engine());
}

#[test]
fn module_declaring_too_much_memory_fails_at_instantiation() {
    // 1000 pages = 62.5 MiB initial, above the 4 MiB limit.
    let big = r#"(module (memory (export "memory") 1000)
        (func (export "hal9_run") (result i32) (i32.const 0)))"#;
    let e = run_with(engine(), &wat(big), b"", Some(tight())).unwrap_err();
    assert!(matches!(e, Error::MemoryLimit { .. }), "{e}");
    assert_healthy(engine());
}

#[test]
fn table_bomb_hits_the_table_limit() {
    let bomb = r#"
    (module
      (memory (export "memory") 1)
      (table 1 funcref)
      (func (export "hal9_run") (result i32)
        (drop (table.grow (ref.null func) (i32.const 100000)))
        (i32.const 0)))
    "#;
    let e = run_with(engine(), &wat(bomb), b"", Some(tight())).unwrap_err();
    assert!(matches!(e, Error::TableLimit { limit: 1_000, .. }), "{e}");
    assert_healthy(engine());
}

#[test]
fn deep_recursion_overflows_the_bounded_stack() {
    let rec = r#"
    (module
      (memory (export "memory") 1)
      (func $f (param i64) (result i64)
        (i64.add (call $f (i64.add (local.get 0) (i64.const 1))) (i64.const 1)))
      (func (export "hal9_run") (result i32)
        (drop (call $f (i64.const 0)))
        (i32.const 0)))
    "#;
    let limits = Limits {
        fuel: 10_000_000_000,
        ..tight()
    };
    let e = run_with(engine(), &wat(rec), b"", Some(limits)).unwrap_err();
    assert!(matches!(e, Error::StackOverflow { .. }), "{e}");
    assert_healthy(engine());
}

#[test]
fn huge_output_is_cut_at_the_output_limit() {
    let spam = r#"
    (module
      (import "hal9" "output_write" (func $write (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "hal9_run") (result i32)
        (loop $l
          (drop (call $write (i32.const 0) (i32.const 65536)))
          (br $l))
        (i32.const 0)))
    "#;
    let e = run_with(engine(), &wat(spam), b"", Some(tight())).unwrap_err();
    match e {
        Error::OutputTooLarge { limit, attempted } => {
            assert_eq!(limit, 1 << 20);
            assert_eq!(attempted, (1 << 20) + 65536);
        }
        other => panic!("expected OutputTooLarge, got {other}"),
    }
    assert_healthy(engine());
}

#[test]
fn traps_are_reported_with_their_cause() {
    let div0 = r#"
    (module
      (import "hal9" "input_len" (func $len (result i32)))
      (memory (export "memory") 1)
      (func (export "hal9_run") (result i32)
        (i32.div_s (i32.const 7) (call $len))))
    "#;
    let e = run_with(engine(), &wat(div0), b"", Some(tight())).unwrap_err();
    match &e {
        Error::Trap(msg) => assert!(msg.contains("divide by zero"), "{msg}"),
        other => panic!("expected Trap, got {other}"),
    }
    let unreachable = r#"(module (memory (export "memory") 1)
        (func (export "hal9_run") (result i32) unreachable))"#;
    let e = run_with(engine(), &wat(unreachable), b"", Some(tight())).unwrap_err();
    assert!(
        matches!(&e, Error::Trap(m) if m.contains("unreachable")),
        "{e}"
    );
    assert_healthy(engine());
}

#[test]
fn out_of_bounds_pointer_in_a_host_call_is_refused() {
    let bad = r#"
    (module
      (import "hal9" "output_write" (func $write (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "hal9_run") (result i32)
        (call $write (i32.const 65000) (i32.const 1000))))
    "#;
    let e = run_with(engine(), &wat(bad), b"", Some(tight())).unwrap_err();
    assert!(
        matches!(
            e,
            Error::BadPointer {
                call: "output_write",
                ptr: 65000,
                len: 1000
            }
        ),
        "{e}"
    );
    assert_healthy(engine());
}

#[test]
fn missing_or_mistyped_exports_are_refused_at_load() {
    let no_run = r#"(module (memory (export "memory") 1) (func (export "main")))"#;
    let e = engine().load(&wat(no_run)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::MissingExport {
                name: "hal9_run",
                ..
            }
        ),
        "{e}"
    );

    let wrong_type = r#"(module (memory (export "memory") 1)
        (func (export "hal9_run") (param i32) (result i32) (local.get 0)))"#;
    let e = engine().load(&wat(wrong_type)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::MissingExport {
                name: "hal9_run",
                ..
            }
        ),
        "{e}"
    );

    let no_memory = r#"(module (func (export "hal9_run") (result i32) (i32.const 0)))"#;
    let e = engine().load(&wat(no_memory)).unwrap_err();
    assert!(
        matches!(e, Error::MissingExport { name: "memory", .. }),
        "{e}"
    );
    assert_healthy(engine());
}

#[test]
fn imports_not_granted_or_unknown_are_refused_at_load() {
    let wants_random = r#"
    (module
      (import "hal9" "random_fill" (func $rand (param i32 i32)))
      (memory (export "memory") 1)
      (func (export "hal9_run") (result i32) (i32.const 0)))
    "#;
    let e = engine().load(&wat(wants_random)).unwrap_err();
    match &e {
        Error::ImportNotGranted {
            name,
            capability,
            granted,
        } => {
            assert_eq!(name, "random_fill");
            assert_eq!(capability, "random");
            assert_eq!(granted, "none");
        }
        other => panic!("expected ImportNotGranted, got {other}"),
    }
    assert!(e.to_string().contains("needs capability `random`"));

    let wasi = r#"
    (module
      (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "hal9_run") (result i32) (i32.const 0)))
    "#;
    let e = engine().load(&wat(wasi)).unwrap_err();
    assert!(
        matches!(&e, Error::UnknownImport { module, .. } if module == "wasi_snapshot_preview1"),
        "{e}"
    );

    let bad_sig = r#"
    (module
      (import "hal9" "input_len" (func (param i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "hal9_run") (result i32) (i32.const 0)))
    "#;
    let e = engine().load(&wat(bad_sig)).unwrap_err();
    assert!(matches!(e, Error::ImportType { .. }), "{e}");
    assert_healthy(engine());
}

#[test]
fn a_host_that_does_not_grant_a_capability_refuses_the_manifest() {
    let engine = PluginEngine::new(EngineConfig {
        granted: vec![],
        pooling: false,
        ..EngineConfig::default()
    })
    .unwrap();
    let m = r#"
    (module
      (@custom "hal9.manifest" "{\"abi\":1,\"capabilities\":[\"log\"]}")
      (memory (export "memory") 1)
      (func (export "hal9_run") (result i32) (i32.const 0)))
    "#;
    let e = engine.load(&wat(m)).unwrap_err();
    assert!(
        matches!(&e, Error::CapabilityRefused(c) if c == "log"),
        "{e}"
    );
}

#[test]
fn non_wasm_and_corrupt_files_are_refused() {
    let e = engine().load(b"#!/bin/sh\nrm -rf /\n").unwrap_err();
    assert!(
        matches!(&e, Error::NotWasm { found } if found == "23212f62696e2f73"),
        "{e}"
    );
    let e = engine().load(b"").unwrap_err();
    assert!(matches!(e, Error::NotWasm { .. }), "{e}");
    let mut corrupt = wat(ECHO_WAT);
    let n = corrupt.len();
    corrupt.truncate(n - 3);
    let e = engine().load(&corrupt).unwrap_err();
    assert!(matches!(e, Error::InvalidModule(_)), "{e}");
    // A component (layer 1) is not a core module.
    let e = engine().load(b"\0asm\x0d\0\x01\0").unwrap_err();
    assert!(matches!(e, Error::InvalidModule(_)), "{e}");
    assert_healthy(engine());
}

/// Reads two f32 (a, b) from the input and writes the bits of `a / b` and
/// of `a + 1.0`.
const NAN_TRICK: &str = r#"
(module
  (import "hal9" "input_read" (func $read (param i32 i32 i32) (result i32)))
  (import "hal9" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "hal9_run") (result i32)
    (drop (call $read (i32.const 0) (i32.const 8) (i32.const 0)))
    (f32.store (i32.const 16) (f32.div (f32.load (i32.const 0)) (f32.load (i32.const 4))))
    (f32.store (i32.const 20) (f32.add (f32.load (i32.const 0)) (f32.const 1.0)))
    (call $write (i32.const 16) (i32.const 8))))
"#;

fn nan_bits(engine: &PluginEngine, a: u32, b: u32) -> (u32, u32) {
    let mut input = a.to_le_bytes().to_vec();
    input.extend_from_slice(&b.to_le_bytes());
    let out = run_with(engine, &wat(NAN_TRICK), &input, Some(tight())).unwrap();
    let w = |i: usize| u32::from_le_bytes(out.output[i..i + 4].try_into().unwrap());
    (w(0), w(4))
}

#[test]
fn nan_results_are_canonical() {
    const CANONICAL: u32 = 0x7fc0_0000;
    // 0/0 and a NaN with a payload both come out as the canonical NaN.
    assert_eq!(nan_bits(engine(), 0, 0).0, CANONICAL);
    assert_eq!(
        nan_bits(engine(), 0x7fc0_1234, 0x3f80_0000),
        (CANONICAL, CANONICAL)
    );
    assert_eq!(nan_bits(engine(), 0xffc0_0001, 0x3f80_0000).1, CANONICAL);

    // Without canonicalization the same module gives other bits: the
    // payload survives (and x86 produces a negative NaN for 0/0), which
    // would split a committee of mixed hardware.
    let raw = PluginEngine::new(EngineConfig {
        nan_canonicalization: false,
        pooling: false,
        ..EngineConfig::default()
    })
    .unwrap();
    let (_, payload) = nan_bits(&raw, 0x7fc0_1234, 0x3f80_0000);
    assert_ne!(
        payload, CANONICAL,
        "payload should survive without canonicalization"
    );
    #[cfg(target_arch = "x86_64")]
    assert_eq!(nan_bits(&raw, 0, 0).0, 0xffc0_0000);
}

#[test]
fn oversized_input_and_modules_are_refused() {
    let engine = PluginEngine::new(EngineConfig {
        max_input_bytes: 16,
        max_module_bytes: 64 * 1024,
        pooling: false,
        ..EngineConfig::default()
    })
    .unwrap();
    let e = run_with(&engine, &wat(ECHO_WAT), &[0; 17], None).unwrap_err();
    assert!(
        matches!(
            e,
            Error::InputTooLarge {
                size: 17,
                limit: 16
            }
        ),
        "{e}"
    );
    let e = engine.load(&vec![0; 64 * 1024 + 1]).unwrap_err();
    assert!(matches!(e, Error::ModuleTooLarge { .. }), "{e}");
    assert_eq!(
        run_with(&engine, &wat(ECHO_WAT), b"ok", None)
            .unwrap()
            .output,
        b"ok"
    );
}
