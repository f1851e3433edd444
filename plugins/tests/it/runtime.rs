//! Cache, determinism, capabilities and concurrency of the engine.

use std::sync::Arc;

use hal9_plugins::{EngineConfig, Error, ExecRequest, Metrics, ModuleDigest, PluginEngine, TaskId};
use prometheus_client::{encoding::text::encode, registry::Registry};

use crate::{ECHO_WAT, engine, run_with, tight, wat};

const RANDOM_WAT: &str = r#"
(module
  (@custom "hal9.manifest" "{\"abi\":1,\"name\":\"dice\",\"capabilities\":[\"random\"]}")
  (import "hal9" "random_fill" (func $rand (param i32 i32)))
  (import "hal9" "output_write" (func $write (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "hal9_run") (result i32)
    (call $rand (i32.const 0) (i32.const 48))
    (call $write (i32.const 0) (i32.const 48))))
"#;

fn exec(engine: &PluginEngine, digest: ModuleDigest, task: [u8; 32]) -> Vec<u8> {
    engine
        .execute(&ExecRequest {
            module: digest,
            input: Arc::from(&b""[..]),
            task_id: TaskId(task),
            limits: Some(tight()),
        })
        .unwrap()
        .output
}

#[test]
fn randomness_is_seeded_by_the_task_id() {
    let p = engine().load(&wat(RANDOM_WAT)).unwrap();
    assert_eq!(p.manifest().name, "dice");
    let a1 = exec(engine(), p.digest(), [1; 32]);
    let a2 = exec(engine(), p.digest(), [1; 32]);
    let b = exec(engine(), p.digest(), [2; 32]);
    assert_eq!(a1.len(), 48);
    assert_eq!(a1, a2, "same task, same numbers");
    assert_ne!(a1, b, "other task, other numbers");
    // Another engine (another node) draws the same numbers.
    let other = PluginEngine::new(EngineConfig {
        pooling: false,
        ..EngineConfig::default()
    })
    .unwrap();
    let p2 = other.load(&wat(RANDOM_WAT)).unwrap();
    assert_eq!(exec(&other, p2.digest(), [1; 32]), a1);
}

#[test]
fn same_input_gives_same_output_and_same_fuel() {
    let a = run_with(engine(), &wat(ECHO_WAT), b"determinism", Some(tight())).unwrap();
    let b = run_with(engine(), &wat(ECHO_WAT), b"determinism", Some(tight())).unwrap();
    assert_eq!(a.output, b.output);
    assert_eq!(a.fuel_used, b.fuel_used);
    assert!(a.fuel_used > 0);
    // Moving more bytes costs more fuel.
    let c = run_with(engine(), &wat(ECHO_WAT), &[7; 4096], Some(tight())).unwrap();
    assert!(c.fuel_used > a.fuel_used);
}

#[test]
fn logs_are_collected_and_rate_limited() {
    let chatty = r#"
    (module
      (@custom "hal9.manifest" "{\"abi\":1,\"capabilities\":[\"log\"]}")
      (import "hal9" "log" (func $log (param i32 i32 i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "hello from wasm")
      (func (export "hal9_run") (result i32)
        (local $i i32)
        (loop $l
          (call $log (i32.const 2) (i32.const 0) (i32.const 15))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 100))))
        (i32.const 0)))
    "#;
    let out = run_with(engine(), &wat(chatty), b"", Some(tight())).unwrap();
    let max = engine().config().max_log_lines as usize;
    assert_eq!(out.logs.len(), max);
    assert_eq!(out.logs_dropped as usize, 100 - max);
    assert_eq!(out.logs[0].message, "hello from wasm");
}

#[test]
fn guest_errors_carry_code_and_message() {
    let failing = r#"
    (module
      (import "hal9" "output_write" (func $write (param i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 0) "bad input: expected JSON")
      (func (export "hal9_run") (result i32)
        (drop (call $write (i32.const 0) (i32.const 24)))
        (i32.const 3)))
    "#;
    let e = run_with(engine(), &wat(failing), b"", Some(tight())).unwrap_err();
    match e {
        Error::Guest { code, message } => {
            assert_eq!(code, 3);
            assert_eq!(message, "bad input: expected JSON");
        }
        other => panic!("expected Guest, got {other}"),
    }
}

#[test]
fn digests_are_verified_on_load() {
    let bytes = wat(ECHO_WAT);
    let good = ModuleDigest::of(&bytes);
    assert_eq!(engine().load_verified(good, &bytes).unwrap().digest(), good);
    let wrong = ModuleDigest([0xab; 32]);
    let e = engine().load_verified(wrong, &bytes).unwrap_err();
    assert!(
        matches!(e, Error::DigestMismatch { expected, found } if expected == wrong && found == good),
        "{e}"
    );
}

#[test]
fn cache_is_bounded_and_evicts_the_least_recently_used() {
    let engine = PluginEngine::new(EngineConfig {
        cache_modules: 2,
        pooling: false,
        ..EngineConfig::default()
    })
    .unwrap();
    let module = |n: i32| {
        wat(&format!(
            r#"(module (memory (export "memory") 1)
                (func (export "hal9_run") (result i32) (i32.const 0) (drop (i32.const {n}))))"#
        ))
    };
    let a = engine.load(&module(1)).unwrap().digest();
    let b = engine.load(&module(2)).unwrap().digest();
    // Touch `a` so `b` is the least recently used.
    exec(&engine, a, [0; 32]);
    let c = engine.load(&module(3)).unwrap().digest();
    let cached = engine.cached_digests();
    assert_eq!(cached.len(), 2);
    assert!(cached.contains(&a) && cached.contains(&c) && !cached.contains(&b));
    let e = engine
        .execute(&ExecRequest {
            module: b,
            input: Arc::from(&b""[..]),
            task_id: TaskId::default(),
            limits: None,
        })
        .unwrap_err();
    assert!(matches!(e, Error::NotLoaded(d) if d == b), "{e}");
    assert!(engine.evict(&a));
    assert_eq!(engine.cached_digests(), vec![c]);
}

#[test]
fn manifests_asking_beyond_the_ceilings_are_refused() {
    let greedy = r#"
    (module
      (@custom "hal9.manifest" "{\"abi\":1,\"limits\":{\"memory_bytes\":99999999999}}")
      (memory (export "memory") 1)
      (func (export "hal9_run") (result i32) (i32.const 0)))
    "#;
    let e = engine().load(&wat(greedy)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::ManifestLimit {
                what: "memory_bytes",
                ..
            }
        ),
        "{e}"
    );
    let future = r#"
    (module
      (@custom "hal9.manifest" "{\"abi\":2}")
      (memory (export "memory") 1)
      (func (export "hal9_run") (result i32) (i32.const 0)))
    "#;
    let e = engine().load(&wat(future)).unwrap_err();
    assert!(
        matches!(
            e,
            Error::AbiVersion {
                expected: 1,
                found: 2
            }
        ),
        "{e}"
    );
}

#[test]
fn engine_is_shared_across_threads() {
    fn assert_send_sync<T: Clone + Send + Sync + 'static>() {}
    assert_send_sync::<PluginEngine>();
    let mut registry = Registry::default();
    let engine = PluginEngine::with_metrics(
        EngineConfig {
            max_concurrent: 8,
            ..EngineConfig::default()
        },
        Metrics::register(&mut registry),
    )
    .unwrap();
    let digest = engine.load(&wat(ECHO_WAT)).unwrap().digest();
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let engine = engine.clone();
            std::thread::spawn(move || {
                for i in 0..50u8 {
                    let input = vec![t, i];
                    let out = engine
                        .execute(&ExecRequest {
                            module: digest,
                            input: Arc::from(input.clone()),
                            task_id: TaskId([t; 32]),
                            limits: None,
                        })
                        .unwrap();
                    assert_eq!(out.output, input);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("hal9_plugins_executions_total{outcome=\"ok\"} 200"),
        "{text}"
    );
    assert!(text.contains("hal9_plugins_cache_modules 1"), "{text}");
}

#[test]
fn no_state_leaks_from_one_execution_to_the_next() {
    // Outputs the byte at 70000 (heap, grown) and at 16 (data segment), then
    // overwrites both. A reused slot must come back as the module's image.
    let leaky = r#"
    (module
      (import "hal9" "output_write" (func $write (param i32 i32) (result i32)))
      (memory (export "memory") 2)
      (data (i32.const 16) "A")
      (func (export "hal9_run") (result i32)
        (i32.store8 (i32.const 0) (i32.load8_u (i32.const 70000)))
        (i32.store8 (i32.const 1) (i32.load8_u (i32.const 16)))
        (i32.store8 (i32.const 70000) (i32.const 171))
        (i32.store8 (i32.const 16) (i32.const 66))
        (call $write (i32.const 0) (i32.const 2))))
    "#;
    let p = engine().load(&wat(leaky)).unwrap();
    for _ in 0..50 {
        assert_eq!(exec(engine(), p.digest(), [5; 32]), vec![0, b'A']);
    }
}
