//! Word count plugin: input is UTF-8 text, output is JSON
//! `{"bytes":..,"chars":..,"lines":..,"top":[["word",n],..],"words":..}`.

use hal9_plugin_sdk::{Error, plugin};

pub mod wordcount;

/// Number of most frequent words reported.
pub const TOP_N: usize = 10;

fn run(input: &[u8]) -> Result<Vec<u8>, Error> {
    Ok(wordcount::count(input, TOP_N).to_json().into_bytes())
}

plugin!(
    run,
    manifest = r#"{"abi":1,"name":"wordcount","version":"0.1.0"}"#
);
