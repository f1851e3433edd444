//! The engine's gossip: topics, the validators that decode and verify
//! each message once before gossipsub forwards it, and the inbound queue.

use super::*;

/// Gossip topic of task announcements.
pub const TASKS_TOPIC: &str = "hal9/tasks/1";
/// Gossip topic of vote batches.
pub const VOTES_TOPIC: &str = "hal9/votes/1";
/// Gossip topic of verdict certificates, for nodes that missed votes.
pub const CERTS_TOPIC: &str = "hal9/certs/1";
/// Largest certificate message.
pub const MAX_CERT_MESSAGE: usize = 256 * 1024 + 16;

/// An inbound message for the engine (already size-checked and validated by p2p).
#[derive(Debug)]
pub enum Inbound {
    /// A task announcement.
    Task(TaskMessage),
    /// A verified vote batch.
    Votes(VerifiedBatch),
    /// A verdict certificate whose signatures were checked (the task state
    /// checks its committee).
    Certificate(Box<hal9_consensus::VerifiedCertificate>),
    /// An EIP-712 attestation of a member (chain mode), with the operator
    /// its signature recovers to.
    Attestation(crate::chain::Attestation, alloy::primitives::Address),
    /// A chain event (chain mode).
    Chain(crate::chain::ChainInput),
}

/// The gossip validators of the engine's topics. Each message is decoded
/// and verified once, here, before gossipsub delivers or forwards it; an
/// accepted message goes straight to the engine as its verified value, so
/// nothing is decoded or signature-checked a second time. A bad signature,
/// or a signer outside the genesis validator set, is a `Reject`: gossipsub
/// does not forward the message and lowers the sender's score.
#[derive(Clone)]
pub struct GossipValidators {
    members: Membership,
    inbound: mpsc::Sender<Inbound>,
    metrics: GossipMetrics,
}

/// Who may sign what the engine's topics carry (the task state then checks
/// the committee of each task).
#[derive(Clone)]
pub enum Membership {
    /// Standalone: the genesis validator set. An outsider is rejected.
    Genesis(Arc<ValidatorSet>),
    /// Chain mode: the neurons the registry lists. An outsider is ignored
    /// (not forwarded, not delivered, no penalty: it may have registered
    /// moments ago, before this node read the event). Until the registry
    /// has been read once, signers are let through.
    Registry {
        /// The registry's neurons.
        set: Arc<crate::chain::members::RegistrySet>,
        /// EIP-712 domain of attestations: chain id.
        chain_id: u64,
        /// EIP-712 domain of attestations: the market contract.
        market: alloy::primitives::Address,
    },
}

/// Counters of the engine's gossip validators, by topic and outcome.
#[derive(Clone, Default)]
pub(super) struct GossipMetrics {
    checked: prometheus_client::metrics::family::Family<
        Vec<(&'static str, &'static str)>,
        prometheus_client::metrics::counter::Counter,
    >,
}

impl GossipMetrics {
    fn count(&self, topic: &'static str, v: &Validation) -> Validation {
        let outcome = match v {
            Validation::Accept => "accepted",
            Validation::Reject(_) => "rejected",
            Validation::Ignore(_) => "ignored",
        };
        self.checked
            .get_or_create(&vec![("topic", topic), ("outcome", outcome)])
            .inc();
        v.clone()
    }
}

impl GossipValidators {
    /// Validators that hand accepted messages to `inbound`.
    pub fn new(members: Membership, inbound: mpsc::Sender<Inbound>) -> Self {
        Self {
            members,
            inbound,
            metrics: GossipMetrics::default(),
        }
    }

    /// Registers the `hal9_engine_gossip_checked` counter.
    pub fn register(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register(
            "hal9_engine_gossip_checked",
            "Gossip messages checked by the engine's validators, by topic and outcome",
            self.metrics.checked.clone(),
        );
    }

    /// Hands a verified message to the engine. A full queue means the
    /// engine is overloaded: the message is ignored (not forwarded, no
    /// penalty for the sender).
    fn deliver(&self, msg: Inbound) -> Validation {
        match self.inbound.try_send(msg) {
            Ok(()) => Validation::Accept,
            Err(mpsc::error::TrySendError::Full(_)) => {
                Validation::Ignore("the engine's inbound queue is full".into())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                Validation::Ignore("the engine has stopped".into())
            }
        }
    }

    /// `Err` with the verdict on a message signed by `peer` when it may not sign.
    fn admit(&self, peer: &PeerId, what: &str) -> Result<(), Validation> {
        use crate::chain::members::Standing;
        match &self.members {
            Membership::Genesis(set) if set.contains(peer) => Ok(()),
            Membership::Genesis(_) => Err(Validation::Reject(format!(
                "{what} signed by {peer}, which is not in the validator set"
            ))),
            Membership::Registry { set, .. } => match set.peer(peer) {
                Standing::Registered | Standing::NotLoaded => Ok(()),
                Standing::Unknown => Err(Validation::Ignore(format!(
                    "{what} signed by {peer}, which the registry does not list"
                ))),
            },
        }
    }

    fn check_task(&self, data: &[u8]) -> Validation {
        match TaskMessage::decode(data) {
            Ok(t) => self.deliver(Inbound::Task(t)),
            Err(SpecError::Unsupported(v)) => {
                Validation::Ignore(format!("task message version {v}"))
            }
            Err(e) => Validation::Reject(e.to_string()),
        }
    }

    fn check_votes(&self, data: &[u8]) -> Validation {
        match decode_votes(data) {
            Ok(b) => match self.admit(&b.signer(), "vote batch") {
                Ok(()) => self.deliver(Inbound::Votes(b)),
                Err(v) => v,
            },
            Err((true, e)) => Validation::Ignore(e),
            Err((false, e)) => Validation::Reject(e),
        }
    }

    fn check_certificate(&self, data: &[u8]) -> Validation {
        let cert = match decode_certificate(data) {
            Ok(c) => c,
            Err((true, e)) => return Validation::Ignore(e),
            Err((false, e)) => return Validation::Reject(e),
        };
        let verified = match cert.verify_signatures() {
            Ok(v) => v,
            Err(e) => return Validation::Reject(format!("certificate does not verify: {e}")),
        };
        for p in verified.signers() {
            if let Err(v) = self.admit(p, "certificate") {
                return v;
            }
        }
        self.deliver(Inbound::Certificate(Box::new(verified)))
    }

    fn check_attestation(&self, data: &[u8]) -> Validation {
        use crate::chain::members::Standing;
        let Membership::Registry {
            set,
            chain_id,
            market,
        } = &self.members
        else {
            return Validation::Ignore("attestations are a chain-mode message".into());
        };
        match crate::chain::Attestation::decode(data) {
            Ok(a) => {
                let signer = match a.signer(*chain_id, *market) {
                    Ok(s) => s,
                    Err(e) => {
                        return Validation::Reject(format!("attestation does not verify: {e}"));
                    }
                };
                if set.operator(&signer) == Standing::Unknown {
                    return Validation::Ignore(format!(
                        "attestation signed by {signer}, which the registry does not list"
                    ));
                }
                self.deliver(Inbound::Attestation(a, signer))
            }
            Err(crate::chain::attest::AttestError::Unsupported(v)) => {
                Validation::Ignore(format!("attestation version {v}"))
            }
            Err(e) => Validation::Reject(e.to_string()),
        }
    }
}

pub(super) struct TopicValidator {
    v: GossipValidators,
    check: fn(&GossipValidators, &[u8]) -> Validation,
    topic: &'static str,
}

impl hal9_p2p::Validator for TopicValidator {
    fn validate(&self, _: &PeerId, data: &[u8]) -> Validation {
        let v = (self.check)(&self.v, data);
        self.v.metrics.count(self.topic, &v)
    }
}

/// Subscribes the node to the tasks, votes and certificates topics with
/// their validators.
pub async fn subscribe_topics(
    net: &NetworkHandle,
    v: &GossipValidators,
) -> Result<(), hal9_p2p::Error> {
    let topic = |check, topic| TopicValidator {
        v: v.clone(),
        check,
        topic,
    };
    net.subscribe(
        TASKS_TOPIC,
        spec::MAX_TASK_MESSAGE,
        topic(GossipValidators::check_task, "tasks"),
    )
    .await?;
    net.subscribe(
        VOTES_TOPIC,
        hal9_consensus::wire::MAX_VOTE_BATCH_BYTES + 64,
        topic(GossipValidators::check_votes, "votes"),
    )
    .await?;
    net.subscribe(
        CERTS_TOPIC,
        MAX_CERT_MESSAGE,
        topic(GossipValidators::check_certificate, "certificates"),
    )
    .await
}

/// Subscribes the attestations topic (chain mode).
pub async fn subscribe_chain_topics(
    net: &NetworkHandle,
    v: &GossipValidators,
) -> Result<(), hal9_p2p::Error> {
    net.subscribe(
        crate::chain::ATTEST_TOPIC,
        crate::chain::attest::MAX_ATTEST_BYTES,
        TopicValidator {
            v: v.clone(),
            check: GossipValidators::check_attestation,
            topic: "attestations",
        },
    )
    .await
}

/// Decodes a certificate envelope (signatures are checked by the caller).
pub fn decode_certificate(data: &[u8]) -> Result<Certificate, (bool, String)> {
    let env =
        Envelope::decode(data, MAX_CERT_MESSAGE).map_err(|e| (e.is_ignorable(), e.to_string()))?;
    if env.kind != Kind::Certificate {
        return Err((false, "expected a certificate envelope".into()));
    }
    Certificate::decode(&env.payload).map_err(|e| (!e.is_penalised(), e.to_string()))
}

/// Gives a network event back unless it is on one of the engine's topics
/// (their validators have already handed those to the engine).
pub fn route(ev: hal9_p2p::NetworkEvent) -> Option<hal9_p2p::NetworkEvent> {
    match &ev {
        hal9_p2p::NetworkEvent::Message { topic, .. }
            if topic == TASKS_TOPIC
                || topic == VOTES_TOPIC
                || topic == CERTS_TOPIC
                || topic == crate::chain::ATTEST_TOPIC =>
        {
            None
        }
        _ => Some(ev),
    }
}

/// Decodes and verifies a votes envelope; the error says whether to ignore it.
pub fn decode_votes(data: &[u8]) -> Result<VerifiedBatch, (bool, String)> {
    let env = Envelope::decode(data, hal9_consensus::wire::MAX_VOTE_BATCH_BYTES)
        .map_err(|e| (e.is_ignorable(), e.to_string()))?;
    if env.kind != Kind::Votes {
        return Err((false, "expected a votes envelope".into()));
    }
    hal9_consensus::validate_vote_message(&env.payload).map_err(|e| {
        let ignore = matches!(e.action(), hal9_consensus::ValidationAction::Ignore);
        (ignore, e.to_string())
    })
}

#[cfg(test)]
mod membership_tests {
    use super::*;
    use crate::chain::{Attestation, members::RegistrySet};
    use alloy::{
        primitives::{Address, B256},
        signers::local::PrivateKeySigner,
    };

    fn peer() -> PeerId {
        Keypair::generate_ed25519().public().to_peer_id()
    }

    fn validators(registry: Membership) -> (GossipValidators, mpsc::Receiver<Inbound>) {
        let (tx, rx) = mpsc::channel(8);
        (GossipValidators::new(registry, tx), rx)
    }

    const CHAIN: u64 = 31337;

    fn registry(set: &Arc<RegistrySet>) -> Membership {
        Membership::Registry {
            set: set.clone(),
            chain_id: CHAIN,
            market: Address::repeat_byte(9),
        }
    }

    fn attestation(key: &PrivateKeySigner) -> Attestation {
        Attestation::signed_for_tests(
            key,
            CHAIN,
            Address::repeat_byte(9),
            B256::repeat_byte(2),
            vec![1u8, 85, 0],
        )
    }

    #[test]
    fn standalone_rejects_signers_outside_the_genesis_set() {
        let member = peer();
        let set = ValidatorSet::new(vec![hal9_consensus::Validator {
            peer: member,
            weight: 1,
            capabilities: Default::default(),
        }])
        .unwrap();
        let (v, _rx) = validators(Membership::Genesis(Arc::new(set)));
        assert!(v.admit(&member, "vote batch").is_ok());
        assert!(matches!(
            v.admit(&peer(), "vote batch"),
            Err(Validation::Reject(_))
        ));
        // No attestations outside chain mode.
        let key = PrivateKeySigner::random();
        assert!(matches!(
            v.check_attestation(&attestation(&key).encode()),
            Validation::Ignore(_)
        ));
    }

    #[test]
    fn chain_mode_ignores_signers_the_registry_does_not_list() {
        let set = Arc::new(RegistrySet::new());
        let (v, _rx) = validators(registry(&set));
        let (listed, outsider) = (peer(), peer());
        // Before the registry is read: let through (an outage at start never isolates a node).
        assert!(v.admit(&outsider, "vote batch").is_ok());
        set.replace([(Address::repeat_byte(1), Some(listed))]);
        assert!(v.admit(&listed, "certificate").is_ok());
        assert!(matches!(
            v.admit(&outsider, "certificate"),
            Err(Validation::Ignore(_))
        ));
    }

    #[test]
    fn attestations_are_verified_before_they_are_forwarded() {
        let set = Arc::new(RegistrySet::new());
        let (v, mut rx) = validators(registry(&set));
        let (operator, stranger) = (PrivateKeySigner::random(), PrivateKeySigner::random());
        set.replace([(operator.address(), None)]);
        // A listed operator's attestation goes to the engine with its signer.
        assert_eq!(
            v.check_attestation(&attestation(&operator).encode()),
            Validation::Accept
        );
        match rx.try_recv() {
            Ok(Inbound::Attestation(_, signer)) => assert_eq!(signer, operator.address()),
            other => panic!("expected the attestation, got {other:?}"),
        }
        // An unlisted signer: ignored, not delivered.
        assert!(matches!(
            v.check_attestation(&attestation(&stranger).encode()),
            Validation::Ignore(_)
        ));
        // A changed result recovers to some other address: not delivered.
        let mut forged = attestation(&operator);
        forged.result = B256::repeat_byte(7);
        assert!(matches!(
            v.check_attestation(&forged.encode()),
            Validation::Ignore(_) | Validation::Reject(_)
        ));
        // A member's reveal relayed with another salt (to crowd the real
        // opening out of the relayer's slots) is rejected, its sender penalised.
        let mut altered = attestation(&operator);
        altered.salt = B256::repeat_byte(0xee);
        assert!(matches!(
            v.check_attestation(&altered.encode()),
            Validation::Reject(_)
        ));
        // A signature that is not one at all is rejected (the sender is penalised).
        let mut garbage = attestation(&operator);
        garbage.signature = [0u8; 65];
        assert!(matches!(
            v.check_attestation(&garbage.encode()),
            Validation::Reject(_)
        ));
        assert!(rx.try_recv().is_err(), "nothing else reached the engine");
    }
}
