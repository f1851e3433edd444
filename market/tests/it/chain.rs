//! End-to-end settlement on a real anvil (protocol v1.1: register with a
//! peer binding, apply the queued tree writes, post, draw, commit, reveal,
//! settle).

use std::collections::HashMap;

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::providers::{Provider, ProviderBuilder, ext::AnvilApi};
use alloy::signers::local::PrivateKeySigner;

use hal9_market::economics::{self, EmissionSchedule, FeeRates};
use hal9_market::{
    ChainEvent, DeployConfig, Deployment, Dissent, DrawOutcome, MarketClient, MarketError,
    PostedTask, Reveal, TaskSpec, Watcher, commit, deploy_all, eip712,
};

use crate::anvil_or_skip;

/// Accounts: 0 deploys, 1..=11 are neurons, 12 submits, 13 relays.
pub(crate) const ACCOUNTS: usize = 14;
/// The submitter's account.
pub(crate) const SUBMITTER: usize = 12;
/// The relayer's account (not a neuron).
pub(crate) const RELAYER: usize = 13;
/// Neurons a task of r = 3 needs in its tree (3r + 2).
pub(crate) const NEURONS: usize = 11;

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
    start_with(ACCOUNTS).await
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

/// A neuron of the tests: its account index and key.
#[derive(Clone)]
pub(crate) struct Neuron {
    pub(crate) index: usize,
    pub(crate) key: PrivateKeySigner,
}

/// Operators 1..=n register with 1,000 HAL9 and a valid ed25519 peer
/// binding; the queued tree writes are applied in an apply phase. Returns
/// the neurons by address.
pub(crate) async fn neurons(net: &Net, n: usize) -> HashMap<Address, Neuron> {
    let mut by_addr = HashMap::new();
    for i in 1..=n {
        let c = net.client(i).await;
        let operator = net.keys[i].address();
        let mut secret = keccak256([b"peer".as_slice(), &[i as u8]].concat()).0;
        let kp = libp2p_identity::Keypair::ed25519_from_bytes(&mut secret).expect("ed25519 key");
        let peer = kp.public().to_peer_id().to_bytes();
        let msg = commit::peer_binding_message(net.d.chain_id, net.d.registry, operator, &peer);
        let sig = kp.sign(&msg).expect("ed25519 signs");
        assert!(kp.public().verify(&msg, &sig));
        c.register(&peer, 1, tokens(1_000), &sig)
            .await
            .expect("register");
        let rec = c.neuron(operator).await.expect("neuron");
        assert_eq!(rec.stake, tokens(1_000));
        assert_eq!(rec.peerSig.as_ref(), &sig[..], "the binding is stored");
        by_addr.insert(
            operator,
            Neuron {
                index: i,
                key: net.keys[i].clone(),
            },
        );
    }
    apply_all(net, &by_addr.keys().copied().collect::<Vec<_>>()).await;
    let (count, _) = net.client(0).await.tree_stats(1).await.unwrap();
    assert_eq!(count, U256::from(n), "every neuron has a leaf");
    by_addr
}

/// Mines until the next block is early in an apply phase, then applies the
/// queued tree writes of `ops`.
pub(crate) async fn apply_all(net: &Net, ops: &[Address]) {
    let p = net.provider(0);
    let c = net.client(0).await;
    let epoch = c.registry().epochBlocks().call().await.unwrap();
    let next = p.get_block_number().await.unwrap() + 1;
    if next % epoch >= 2 {
        p.anvil_mine(Some(epoch - next % epoch), None)
            .await
            .unwrap();
    }
    c.apply_queued(ops)
        .await
        .expect("applyQueued in an apply phase");
}

/// Mines until the head is `b` (nothing when it is already past).
pub(crate) async fn mine_to(p: &impl Provider, b: u64) {
    let head = p.get_block_number().await.unwrap();
    if head < b {
        p.anvil_mine(Some(b - head), None).await.unwrap();
    }
}

/// Moves the chain's clock past `t` (the next block is later than `t`).
pub(crate) async fn time_past(p: &impl Provider, t: u64) {
    let now = now(p).await;
    if now <= t {
        p.anvil_increase_time(t - now + 1).await.unwrap();
    }
    p.anvil_mine(Some(1), None).await.unwrap();
}

/// A drawn committee.
pub(crate) struct Drawn {
    pub(crate) members: Vec<Address>,
    pub(crate) commit_end: u64,
    pub(crate) reveal_end: u64,
}

/// Mines to the draw block and draws, following re-targets.
pub(crate) async fn mine_and_draw<P: Provider + Clone>(
    client: &MarketClient<P>,
    p: &impl Provider,
    task: B256,
    mut draw_block: u64,
    escalation: bool,
) -> Drawn {
    for _ in 0..8 {
        mine_to(p, draw_block).await;
        match client.draw(task).await {
            Ok(DrawOutcome::Drawn {
                members,
                commit_end,
                reveal_end,
                escalation: e,
            }) => {
                assert_eq!(e, escalation);
                return Drawn {
                    members,
                    commit_end,
                    reveal_end,
                };
            }
            Ok(DrawOutcome::Retargeted { draw_block: b }) => {
                assert!(b > draw_block);
                draw_block = b;
            }
            Ok(DrawOutcome::Empty) => panic!("nothing drawn for {task}"),
            Err(e) if e.to_string().contains("TooEarly") => {
                draw_block += 1;
            }
            Err(e) => panic!("draw: {e}"),
        }
    }
    panic!("no draw for {task} after 8 attempts");
}

/// The salt member `m` uses for `task`.
pub(crate) fn salt(task: B256, m: Address) -> B256 {
    keccak256([task.as_slice(), m.as_slice()].concat())
}

/// Each of `members[i]` (with `results[i]`) commits; returns their reveals.
pub(crate) async fn commit_members(
    net: &Net,
    who: &HashMap<Address, Neuron>,
    task: B256,
    members: &[Address],
    results: &[B256],
    cid: &[u8],
) -> Vec<Reveal> {
    let mut reveals = Vec::new();
    for (i, (m, r)) in members.iter().zip(results).enumerate() {
        let s = salt(task, *m);
        let c = commit::commitment(task, *r, keccak256(cid), s, *m);
        let client = net.client(who[m].index).await;
        client.commit_many(&[(task, c)]).await.expect("commit");
        assert_eq!(client.committed(task, *m).await.unwrap(), c);
        reveals.push(commit::reveal(i as u16, *r, cid, s));
    }
    reveals
}

/// Posts a task of `fee` from the submitter and draws its committee.
pub(crate) async fn post_and_draw(net: &Net, nonce: u64, fee: U256) -> (PostedTask, Drawn) {
    let client = net.client(SUBMITTER).await;
    let p = net.provider(0);
    let s = spec(net.keys[SUBMITTER].address(), nonce, now(&p).await + 3_600);
    let posted = client.post_task(&s, fee).await.expect("post");
    let drawn = mine_and_draw(&client, &p, posted.task_id, posted.draw_block, false).await;
    (posted, drawn)
}

/// A stock anvil (EIP-170 enforced) takes the whole deployment, and every
/// contract's runtime code, the market's and the settlement module it
/// created included, is below the 24,576-byte limit.
#[tokio::test]
async fn every_deployed_contract_fits_eip170() {
    let Some(net) = start().await else { return };
    let p = net.provider(0);
    let d = net.d;
    // The market's first creation (contract nonces start at 1).
    let settlement = d.market.create(1);
    for (name, at) in [
        ("token", d.token),
        ("registry", d.registry),
        ("rewards", d.rewards),
        ("market", d.market),
        ("settlement", settlement),
        ("governor", d.governor),
        ("timelock", d.timelock),
    ] {
        let code = p.get_code_at(at).await.expect("eth_getCode");
        assert!(
            !code.is_empty(),
            "{name} at {at}: expected code, found none"
        );
        assert!(
            code.len() < hal9_market::deploy::EIP170_CODE_SIZE_LIMIT,
            "{name}: expected runtime code below {} bytes, found {}",
            hal9_market::deploy::EIP170_CODE_SIZE_LIMIT,
            code.len()
        );
    }
}

#[tokio::test]
async fn settles_a_task_end_to_end() {
    let Some(net) = start().await else { return };
    let who = neurons(&net, NEURONS).await;
    let client = net.client(SUBMITTER).await;
    let relayer = net.client(RELAYER).await;
    let p = net.provider(0);

    // The Rust binding message is the registry's.
    let op = net.keys[1].address();
    let chain_msg = client
        .registry()
        .peerBindingMessage(op, Bytes::from_static(b"\x00\x24peer"))
        .call()
        .await
        .unwrap();
    assert_eq!(
        chain_msg.to_vec(),
        commit::peer_binding_message(net.d.chain_id, net.d.registry, op, b"\x00\x24peer")
    );

    let fee = tokens(100);
    let s = spec(net.keys[SUBMITTER].address(), 1, now(&p).await + 3_600);
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
    assert_eq!(posted.spec, s);
    assert!(posted.draw_block > posted.block.unwrap());
    assert_eq!(
        client.target_block(posted.draw_block).await.unwrap(),
        posted.draw_block,
        "the draw block lies in a draw phase"
    );
    let listed = client.posted_tasks(0, u64::MAX).await.expect("logs");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0], posted);
    assert!(
        client
            .committee_of(posted.task_id)
            .await
            .unwrap()
            .is_empty()
    );

    // Drawing before the draw block's hash exists is refused.
    let head = p.get_block_number().await.unwrap();
    if head < posted.draw_block {
        let e = relayer.draw(posted.task_id).await.unwrap_err();
        assert!(e.to_string().contains("TooEarly"), "{e}");
    }
    let drawn = mine_and_draw(&relayer, &p, posted.task_id, posted.draw_block, false).await;
    let c = drawn.members.clone();
    assert_eq!(c.len(), 3);
    assert_eq!(client.committee_of(posted.task_id).await.unwrap(), c);
    for m in &c {
        assert!(who.contains_key(m), "committee member {m} is a neuron");
    }
    // A second draw is refused: the committee is fixed.
    let e = relayer.draw(posted.task_id).await.unwrap_err();
    assert!(e.to_string().contains("WrongStatus"), "{e}");

    // The Rust commitment and digest are the contract's.
    let result = keccak256(b"the output");
    let cid = b"\x01\x55\x12\x20output-cid".to_vec();
    let s0 = salt(posted.task_id, c[0]);
    let chain_c = client
        .market()
        .commitmentOf(posted.task_id, result, keccak256(&cid), s0, c[0])
        .call()
        .await
        .unwrap();
    assert_eq!(
        chain_c,
        commit::commitment(posted.task_id, result, keccak256(&cid), s0, c[0])
    );
    let rust_digest =
        eip712::result_digest(net.d.chain_id, net.d.market, posted.task_id, result, &cid);
    let chain_digest = client
        .market()
        .resultDigest(posted.task_id, result, Bytes::from(cid.clone()))
        .call()
        .await
        .expect("digest");
    assert_eq!(rust_digest, chain_digest);

    // An outsider cannot commit; two members commit the result, the third another.
    // Account 0 deployed and is no neuron (its own client: one nonce cache per account).
    let outsider = net.client(0).await;
    let e = outsider
        .commit_many(&[(posted.task_id, B256::repeat_byte(1))])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotCommitteeMember"), "{e}");
    let other = keccak256(b"wrong output");
    let reveals = commit_members(
        &net,
        &who,
        posted.task_id,
        &c,
        &[result, result, other],
        &cid,
    )
    .await;
    // A second commitment by the same member is refused.
    let e = net
        .client(who[&c[0]].index)
        .await
        .commit_many(&[(posted.task_id, B256::repeat_byte(2))])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("DuplicateMember"), "{e}");

    // Reveals before commitEnd are refused.
    let e = relayer
        .submit_verdict(posted.task_id, result, &cid, reveals[..2].to_vec())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("TooEarly"), "{e}");
    time_past(&p, drawn.commit_end).await;
    // A reveal with another salt does not open the commitment.
    let mut bad = reveals[1].clone();
    bad.salt = B256::repeat_byte(9);
    let e = relayer
        .submit_verdict(posted.task_id, result, &cid, vec![reveals[0].clone(), bad])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("BadReveal"), "{e}");
    // One reveal is below the quorum of two.
    let e = relayer
        .submit_verdict(posted.task_id, result, &cid, reveals[..1].to_vec())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NoQuorum"), "{e}");
    relayer
        .submit_verdict(posted.task_id, result, &cid, reveals[..2].to_vec())
        .await
        .expect("verdict");
    // The minority reveal comes later, from anyone.
    let rc = outsider
        .add_reveals(posted.task_id, vec![reveals[2].clone()])
        .await
        .expect("add reveals");
    assert!(rc.status());
    let task = client.task(posted.task_id).await.unwrap();
    assert_eq!(task.status, 3, "Verdict");
    assert_eq!(task.majorityMask, U256::from(3));
    assert_eq!(task.minorityMask, U256::from(4));
    assert_eq!(task.committee, c);
    assert_eq!(task.drawBlock, posted.draw_block);
    assert_eq!(task.commitEnd, drawn.commit_end);
    assert_eq!(task.revealEnd, drawn.reveal_end);
    assert_eq!(task.fee, fee);
    assert_eq!(task.submitter, net.keys[SUBMITTER].address());

    let supply0 = client.total_supply().await.unwrap();
    let treasury0 = client.balance(net.d.timelock).await.unwrap();
    let mut bal0 = Vec::new();
    for m in &c {
        bal0.push(client.balance(*m).await.unwrap());
    }
    let minority_stake = client.neuron(c[2]).await.unwrap().stake;

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
        client.neuron(c[2]).await.unwrap().stake,
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
    assert_eq!(task.status, 6, "Finalized");
    assert_eq!(task.resultHash, result);
    assert_eq!(task.outputCidHash, keccak256(&cid));
}

#[tokio::test]
async fn an_equivocating_member_is_slashed_by_any_prover() {
    let Some(net) = start().await else { return };
    let who = neurons(&net, NEURONS).await;
    let (posted, drawn) = post_and_draw(&net, 1, tokens(10)).await;
    let prover = net.client(RELAYER).await;
    let m = drawn.members[0];
    let key = &who[&m].key;
    let cid = b"cid".to_vec();
    let (a, b) = (keccak256(b"a"), keccak256(b"b"));
    let signed = |k: &PrivateKeySigner, r: B256| Dissent {
        resultHash: r,
        outputCid: Bytes::from(cid.clone()),
        signature: prover.sign_result(k, posted.task_id, r, &cid).unwrap(),
    };
    assert_eq!(
        eip712::recover_result_signer(
            net.d.chain_id,
            net.d.market,
            posted.task_id,
            a,
            &cid,
            &signed(key, a).signature
        )
        .unwrap(),
        m
    );
    // The same result twice is no equivocation.
    let e = prover
        .prove_equivocation(posted.task_id, signed(key, a), signed(key, a))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotEquivocation"), "{e}");
    // Two members with different results are not one equivocator.
    let other = &who[&drawn.members[1]].key;
    let e = prover
        .prove_equivocation(posted.task_id, signed(key, a), signed(other, b))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotEquivocation"), "{e}");
    // A neuron that is not on the committee cannot be "proven".
    let outsider = who
        .iter()
        .find(|(x, _)| !drawn.members.contains(x))
        .map(|(_, n)| n.key.clone())
        .unwrap();
    let e = prover
        .prove_equivocation(posted.task_id, signed(&outsider, a), signed(&outsider, b))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotCommitteeMember"), "{e}");

    let stake0 = prover.neuron(m).await.unwrap().stake;
    let bal0 = prover.balance(net.keys[RELAYER].address()).await.unwrap();
    let params = prover.params().await.unwrap();
    let rc = prover
        .prove_equivocation(posted.task_id, signed(key, a), signed(key, b))
        .await
        .expect("equivocation");
    let ev = rc
        .decoded_log::<hal9_market::bindings::ComputationMarket::Equivocation>()
        .expect("Equivocation event");
    let slashed = economics::slash_amount(stake0, U256::ZERO, params.slashBps);
    assert_eq!(ev.data.slashed, slashed);
    assert_eq!(ev.data.member, m);
    assert_eq!(prover.neuron(m).await.unwrap().stake, stake0 - slashed);
    assert_eq!(
        prover.balance(net.keys[RELAYER].address()).await.unwrap(),
        bal0 + slashed / U256::from(2u64),
        "half the slash to the prover"
    );
    // Proving it again is refused: one slash per member and task.
    let e = prover
        .prove_equivocation(posted.task_id, signed(key, b), signed(key, a))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NotEquivocation"), "{e}");
    let t = prover.task(posted.task_id).await.unwrap();
    assert_eq!(t.equivocatedMask, U256::from(1));
}

#[tokio::test]
async fn an_abandoned_task_is_refunded_minus_the_abandon_share() {
    let Some(net) = start().await else { return };
    neurons(&net, NEURONS).await;
    let client = net.client(SUBMITTER).await;
    let p = net.provider(0);
    let fee = tokens(10);
    let s = spec(net.keys[SUBMITTER].address(), 7, now(&p).await + 3_600);
    let before = client.balance(net.keys[SUBMITTER].address()).await.unwrap();
    let posted = client.post_task(&s, fee).await.unwrap();
    let e = client.finalize(posted.task_id).await.unwrap_err();
    assert!(e.to_string().contains("NotFinalizable"), "{e}");
    // A draw after the tree epoch of the draw block ended must not use its
    // (known, stale) hash: it is moved to a later block.
    let epoch = client.registry().epochBlocks().call().await.unwrap();
    mine_to(&p, posted.draw_block + epoch).await;
    let out = client.draw(posted.task_id).await.expect("draw");
    let DrawOutcome::Retargeted { draw_block } = out else {
        panic!("expected a re-target, found {out:?}")
    };
    assert!(draw_block > posted.draw_block + epoch);
    assert_eq!(client.target_block(draw_block).await.unwrap(), draw_block);
    assert_eq!(
        client.task(posted.task_id).await.unwrap().drawBlock,
        draw_block
    );
    assert!(
        client
            .committee_of(posted.task_id)
            .await
            .unwrap()
            .is_empty()
    );
    // Nobody draws or commits; after the deadline the submitter gets the
    // fee back minus abandonBps, which goes to the treasury.
    let treasury0 = client.balance(net.d.timelock).await.unwrap();
    time_past(&p, s.deadline).await;
    client.finalize(posted.task_id).await.expect("refund");
    let params = client.params().await.unwrap();
    let kept = fee * U256::from(params.abandonBps) / U256::from(economics::BPS);
    assert_eq!(
        client.balance(net.keys[SUBMITTER].address()).await.unwrap(),
        before - kept
    );
    assert_eq!(
        client.balance(net.d.timelock).await.unwrap(),
        treasury0 + kept
    );
    assert_eq!(
        client.task(posted.task_id).await.unwrap().status,
        7,
        "Refunded"
    );
    let events = task_events(&net, posted.task_id).await;
    assert_eq!(
        events,
        [
            ChainEvent::TaskPosted(posted.clone()),
            ChainEvent::DrawRetargeted {
                task: posted.task_id,
                draw_block
            },
            ChainEvent::Refunded {
                task: posted.task_id,
                submitter: net.keys[SUBMITTER].address(),
                fee: fee - kept,
            },
        ]
    );
}

/// Every market event of `task` up to the head, as a fresh watcher reads them.
pub(crate) async fn task_events(net: &Net, task: B256) -> Vec<ChainEvent> {
    let p = ProviderBuilder::new().connect_http(net.url.clone());
    let mut w = Watcher::new(p, &net.d, None, net.d.deploy_block, 0, 1_000).unwrap();
    let mut out = Vec::new();
    loop {
        let b = w.poll().await.expect("poll");
        out.extend(
            b.events
                .into_iter()
                .map(|e| e.event)
                .filter(|e| e.task() == Some(task)),
        );
        if b.caught_up {
            return out;
        }
    }
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
    // A signature of the wrong length is refused before anything is sent.
    let e = client
        .register(b"\x00\x24peer", 1, tokens(1_000), &[0u8; 63])
        .await
        .unwrap_err();
    assert!(matches!(e, MarketError::InvalidParam { .. }), "{e}");
    // Below minStake the registry refuses, with the reason decoded.
    let e = client
        .register(b"\x00\x24peer", 1, tokens(99), &[0u8; 64])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("minimum"), "{e}");
    client
        .register(b"\x00\x24peer", 1, tokens(600), &[0u8; 64])
        .await
        .unwrap();
    client.stake(tokens(400)).await.unwrap();
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
    let Some(net) = start().await else { return };
    // Eleven neurons: a committee of 3 and an escalation committee of 7 fit
    // beside the challenger.
    let who = neurons(&net, NEURONS).await;
    let client = net.client(SUBMITTER).await;
    let p = net.provider(0);
    let fee = tokens(50);
    let (posted, drawn) = post_and_draw(&net, 9, fee).await;
    let c = drawn.members.clone();
    let wrong = keccak256(b"wrong");
    let cid = b"cid".to_vec();
    let reveals = commit_members(&net, &who, posted.task_id, &c, &[wrong; 3], &cid).await;
    time_past(&p, drawn.commit_end).await;
    client
        .submit_verdict(posted.task_id, wrong, &cid, reveals)
        .await
        .unwrap();

    let ch = who
        .values()
        .find(|n| !c.contains(&n.key.address()))
        .cloned()
        .unwrap();
    let challenger = net.client(ch.index).await;
    let ch_addr = ch.key.address();
    let ch_before = client.balance(ch_addr).await.unwrap();
    let params = client.params().await.unwrap();
    // Someone without stake cannot challenge.
    let e = net
        .client(RELAYER)
        .await
        .challenge(posted.task_id, fee)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("NotStaked") || e.to_string().contains("stake"),
        "{e}"
    );
    let rc = challenger
        .challenge(posted.task_id, fee)
        .await
        .expect("challenge");
    let ev = rc
        .decoded_log::<hal9_market::bindings::ComputationMarket::Challenged>()
        .expect("Challenged");
    assert_eq!(
        client.balance(ch_addr).await.unwrap(),
        ch_before - fee,
        "bond escrowed"
    );
    let esc = mine_and_draw(&client, &p, posted.task_id, ev.data.drawBlock, true).await;
    assert_eq!(esc.members.len(), 7);
    assert!(esc.members.iter().all(|e| !c.contains(e) && *e != ch_addr));
    assert_eq!(
        client.escalation_of(posted.task_id).await.unwrap(),
        esc.members
    );

    let truth = keccak256(b"truth");
    let q = economics::quorum(7) as usize;
    let esc_reveals = commit_members(
        &net,
        &who,
        posted.task_id,
        &esc.members[..q],
        &vec![truth; q],
        &cid,
    )
    .await;
    let stake_before = client.neuron(c[0]).await.unwrap().stake;
    let e = client
        .submit_escalation_verdict(posted.task_id, truth, &cid, esc_reveals.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("TooEarly"), "{e}");
    time_past(&p, esc.commit_end).await;
    // Below the quorum of 5 of 7.
    let e = client
        .submit_escalation_verdict(posted.task_id, truth, &cid, esc_reveals[..q - 1].to_vec())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("NoQuorum"), "{e}");
    client
        .submit_escalation_verdict(posted.task_id, truth, &cid, esc_reveals)
        .await
        .expect("escalation verdict");
    // Escalation reveals may still come until its revealEnd.
    let e = client.finalize(posted.task_id).await.unwrap_err();
    assert!(e.to_string().contains("NotFinalizable"), "{e}");
    time_past(&p, esc.reveal_end).await;
    client.finalize(posted.task_id).await.expect("finalize");

    // The watcher sees the whole story of the challenge.
    let kinds: Vec<&str> = task_events(&net, posted.task_id)
        .await
        .iter()
        .filter_map(|e| match e {
            ChainEvent::TaskPosted(_) => Some("posted"),
            ChainEvent::CommitteeDrawn { .. } => Some("drawn"),
            ChainEvent::VerdictSubmitted { .. } => Some("verdict"),
            ChainEvent::Challenged {
                challenger, bond, ..
            } => {
                assert_eq!((*challenger, *bond), (ch_addr, fee));
                Some("challenged")
            }
            ChainEvent::EscalationDrawn { escalation, .. } => {
                assert_eq!(escalation, &esc.members);
                Some("escalation drawn")
            }
            ChainEvent::EscalationVerdict {
                result,
                mask,
                upheld,
                ..
            } => {
                assert_eq!((*result, *mask, *upheld), (truth, U256::from(31), false));
                Some("escalation verdict")
            }
            ChainEvent::ChallengeSettled { challenger_won, .. } => {
                assert!(*challenger_won);
                Some("settled")
            }
            ChainEvent::Finalized { .. } => Some("finalized"),
            // Commitments, re-targets.
            _ => None,
        })
        .collect();
    for k in [
        "posted",
        "drawn",
        "verdict",
        "challenged",
        "escalation drawn",
        "escalation verdict",
        "settled",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    assert_eq!(kinds.first(), Some(&"posted"));

    let slash_each = economics::slash_amount(stake_before, U256::ZERO, params.slashBps);
    let reward = slash_each * U256::from(3u64) * U256::from(params.challengerRewardBps)
        / U256::from(economics::BPS);
    assert_eq!(
        client.neuron(c[0]).await.unwrap().stake,
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
