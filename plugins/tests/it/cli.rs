//! The CLI pieces the `hal9` binary mounts.

use clap::{CommandFactory, Parser};
use hal9_plugins::{
    Error,
    cli::{BenchPluginsArgs, PluginCommand},
};

use crate::ECHO_WAT;

#[derive(Parser)]
struct Hal9 {
    #[command(subcommand)]
    cmd: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    #[command(subcommand)]
    Plugin(PluginCommand),
    Bench(BenchPluginsArgs),
}

fn parse(args: &[&str]) -> Sub {
    let mut v = vec!["hal9"];
    v.extend_from_slice(args);
    Hal9::try_parse_from(v).expect("parses").cmd
}

#[test]
fn commands_parse_as_documented() {
    Hal9::command().debug_assert();
    match parse(&[
        "plugin", "run", "x.wasm", "--input", "@in.txt", "--fuel", "1000",
    ]) {
        Sub::Plugin(PluginCommand::Run {
            file, input, fuel, ..
        }) => {
            assert_eq!(file.to_str(), Some("x.wasm"));
            assert_eq!(input, "@in.txt");
            assert_eq!(fuel, Some(1000));
        }
        _ => panic!("expected plugin run"),
    }
    assert!(matches!(
        parse(&["plugin", "inspect", "x.wasm", "--json"]),
        Sub::Plugin(PluginCommand::Inspect { json: true, .. })
    ));
    assert!(matches!(
        parse(&["plugin", "build", "plugins/examples/mlp"]),
        Sub::Plugin(PluginCommand::Build { .. })
    ));
    assert!(matches!(
        parse(&["bench", "--iterations", "100"]),
        Sub::Bench(BenchPluginsArgs {
            iterations: 100,
            ..
        })
    ));
    assert!(Hal9::try_parse_from(["hal9", "plugin", "run", "x.wasm", "--fuel", "lots"]).is_err());
}

#[test]
fn run_and_inspect_work_on_files_and_refuse_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let wat_file = dir.path().join("echo.wat");
    std::fs::write(&wat_file, ECHO_WAT).unwrap();
    let wasm_file = dir.path().join("echo.wasm");
    std::fs::write(&wasm_file, crate::wat(ECHO_WAT)).unwrap();
    let out_file = dir.path().join("out.bin");
    for file in [&wat_file, &wasm_file] {
        PluginCommand::Run {
            file: file.clone(),
            input: "hello cli".into(),
            fuel: Some(100_000),
            memory: None,
            max_output: None,
            timeout_ms: None,
            task_id: None,
            manifest: None,
            output: Some(out_file.clone()),
            json: false,
        }
        .run()
        .unwrap();
        assert_eq!(std::fs::read(&out_file).unwrap(), b"hello cli");
    }
    PluginCommand::Inspect {
        file: wasm_file.clone(),
        manifest: None,
        json: true,
    }
    .run()
    .unwrap();

    // A sidecar manifest with an unsupported ABI is refused.
    std::fs::write(dir.path().join("echo.manifest.json"), br#"{"abi":9}"#).unwrap();
    let e = PluginCommand::Inspect {
        file: wasm_file.clone(),
        manifest: None,
        json: false,
    }
    .run()
    .unwrap_err();
    assert!(matches!(e, Error::AbiVersion { found: 9, .. }), "{e}");

    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not a module").unwrap();
    let e = PluginCommand::Run {
        file: junk,
        input: String::new(),
        fuel: None,
        memory: None,
        max_output: None,
        timeout_ms: None,
        task_id: None,
        manifest: None,
        output: None,
        json: false,
    }
    .run()
    .unwrap_err();
    assert!(matches!(e, Error::NotWasm { .. }), "{e}");
}
