//! The smallest useful plugin: returns its input unchanged.

use hal9_plugin_sdk::{Error, plugin};

fn run(input: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(input.to_vec())
}

plugin!(
    run,
    manifest = r#"{"abi":1,"name":"echo","version":"0.1.0"}"#
);
