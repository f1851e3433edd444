//! End-to-end settlement on a real anvil.

use std::collections::HashMap;

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::{Provider, ProviderBuilder, ext::AnvilApi};
use alloy::signers::local::PrivateKeySigner;

use hal9_market::economics::{self, EmissionSchedule, FeeRates};
use hal9_market::{
    DeployConfig, Deployment, Dissent, MarketClient, MarketError, TaskSpec, deploy_all, eip712,
};

use crate::anvil_or_skip;

pub(crate) const ETHER: u128 = 1_000_000_000_000_000_000;

pub(crate) fn tokens(n: u128) -> U256 {
    U256::from(n) * U256::from(ETHER)
}

pub(crate) struct Net {
    pub(crate) anvil: AnvilInstance,
    pub(crate) url: alloy::transports::http::reqwest::Url,
    pub(crate) keys: Vec<PrivateKeySigner>,
    pub(crate) d: Deployment,
}

impl Net {
    pub(crate) fn provider(&self, i: usize) -> impl Provider + Clone + use<> {
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(self.keys[i].clone()))
            .connect_http(self.url.clone())
    }

    pub(crate) async fn client(&self, i: usize) -> MarketClient<impl Provider + Clone + use<>> {
        MarketClient::connect(self.provider(i), self.d)
            .await
            .expect("connect")
    }
}

pub(crate) async fn start() -> Option<Net> {
    start_with(10).await
}

pub(crate) async fn start_with(accounts: usize) -> Option<Net> {
    let path = anvil_or_skip("hal9-market chain tests")?;
    let anvil = Anvil::at(path)
        .args(["--accounts", &accounts.to_string()])
        .try_spawn()
        .expect("anvil starts");
    let keys: Vec<PrivateKeySigner> = anvil
        .keys()
        .iter()
        .cloned()
        .map(PrivateKeySigner::from)
        .collect();
    let url = anvil.endpoint_url();
    let genesis: Vec<Address> = keys.iter().map(|k| k.address()).collect();
    let p0 = ProviderBuilder::new()
        .wallet(EthereumWallet::from(keys[0].clone()))
        .connect_http(url.clone());
    let d = deploy_all(&p0, keys[0].address(), &DeployConfig::devnet(&genesis))
        .await
        .expect("deploy");
    Some(Net {
        anvil,
        url,
        keys,
        d,
    })
}

pub(crate) async fn now(p: &impl Provider) -> u64 {
    let b = p
        .get_block_by_number(Default::default())
        .await
        .expect("block")
        .expect("latest block");
    b.header.timestamp
}

pub(crate) fn spec(submitter: Address, nonce: u64, deadline: u64) -> TaskSpec {
    TaskSpec {
        programCid: Bytes::from_static(&[0x01, 0x55, 0x12, 0x20, 0xaa, 0xbb]),
        inputHash: keccak256(b"input"),
        inputCid: Bytes::new(),
        replicas: 3,
        fuelLimit: 1_000_000,
        capabilities: 1,
        submitter,
        nonce: U256::from(nonce),
        deadline,
    }
}

/// Operators 1..=3 register and stake; returns their signers by address.
pub(crate) async fn three_neurons(net: &Net) -> HashMap<Address, PrivateKeySigner> {
    let mut by_addr = HashMap::new();
    for i in 1..=3 {
        let c = net.client(i).await;
        let peer = [&[0x00u8, 0x24][..], keccak256([i as u8]).as_slice()].concat();
        c.register(&peer, 1).await.expect("register");
        c.stake(tokens(1_000)).await.expect("stake");
        c.stake(tokens(500)).await.expect("stake adds");
        let n = c
            .registry()
            .neuron(net.keys[i].address())
            .call()
            .await
            .expect("neuron");
        assert_eq!(n.stake, tokens(1_500), "a second deposit adds to the stake");
        by_addr.insert(net.keys[i].address(), net.keys[i].clone());
    }
    by_addr
}

#[tokio::test]
async fn settles_a_task_end_to_end() {
    let Some(net) = start().await else { return };
    let signers = three_neurons(&net).await;
    let client = net.client(4).await;
    let relayer = net.client(1).await;
    let p = net.provider(0);

    let fee = tokens(100);
    let s = spec(net.keys[4].address(), 1, now(&p).await + 3_600);
    let posted = client.post_task(&s, fee).await.expect("post");
    assert_eq!(
        posted.task_id,
        eip712::task_id(&s),
        "Rust task id == keccak256(abi.encode(spec))"
    );
    let on_chain_id = client
        .market()
        .taskId(s.clone().into())
        .call()
        .await
        .expect("taskId");
    assert_eq!(posted.task_id, on_chain_id);
    assert_eq!(posted.committee.len(), 3);
    for m in &posted.committee {
        assert!(
            signers.contains_key(m),
            "committee member {m} is a registered neuron"
        );
    }
    assert_eq!(posted.spec, s);
    let listed = client.posted_tasks(0, u64::MAX).await.expect("logs");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].task_id, posted.task_id);

    // The Rust digest is what the contract computes.
    let result = keccak256(b"the output");
    let cid = b"\x01\x55\x12\x20output-cid".to_vec();
    let rust_digest =
        eip712::attestation_digest(net.d.chain_id, net.d.market, posted.task_id, result, &cid);
    let chain_digest = client
        .market()
        .attestationDigest(posted.task_id, result, Bytes::from(cid.clone()))
        .call()
        .await
        .expect("digest");
    assert_eq!(rust_digest, chain_digest);

    // Two of three sign (quorum 2); the third signed another result.
    let c = &posted.committee;
    let sigs: Vec<Bytes> = c[..2]
        .iter()
        .map(|m| {
            client
                .sign_attestation(&signers[m], posted.task_id, result, &cid)
                .expect("sign")
        })
        .collect();
    let other = keccak256(b"wrong output");
    let dissent = Dissent {
        resultHash: other,
        outputCid: Bytes::from(cid.clone()),
        signature: client
            .sign_attestation(&signers[&c[2]], posted.task_id, other, &cid)
            .expect("sign"),
    };
    relayer
        .submit_verdict(posted.task_id, result, &cid, sigs, vec![dissent])
        .await
        .expect("verdict");

    let supply0 = client.total_supply().await.unwrap();
    let treasury0 = client.balance(net.d.timelock).await.unwrap();
    let bal0: Vec<U256> = {
        let mut v = Vec::new();
        for m in c {
            v.push(client.balance(*m).await.unwrap());
        }
        v
    };
    let minority_stake = client.registry().neuron(c[2]).call().await.unwrap().stake;

    // Finalizing inside the challenge window fails with the decoded reason.
    let early = relayer
        .finalize(posted.task_id)
        .await
        .expect_err("window still open");
    assert!(early.to_string().contains("NotFinalizable"), "{early}");

    let params = client.params().await.unwrap();
    p.anvil_increase_time(params.challengeWindow + 1)
        .await
        .expect("time");
    p.anvil_mine(Some(1), None).await.expect("mine");
    relayer.finalize(posted.task_id).await.expect("finalize");

    let split = economics::fee_split(
        fee,
        2,
        FeeRates {
            burn_bps: params.burnBps,
            treasury_bps: params.treasuryBps,
        },
    )
    .unwrap();
    let slashed = economics::slash_amount(minority_stake, U256::ZERO, params.slashBps);
    assert_eq!(
        client.total_supply().await.unwrap(),
        supply0 - split.burned,
        "1% burned"
    );
    assert_eq!(
        client.balance(c[0]).await.unwrap(),
        bal0[0] + split.per_member
    );
    assert_eq!(
        client.balance(c[1]).await.unwrap(),
        bal0[1] + split.per_member
    );
    assert_eq!(
        client.balance(c[2]).await.unwrap(),
        bal0[2],
        "the minority is not paid"
    );
    assert_eq!(
        client.registry().neuron(c[2]).call().await.unwrap().stake,
        minority_stake - slashed
    );
    assert_eq!(
        client.balance(net.d.timelock).await.unwrap(),
        treasury0 + split.treasury + slashed
    );
    assert_eq!(
        client.balance(net.d.market).await.unwrap(),
        U256::ZERO,
        "nothing left in escrow"
    );
    assert_eq!(split.per_member, tokens(97) / U256::from(2u64));
    let task = client.task(posted.task_id).await.unwrap();
    assert_eq!(task.resultHash, result);
    assert_eq!(task.outputCidHash, keccak256(&cid));
}

#[tokio::test]
async fn rejects_forged_replayed_and_short_certificates() {
    let Some(net) = start().await else { return };
    let signers = three_neurons(&net).await;
    let client = net.client(4).await;
    let p = net.provider(0);
    let deadline = now(&p).await + 3_600;
    let t1 = client
        .post_task(&spec(net.keys[4].address(), 1, deadline), tokens(10))
        .await
        .unwrap();
    let t2 = client
        .post_task(&spec(net.keys[4].address(), 2, deadline), tokens(10))
        .await
        .unwrap();
    let result = B256::repeat_byte(7);
    let cid = b"cid".to_vec();
    let sign = |who: &PrivateKeySigner, task: B256, chain: u64| {
        eip712::sign_attestation(who, chain, net.d.market, task, result, &cid).unwrap()
    };
    let m = &t1.committee;

    // An outsider (not registered) cannot stand in for a member.
    let outsider = net.keys[8].clone();
    let forged = vec![
        sign(&signers[&m[0]], t1.task_id, net.d.chain_id),
        sign(&outsider, t1.task_id, net.d.chain_id),
    ];
    let e = client
        .submit_verdict(t1.task_id, result, &cid, forged, vec![])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotCommitteeMember"), "{e}");

    // Signatures for task 1 do not settle task 2.
    let replay: Vec<Bytes> = m[..2]
        .iter()
        .map(|a| sign(&signers[a], t1.task_id, net.d.chain_id))
        .collect();
    let e = client
        .submit_verdict(t2.task_id, result, &cid, replay.clone(), vec![])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotCommitteeMember"), "{e}");

    // Signatures made for another chain do not verify here.
    let other_chain: Vec<Bytes> = m[..2]
        .iter()
        .map(|a| sign(&signers[a], t1.task_id, 1))
        .collect();
    let e = client
        .submit_verdict(t1.task_id, result, &cid, other_chain, vec![])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotCommitteeMember"), "{e}");

    // One signature is below the quorum of two; the same one twice is a duplicate.
    let e = client
        .submit_verdict(t1.task_id, result, &cid, replay[..1].to_vec(), vec![])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NoQuorum"), "{e}");
    let dup = vec![replay[0].clone(), replay[0].clone()];
    let e = client
        .submit_verdict(t1.task_id, result, &cid, dup, vec![])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("DuplicateSigner"), "{e}");

    // The genuine certificate is accepted.
    client
        .submit_verdict(t1.task_id, result, &cid, replay, vec![])
        .await
        .expect("valid certificate");
    // A task whose deadline passes without a verdict is refunded in full.
    let before = client.balance(net.keys[4].address()).await.unwrap();
    p.anvil_increase_time(3_601).await.unwrap();
    p.anvil_mine(Some(1), None).await.unwrap();
    client.finalize(t2.task_id).await.expect("refund");
    assert_eq!(
        client.balance(net.keys[4].address()).await.unwrap(),
        before + tokens(10)
    );
}

#[tokio::test]
async fn rust_arithmetic_matches_the_contracts() {
    let Some(net) = start().await else { return };
    let client = net.client(1).await;
    let market = client.market();

    let rates = FeeRates::default();
    for fee in [
        U256::ZERO,
        U256::from(1u64),
        U256::from(99u64),
        U256::from(12_345_678_901u64),
        tokens(100),
        tokens(1) + U256::from(7u64),
    ] {
        for m in [1u32, 2, 3, 5, 7, 13] {
            let chain = market.feeSplit(fee, U256::from(m)).call().await.unwrap();
            let rust = economics::fee_split(fee, m, rates).unwrap();
            assert_eq!(
                (chain.burned, chain.toTreasury, chain.each),
                (rust.burned, rust.treasury, rust.per_member)
            );
        }
    }
    for r in 3u32..=15 {
        let q = market.quorum(U256::from(r)).call().await.unwrap();
        assert_eq!(q, U256::from(economics::quorum(r)));
    }
    let rewards = client.rewards();
    let pool = rewards.pool().call().await.unwrap();
    let h = rewards.halvingEpochs().call().await.unwrap();
    let sched = EmissionSchedule::new(pool, h).unwrap();
    assert_eq!(
        rewards.initialEpochReward().call().await.unwrap(),
        sched.initial_epoch_reward()
    );
    for e in [
        0u64,
        1,
        364,
        365,
        366,
        1_000,
        365 * 63,
        365 * 64 - 1,
        365 * 64,
        365 * 100,
    ] {
        assert_eq!(
            rewards.epochReward(U256::from(e)).call().await.unwrap(),
            sched.epoch_reward(e),
            "epoch {e}"
        );
        assert_eq!(
            rewards
                .cumulativeEmission(U256::from(e))
                .call()
                .await
                .unwrap(),
            sched.cumulative(e),
            "n {e}"
        );
    }

    // The multiplier and effective stake of a locked neuron.
    client.register(b"\x00\x24peer", 1).await.unwrap();
    client.stake(tokens(1_000)).await.unwrap();
    let max_lock = client.registry().maxLock().call().await.unwrap();
    for lock in [max_lock / 7, max_lock / 2, max_lock] {
        client.lock(lock).await.unwrap();
        let m = economics::multiplier_bps(lock, max_lock).unwrap();
        let on_chain = client
            .registry()
            .multiplierBps(net.keys[1].address())
            .call()
            .await
            .unwrap();
        assert_eq!(on_chain, U256::from(m));
        assert_eq!(
            client.effective_stake(net.keys[1].address()).await.unwrap(),
            economics::effective_stake(tokens(1_000), m)
        );
    }
    // A lock can only be extended.
    let e = client.lock(max_lock / 7).await.unwrap_err();
    assert!(matches!(e, MarketError::Chain { .. }));
    assert!(e.to_string().contains("LockShortened"), "{e}");
}

#[tokio::test]
async fn a_right_challenger_wins_through_escalation() {
    let Some(net) = start_with(14).await else {
        return;
    };
    // Eleven neurons: a committee of 3 and an escalation committee of 7 fit
    // beside the challenger.
    let mut signers = HashMap::new();
    for i in 1..=11 {
        let c = net.client(i).await;
        let peer = [&[0x00u8, 0x24][..], keccak256([i as u8]).as_slice()].concat();
        c.register(&peer, 1).await.expect("register");
        c.stake(tokens(1_000)).await.expect("stake");
        signers.insert(net.keys[i].address(), (i, net.keys[i].clone()));
    }
    let client = net.client(12).await;
    let p = net.provider(0);
    let fee = tokens(50);
    let posted = client
        .post_task(&spec(net.keys[12].address(), 9, now(&p).await + 3_600), fee)
        .await
        .unwrap();
    let c = posted.committee.clone();
    let wrong = keccak256(b"wrong");
    let cid = b"cid".to_vec();
    let sigs: Vec<Bytes> = c
        .iter()
        .map(|m| {
            client
                .sign_attestation(&signers[m].1, posted.task_id, wrong, &cid)
                .unwrap()
        })
        .collect();
    client
        .submit_verdict(posted.task_id, wrong, &cid, sigs, vec![])
        .await
        .unwrap();

    let (ch_idx, _) = signers
        .iter()
        .find(|(a, _)| !c.contains(a))
        .map(|(_, v)| v.clone())
        .unwrap();
    let challenger = net.client(ch_idx).await;
    let ch_addr = net.keys[ch_idx].address();
    let ch_before = client.balance(ch_addr).await.unwrap();
    let params = client.params().await.unwrap();
    challenger
        .challenge(posted.task_id, fee)
        .await
        .expect("challenge");
    let task = client.task(posted.task_id).await.unwrap();
    assert_eq!(task.escalation.len(), 7);
    assert!(
        task.escalation
            .iter()
            .all(|e| !c.contains(e) && *e != ch_addr)
    );
    assert_eq!(
        client.balance(ch_addr).await.unwrap(),
        ch_before - fee,
        "bond escrowed"
    );

    let truth = keccak256(b"truth");
    let q = economics::quorum(7) as usize;
    let esc_sigs: Vec<Bytes> = task.escalation[..q]
        .iter()
        .map(|m| {
            client
                .sign_attestation(&signers[m].1, posted.task_id, truth, &cid)
                .unwrap()
        })
        .collect();
    let stake_before = client.registry().neuron(c[0]).call().await.unwrap().stake;
    client
        .submit_escalation_verdict(posted.task_id, truth, &cid, esc_sigs)
        .await
        .expect("escalation verdict");
    client.finalize(posted.task_id).await.expect("finalize");

    let slash_each = economics::slash_amount(stake_before, U256::ZERO, params.slashBps);
    let reward = slash_each * U256::from(3u64) * U256::from(params.challengerRewardBps)
        / U256::from(economics::BPS);
    assert_eq!(
        client.registry().neuron(c[0]).call().await.unwrap().stake,
        stake_before - slash_each
    );
    assert_eq!(
        client.balance(ch_addr).await.unwrap(),
        ch_before + reward,
        "bond back plus the reward"
    );
    assert_eq!(client.task(posted.task_id).await.unwrap().resultHash, truth);
    assert_eq!(client.balance(net.d.market).await.unwrap(), U256::ZERO);
}
