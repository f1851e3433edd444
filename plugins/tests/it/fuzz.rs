//! Untrusted bytes never panic the host: random files, corrupted modules
//! and random manifests end in errors (or, for harmless mutations, in a
//! normal run).

use proptest::prelude::*;

use hal9_plugins::Manifest;

use crate::{ECHO_WAT, assert_healthy, engine, run_with, tight, wat};

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn random_bytes_are_refused(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        bytes.extend_from_slice(&body);
        let _ = engine().load(&bytes);
        prop_assert!(engine().load(&body).is_err() || body.starts_with(b"\0asm"));
    }

    #[test]
    fn corrupted_modules_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let mut bytes = wat(ECHO_WAT);
        for (pos, val) in flips {
            let n = bytes.len();
            bytes[pos % n] = val;
        }
        if let Ok(out) = run_with(engine(), &bytes, b"input", Some(tight())) {
            // A mutation that still validates must still respect the limits.
            prop_assert!(out.output.len() <= tight().output_bytes as usize);
        }
    }

    #[test]
    fn manifest_parser_never_panics(text in "\\PC{0,200}") {
        let _ = Manifest::from_json(text.as_bytes());
    }
}

#[test]
fn host_is_healthy_after_fuzzing() {
    assert_healthy(engine());
}
