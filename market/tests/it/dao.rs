//! The DAO and staking paths on a real anvil: a proposal that changes the
//! fee rates and spends from the treasury goes through propose, vote, queue
//! and execute; stake, lock, unbond and withdraw, with every refusal in words.

use alloy::network::EthereumWallet;
use alloy::node_bindings::{Anvil, AnvilInstance};
use alloy::primitives::{Address, U256};
use alloy::providers::{Provider, ProviderBuilder, ext::AnvilApi};
use alloy::signers::local::PrivateKeySigner;

use hal9_market::governance::{Support, describe_action};
use hal9_market::units::parse_tokens;
use hal9_market::{DeployConfig, Deployment, MarketClient, deploy_all};

use crate::anvil_or_skip;

struct Dev {
    _anvil: AnvilInstance,
    url: alloy::transports::http::reqwest::Url,
    keys: Vec<PrivateKeySigner>,
    d: Deployment,
}

impl Dev {
    fn provider(&self, i: usize) -> impl Provider + Clone + use<> {
        ProviderBuilder::new()
            .wallet(EthereumWallet::from(self.keys[i].clone()))
            .connect_http(self.url.clone())
    }

    async fn client(&self, i: usize) -> MarketClient<impl Provider + Clone + use<>> {
        MarketClient::connect(self.provider(i), self.d)
            .await
            .expect("connect")
    }

    async fn advance(&self, seconds: u64, blocks: u64) {
        let p = self.provider(0);
        if seconds > 0 {
            p.anvil_increase_time(seconds).await.expect("increase time");
        }
        p.anvil_mine(Some(blocks.max(1)), None).await.expect("mine");
    }
}

/// A devnet whose genesis is accounts 0..3 (100M HAL9 each) and whose DAO
/// (on the token's timestamp clock) votes a minute after a proposal, for ten
/// minutes, and executes a minute after queueing.
async fn devnet(test: &str) -> Option<Dev> {
    let path = anvil_or_skip(test)?;
    let anvil = Anvil::at(path)
        .args(["--accounts", "5"])
        .try_spawn()
        .expect("anvil starts");
    let keys: Vec<PrivateKeySigner> = anvil
        .keys()
        .iter()
        .cloned()
        .map(PrivateKeySigner::from)
        .collect();
    let url = anvil.endpoint_url();
    let genesis: Vec<Address> = keys[..3].iter().map(|k| k.address()).collect();
    let mut cfg = DeployConfig::devnet(&genesis);
    cfg.voting_delay = 60;
    cfg.voting_period = 600;
    cfg.timelock_delay = 60;
    let p0 = ProviderBuilder::new()
        .wallet(EthereumWallet::from(keys[0].clone()))
        .connect_http(url.clone());
    let d = deploy_all(&p0, keys[0].address(), &cfg)
        .await
        .expect("deploy");
    Some(Dev {
        _anvil: anvil,
        url,
        keys,
        d,
    })
}

fn tokens(s: &str) -> U256 {
    parse_tokens(s).expect("amount")
}

#[tokio::test]
async fn dao_proposal_changes_fee_rates_and_spends_treasury() {
    let Some(dev) = devnet("dao_proposal_changes_fee_rates_and_spends_treasury").await else {
        return;
    };
    let a = dev.client(0).await;
    let b = dev.client(1).await;
    let outsider = dev.client(4).await;
    let before = a.params().await.unwrap();
    assert_eq!((before.burnBps, before.treasuryBps), (100, 200));

    // Without delegation nobody has voting power: proposing is refused in words.
    let changes = vec![
        ("burn_bps".to_string(), "50".to_string()),
        ("treasuryBps".to_string(), "300".to_string()),
    ];
    let mut actions = a.param_change_actions(&changes).await.unwrap();
    assert_eq!(actions.len(), 1, "one setParams on the market");
    let payee = dev.keys[4].address();
    actions.push(a.spend_action(payee, tokens("1234.5")));
    assert!(describe_action(&dev.d, &actions[0]).contains("burnBps=50"));
    assert!(describe_action(&dev.d, &actions[1]).contains("1234.5 HAL9"));
    let e = outsider
        .propose(&actions, "lower the burn")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("proposal threshold"), "{e}");

    a.delegate(dev.keys[0].address()).await.unwrap();
    b.delegate(dev.keys[1].address()).await.unwrap();
    // Votes count from the clock after the delegation: a second later.
    dev.advance(1, 1).await;
    assert_eq!(
        a.voting_power(dev.keys[0].address()).await.unwrap(),
        tokens("100000000")
    );
    assert_eq!(
        a.delegate_of(dev.keys[0].address()).await.unwrap(),
        dev.keys[0].address()
    );

    let desc = "Lower the burn to 0.5%, raise the treasury share to 3%, fund an auditor";
    let id = a.propose(&actions, desc).await.unwrap();
    let listed = a.proposals().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].description, desc);
    assert_eq!(listed[0].actions, actions);
    assert_eq!(a.proposal_status(id).await.unwrap().state_name(), "Pending");

    // Voting before the delay is over is refused with the reason.
    let e = a.cast_vote(id, Support::For, None).await.unwrap_err();
    assert!(e.to_string().contains("voting has not started"), "{e}");
    // The clock is time, not blocks: mining alone does not open the vote.
    dev.advance(0, 100).await;
    assert_eq!(a.proposal_status(id).await.unwrap().state_name(), "Pending");
    dev.advance(61, 1).await;
    assert_eq!(a.proposal_status(id).await.unwrap().state_name(), "Active");
    a.cast_vote(id, Support::For, None).await.unwrap();
    b.cast_vote(id, Support::Against, Some("keep the burn"))
        .await
        .unwrap();
    let e = a.cast_vote(id, Support::For, None).await.unwrap_err();
    assert!(e.to_string().contains("already voted"), "{e}");
    // An account that delegated nothing votes with zero weight (allowed, counts nothing).
    dev.client(2)
        .await
        .cast_vote(id, Support::Abstain, None)
        .await
        .unwrap();
    let st = a.proposal_status(id).await.unwrap();
    assert_eq!(st.for_votes, tokens("100000000"));
    assert_eq!(st.against_votes, tokens("100000000"));
    assert_eq!(st.abstain_votes, U256::ZERO);
    assert_eq!(st.quorum, tokens("40000000"), "4% of the supply");

    // 100M for, 100M against: a tie is defeated (OpenZeppelin's simple
    // counting needs more for than against).
    let e = a.queue(id).await.unwrap_err();
    assert!(e.to_string().contains("voting is still open"), "{e}");
    dev.advance(601, 1).await;
    assert_eq!(
        a.proposal_status(id).await.unwrap().state_name(),
        "Defeated"
    );

    // Second round: the third holder delegates first (before the snapshot) and votes for.
    let c = dev.client(2).await;
    c.delegate(dev.keys[2].address()).await.unwrap();
    let desc2 = format!("{desc} (second round)");
    let id2 = a.propose(&actions, &desc2).await.unwrap();
    dev.advance(61, 1).await;
    a.cast_vote(id2, Support::For, None).await.unwrap();
    b.cast_vote(id2, Support::Against, None).await.unwrap();
    c.cast_vote(id2, Support::For, Some("fine")).await.unwrap();
    let e = a.execute(id2).await.unwrap_err();
    assert!(e.to_string().contains("Active"), "{e}");
    dev.advance(601, 1).await;
    assert_eq!(
        a.proposal_status(id2).await.unwrap().state_name(),
        "Succeeded"
    );
    let e = a.execute(id2).await.unwrap_err();
    assert!(e.to_string().contains("queue it first"), "{e}");
    a.queue(id2).await.unwrap();
    let st = a.proposal_status(id2).await.unwrap();
    assert_eq!(st.state_name(), "Queued");
    assert!(st.eta > 0);
    let e = a.execute(id2).await.unwrap_err();
    assert!(
        e.to_string().contains("timelock delay has not passed"),
        "{e}"
    );

    dev.advance(61, 1).await;
    let treasury = a.balance(dev.d.timelock).await.unwrap();
    let payee_before = a.balance(payee).await.unwrap();
    outsider.execute(id2).await.expect("anyone may execute");
    assert_eq!(
        a.proposal_status(id2).await.unwrap().state_name(),
        "Executed"
    );

    let after = a.params().await.unwrap();
    assert_eq!((after.burnBps, after.treasuryBps), (50, 300));
    let mut expected = before.clone();
    expected.burnBps = 50;
    expected.treasuryBps = 300;
    assert_eq!(
        format!("{after:?}"),
        format!("{expected:?}"),
        "every other parameter unchanged"
    );
    assert_eq!(
        a.balance(payee).await.unwrap(),
        payee_before + tokens("1234.5")
    );
    assert_eq!(
        a.balance(dev.d.timelock).await.unwrap(),
        treasury - tokens("1234.5")
    );

    // Parameters stay owned by the timelock: a direct call is refused in words.
    let e = a
        .market()
        .setParams(after)
        .estimate_gas()
        .await
        .unwrap_err();
    let msg = hal9_market::client::describe_error(&e);
    assert!(msg.contains("only the DAO timelock may"), "{msg}");
    let e = a
        .param_change_actions(&[("bogus".into(), "1".into())])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("burnBps"), "{e}");
}

#[tokio::test]
async fn stake_lock_unbond_withdraw_with_refusals_in_words() {
    let Some(dev) = devnet("stake_lock_unbond_withdraw_with_refusals_in_words").await else {
        return;
    };
    let op = dev.client(1).await;
    let me = dev.keys[1].address();

    let e = op.stake(tokens("10")).await.unwrap_err();
    assert!(
        e.to_string().contains("is not registered as a neuron"),
        "{e}"
    );
    let e = op
        .register(&[0x00, 0x24, 1, 2, 3], 1, tokens("99.9"), &[7; 64])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("minimum of 100 HAL9"), "{e}");
    op.register(&[0x00, 0x24, 1, 2, 3], 1, tokens("1000"), &[7; 64])
        .await
        .unwrap();
    let e = op
        .register(&[0x00, 0x24, 1, 2, 3], 1, tokens("100"), &[7; 64])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already registered"), "{e}");
    // The chain keeps no PeerId ownership (nodes check the binding
    // signature): another operator may claim the same PeerId, and cannot
    // block the owner with it.
    dev.client(2)
        .await
        .register(&[0x00, 0x24, 1, 2, 3], 1, tokens("100"), &[8; 64])
        .await
        .expect("a squatter registers, its binding does not verify off chain");

    op.stake(tokens("0.5")).await.unwrap();
    let n = op.neuron(me).await.unwrap();
    assert_eq!(n.stake, tokens("1000.5"), "a deposit adds to the position");
    assert_eq!(op.multiplier_bps(me).await.unwrap(), U256::from(10_000));

    // Lock for half the maximum: 2x.
    let (max_lock, unbonding, _) = op.staking_params().await.unwrap();
    op.lock(max_lock / 2).await.unwrap();
    assert_eq!(op.multiplier_bps(me).await.unwrap(), U256::from(20_000));
    assert_eq!(op.effective_stake(me).await.unwrap(), tokens("2001"));
    let e = op.lock(60).await.unwrap_err();
    assert!(e.to_string().contains("only be extended"), "{e}");
    let e = op.lock(max_lock + 1).await.unwrap_err();
    assert!(e.to_string().contains("at most 365 days"), "{e}");

    let e = op.unbond(tokens("1")).await.unwrap_err();
    assert!(e.to_string().contains("lock has not ended"), "{e}");
    let e = op.withdraw(tokens("1")).await.unwrap_err();
    assert!(e.to_string().contains("nothing is unbonding"), "{e}");

    dev.advance(max_lock / 2 + 1, 1).await;
    let e = op.unbond(tokens("5000")).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("insufficient stake: 1000.5 HAL9 staked, 5000 HAL9 requested"),
        "{e}"
    );
    op.unbond(tokens("400")).await.unwrap();
    let n = op.neuron(me).await.unwrap();
    assert_eq!((n.stake, n.unbonding), (tokens("600.5"), tokens("400")));
    let e = op.withdraw(tokens("400")).await.unwrap_err();
    assert!(
        e.to_string().contains("unbonding delay has not passed"),
        "{e}"
    );

    dev.advance(unbonding, 1).await;
    let bal = op.balance(me).await.unwrap();
    // More than unbonds is refused; withdrawals may be partial.
    let e = op.withdraw(tokens("401")).await.unwrap_err();
    assert!(e.to_string().contains("insufficient stake"), "{e}");
    op.withdraw(tokens("150")).await.unwrap();
    assert_eq!(op.balance(me).await.unwrap(), bal + tokens("150"));
    assert_eq!(op.neuron(me).await.unwrap().unbonding, tokens("250"));
    op.withdraw(tokens("250")).await.unwrap();
    assert_eq!(op.balance(me).await.unwrap(), bal + tokens("400"));
    assert_eq!(op.neuron(me).await.unwrap().unbonding, U256::ZERO);

    let e = op.transfer(me, tokens("1000000000")).await.unwrap_err();
    assert!(e.to_string().contains("insufficient HAL9 balance"), "{e}");
    let e = dev.client(4).await.claim_rewards().await.unwrap_err();
    assert!(e.to_string().contains("nothing to claim"), "{e}");
    // Staked through an epoch: rewards accrue and can be claimed.
    dev.advance(86_400 + 1, 1).await;
    assert!(op.pending_rewards(me).await.unwrap() > U256::ZERO);
    let paid = op.claim_rewards().await.unwrap();
    assert!(paid > U256::ZERO);
}
