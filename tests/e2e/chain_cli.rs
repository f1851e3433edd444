//! The chain commands of the `hal9` binary against a real anvil: operator
//! key, neuron registration, staking with a refused unbond in words, a
//! transfer, and a DAO proposal that changes the burn rate through
//! propose, vote, queue and execute.
//!
//! anvil is looked up in `$HAL9_ANVIL`, then `PATH`, then
//! `contracts/node_modules/.bin/anvil`; without it the test says SKIPPED.

use std::path::{Path, PathBuf};
use std::process::Output;

use alloy::network::EthereumWallet;
use alloy::node_bindings::Anvil;
use alloy::primitives::Address;
use alloy::providers::{ProviderBuilder, ext::AnvilApi};
use alloy::signers::local::PrivateKeySigner;
use hal9_market::units::parse_tokens;
use hal9_market::{DeployConfig, MarketClient, deploy_all};

use crate::harness::{bin, hal9};

fn anvil_path() -> Option<PathBuf> {
    hal9_market::deploy::find_anvil()
}

const PASS_ENV: &str = "HAL9_OPERATOR_PASSPHRASE";

/// Runs `hal9 args... --home H --rpc-url URL` with the keystore passphrase set.
fn run(args: &[&str], home: &Path, rpc: &str, envs: &[(&str, &str)]) -> Output {
    let mut c = std::process::Command::new(bin());
    c.args(args)
        .arg("--home")
        .arg(home)
        .arg("--rpc-url")
        .arg(rpc)
        .env_remove("HAL9_HOME")
        .env_remove("HAL9_RPC_URL")
        .env(PASS_ENV, "e2e passphrase");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("run hal9")
}

fn ok(out: Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{what} failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn fails(out: Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{what} should fail: {stderr}");
    stderr
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[tokio::test]
async fn chain_commands_stake_and_govern_on_anvil() {
    let Some(anvil_bin) = anvil_path() else {
        eprintln!(
            "\n!!!! SKIPPED chain_commands_stake_and_govern_on_anvil: anvil is not installed (HAL9_ANVIL or PATH). This test did NOT run. !!!!\n"
        );
        return;
    };
    let anvil = Anvil::at(anvil_bin)
        .args(["--accounts", "5"])
        .try_spawn()
        .expect("anvil starts");
    let keys: Vec<PrivateKeySigner> = anvil
        .keys()
        .iter()
        .cloned()
        .map(PrivateKeySigner::from)
        .collect();
    let rpc = anvil.endpoint();
    let p0 = ProviderBuilder::new()
        .wallet(EthereumWallet::from(keys[0].clone()))
        .connect_http(anvil.endpoint_url());
    let genesis: Vec<Address> = keys[..3].iter().map(|k| k.address()).collect();
    let mut cfg = DeployConfig::devnet(&genesis);
    cfg.voting_delay = 1;
    cfg.voting_period = 10;
    cfg.timelock_delay = 60;
    let d = deploy_all(&p0, keys[0].address(), &cfg)
        .await
        .expect("deploy");

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("h");
    ok(hal9(&["init"], &home), "init");
    d.save(&home.join("deployment.json")).unwrap();

    // A new keystore needs its passphrase in the environment: no prompt.
    let out = std::process::Command::new(bin())
        .args(["key", "new", "--home"])
        .arg(&home)
        .env_remove(PASS_ENV)
        .output()
        .unwrap();
    assert!(fails(out, "key new without passphrase").contains(PASS_ENV));

    // Import genesis account 1 as an encrypted keystore.
    let op = keys[1].address();
    let secret = keys[1].to_bytes().to_string();
    ok(
        run(
            &["key", "import", "--private-key-env", "E2E_KEY"],
            &home,
            &rpc,
            &[("E2E_KEY", &secret)],
        ),
        "key import",
    );
    let addr = ok(run(&["key", "address"], &home, &rpc, &[]), "key address");
    assert_eq!(addr.trim(), op.to_string());
    let err = fails(
        run(
            &["key", "import", "--private-key-env", "E2E_KEY"],
            &home,
            &rpc,
            &[("E2E_KEY", &secret)],
        ),
        "second import",
    );
    assert!(err.contains("refusing to overwrite"), "{err}");

    // Register (with the minimum stake and the PeerId binding signed by
    // the node key) and stake with a lock; unbonding during the lock is
    // refused in words.
    let err = fails(
        run(&["stake", "deposit", "10"], &home, &rpc, &[]),
        "stake before register",
    );
    assert!(err.contains("not registered"), "{err}");
    let err = fails(
        run(&["neuron", "register", "--stake", "1"], &home, &rpc, &[]),
        "register below the minimum stake",
    );
    assert!(err.contains("at least 100 HAL9"), "{err}");
    ok(
        run(&["neuron", "register"], &home, &rpc, &[]),
        "neuron register",
    );
    let st = json(&ok(
        run(&["neuron", "status", "--json"], &home, &rpc, &[]),
        "neuron status",
    ));
    assert_eq!(st["registered"], true);
    assert_eq!(st["peer_id_is_this_node"], true);
    assert_eq!(st["peer_binding_valid"], true);
    ok(
        run(
            &["stake", "deposit", "1000", "--lock", "30"],
            &home,
            &rpc,
            &[],
        ),
        "stake deposit",
    );
    ok(
        run(&["stake", "deposit", "0.5"], &home, &rpc, &[]),
        "second deposit",
    );
    let st = json(&ok(
        run(&["stake", "status", "--json"], &home, &rpc, &[]),
        "stake status",
    ));
    // 100 with the registration, 1000 and 0.5 deposited.
    assert_eq!(st["stake"], parse_tokens("1100.5").unwrap().to_string());
    assert_ne!(
        st["multiplier_bps"], "10000",
        "a lock raises the multiplier"
    );
    let text = ok(
        run(&["stake", "status"], &home, &rpc, &[]),
        "stake status text",
    );
    assert!(text.contains("1100.5 HAL9"), "{text}");
    let err = fails(
        run(&["stake", "unbond", "10"], &home, &rpc, &[]),
        "unbond while locked",
    );
    assert!(err.contains("the lock has not ended"), "{err}");
    let err = fails(
        run(&["stake", "withdraw"], &home, &rpc, &[]),
        "withdraw nothing",
    );
    assert!(err.contains("nothing is unbonding"), "{err}");
    let err = fails(
        run(
            &["stake", "deposit", "1.0000000000000000001"],
            &home,
            &rpc,
            &[],
        ),
        "19 decimals",
    );
    assert!(err.contains("18 digits"), "{err}");

    // Transfer, read back by another account's balance.
    let to = keys[4].address().to_string();
    ok(
        run(&["transfer", &to, "12.5"], &home, &rpc, &[]),
        "transfer",
    );
    let b = json(&ok(
        run(&["balance", &to, "--json"], &home, &rpc, &[]),
        "balance",
    ));
    assert_eq!(b["hal9"], parse_tokens("12.5").unwrap().to_string());

    // Governance: delegate, propose a lower burn, vote, queue, execute.
    ok(run(&["dao", "delegate"], &home, &rpc, &[]), "delegate");
    // Proposing reads the votes of the second before (ERC-6372 timestamp clock).
    p0.anvil_increase_time(1).await.unwrap();
    p0.anvil_mine(Some(1), None).await.unwrap();
    let p = json(&ok(
        run(
            &[
                "dao",
                "propose",
                "--set-param",
                "burnBps=42",
                "--description",
                "burn 0.42%",
                "--json",
            ],
            &home,
            &rpc,
            &[],
        ),
        "propose",
    ));
    let id = p["id"].as_str().unwrap().to_string();
    let err = fails(
        run(&["dao", "vote", &id, "for"], &home, &rpc, &[]),
        "early vote",
    );
    assert!(err.contains("voting has not started"), "{err}");
    p0.anvil_increase_time(2).await.unwrap();
    p0.anvil_mine(Some(1), None).await.unwrap();
    ok(
        run(
            &["dao", "vote", &id, "for", "--reason", "cheaper"],
            &home,
            &rpc,
            &[],
        ),
        "vote",
    );
    p0.anvil_increase_time(11).await.unwrap();
    p0.anvil_mine(Some(1), None).await.unwrap();
    ok(run(&["dao", "queue", &id], &home, &rpc, &[]), "queue");
    let err = fails(
        run(&["dao", "execute", &id], &home, &rpc, &[]),
        "early execute",
    );
    assert!(err.contains("timelock delay has not passed"), "{err}");
    p0.anvil_increase_time(61).await.unwrap();
    p0.anvil_mine(Some(1), None).await.unwrap();
    ok(run(&["dao", "execute", &id], &home, &rpc, &[]), "execute");
    let list = json(&ok(
        run(&["dao", "list", "--json"], &home, &rpc, &[]),
        "dao list",
    ));
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["state"], "Executed");
    let m = MarketClient::connect(p0.clone(), d).await.unwrap();
    assert_eq!(m.params().await.unwrap().burnBps, 42);
}
