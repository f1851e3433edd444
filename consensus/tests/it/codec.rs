//! Codec round trips and fuzz-style tests: random bytes never panic a
//! decoder, and every error is classified as ignore or reject.

use hal9_consensus::certificate::{Certificate, CertifiedVote};
use hal9_consensus::testkit::keypair;
use hal9_consensus::wire::{
    MAX_BATCH_ITEMS, MAX_VOTE_BATCH_BYTES, TASK_ANNOUNCEMENT_VERSION, VOTE_BATCH_VERSION,
};
use hal9_consensus::*;
use proptest::prelude::*;

fn arb_round() -> impl Strategy<Value = Round> {
    prop_oneof![Just(Round::Primary), Just(Round::Escalation)]
}

fn arb_item() -> impl Strategy<Value = VoteItem> {
    let commit = (any::<[u8; 32]>(), arb_round(), any::<[u8; 32]>()).prop_map(|(t, round, c)| {
        VoteItem::Commit(CommitVote {
            task: TaskId(t),
            round,
            commitment: Commitment(c),
        })
    });
    let reveal = (
        any::<[u8; 32]>(),
        arb_round(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        proptest::collection::vec(any::<u8>(), 0..=128),
    )
        .prop_map(|(t, round, r, s, c)| {
            VoteItem::Reveal(RevealVote {
                task: TaskId(t),
                round,
                result: ResultHash(r),
                salt: Salt(s),
                cid: Cid::new(c).unwrap(),
            })
        });
    prop_oneof![commit, reveal]
}

proptest! {
    // ed25519 is slow in unoptimised builds: few cases where every case signs.
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn vote_batch_round_trips_and_verifies(
        key in 0u64..4,
        seq in any::<u64>(),
        items in proptest::collection::vec(arb_item(), 0..40),
    ) {
        let b = VoteBatch::sign(&keypair(key), seq, items).unwrap();
        let bytes = b.encode();
        let back = VoteBatch::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &b);
        prop_assert_eq!(back.encode(), bytes);
        let v = back.verify().unwrap();
        // Signature checks are slow in debug builds: prove three positions.
        let n = v.items().len();
        if n > 0 {
            for i in [0, n / 2, n - 1] {
                prop_assert!(v.signed_vote(i).unwrap().verify().is_ok());
            }
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = VoteBatch::decode(&bytes);
        let _ = validate_vote_message(&bytes);
        let _ = TaskAnnouncement::decode(&bytes);
        let _ = Certificate::decode(&bytes);
        let _ = VoteItem::decode(&bytes);
    }

    #[test]
    fn versioned_random_bodies_are_malformed_not_panics(body in proptest::collection::vec(any::<u8>(), 0..1024)) {
        // With the right version, garbage must be a penalised error (or,
        // astronomically rarely, a valid message), never a panic.
        let mut bytes = VOTE_BATCH_VERSION.to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        if let Err(e) = validate_vote_message(&bytes) {
            prop_assert_eq!(e.action(), ValidationAction::Reject);
        }
        let mut bytes = TASK_ANNOUNCEMENT_VERSION.to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        if let Err(e) = TaskAnnouncement::decode(&bytes) {
            prop_assert!(e.is_penalised());
        }
    }

}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn mutated_valid_batches_never_panic_and_never_verify_changed(
        items in proptest::collection::vec(arb_item(), 1..10),
        pos in any::<prop::sample::Index>(),
        xor in 1u8..,
    ) {
        let b = VoteBatch::sign(&keypair(1), 9, items).unwrap();
        let mut bytes = b.encode();
        let i = pos.index(bytes.len());
        bytes[i] ^= xor;
        match validate_vote_message(&bytes) {
            // A flipped bit that still decodes and verifies must decode to
            // the same batch (e.g. not possible) -- otherwise the signature
            // failed to protect it.
            Ok(v) => prop_assert_eq!(v.batch(), &b),
            Err(e) => {
                let version_byte = i < 2;
                if !version_byte {
                    prop_assert_eq!(e.action(), ValidationAction::Reject);
                }
            }
        }
    }

    #[test]
    fn task_announcement_round_trips(spec in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let a = TaskAnnouncement::new(spec).unwrap();
        prop_assert_eq!(TaskAnnouncement::decode(&a.encode()).unwrap(), a);
    }

    #[test]
    fn truncations_are_malformed(items in proptest::collection::vec(arb_item(), 1..8), cut in any::<prop::sample::Index>()) {
        let bytes = VoteBatch::sign(&keypair(2), 1, items).unwrap().encode();
        let n = cut.index(bytes.len());
        let e = VoteBatch::decode(&bytes[..n]).unwrap_err();
        prop_assert!(n < 2 || e.is_penalised(), "{e}");
    }
}

#[test]
fn item_count_above_limit_is_rejected_before_allocation() {
    let b = VoteBatch::sign(&keypair(1), 1, vec![]).unwrap();
    let mut bytes = b.encode();
    // count field sits after version(2) + peer len(1) + peer + seq(8)
    let peer_len = bytes[2] as usize;
    let at = 2 + 1 + peer_len + 8;
    bytes[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let e = VoteBatch::decode(&bytes).unwrap_err();
    assert!(e.is_penalised());
    assert!(
        e.to_string()
            .contains(&format!("at most {MAX_BATCH_ITEMS} items")),
        "{e}"
    );
    assert!(
        VoteBatch::decode(&vec![0u8; MAX_VOTE_BATCH_BYTES + 1])
            .unwrap_err()
            .is_penalised()
    );
}

#[test]
fn signer_that_is_not_an_ed25519_identity_is_rejected() {
    // A sha256-multihash PeerId (as RSA keys have) does not embed its key.
    let b = VoteBatch::sign(&keypair(1), 1, vec![]).unwrap();
    let digest = keccak256(&[b"x"]);
    let mut mh = vec![0x12, 0x20];
    mh.extend_from_slice(&digest);
    let hashed = libp2p_identity::PeerId::from_bytes(&mh).unwrap();
    let forged = VoteBatch {
        signer: hashed,
        ..b
    };
    let e = validate_vote_message(&forged.encode()).unwrap_err();
    assert_eq!(e.action(), ValidationAction::Reject);
    assert!(
        matches!(
            e,
            wire::VoteMessageError::Verify(VerifyError::NoPublicKey { .. })
        ),
        "{e}"
    );
}

/// A one-vote certificate of `keypair(3)` for `task`, correctly signed.
fn signed_certificate(task: TaskId) -> Certificate {
    let kp = keypair(3);
    let me = kp.public().to_peer_id();
    let (result, salt, cid) = (
        ResultHash([1; 32]),
        Salt([2; 32]),
        Cid::new(vec![9; 36]).unwrap(),
    );
    let b = VoteBatch::sign(
        &kp,
        1,
        vec![
            VoteItem::Commit(CommitVote {
                task,
                round: Round::Primary,
                commitment: Commitment::compute(&result, &salt, &me),
            }),
            VoteItem::Reveal(RevealVote {
                task,
                round: Round::Primary,
                result,
                salt,
                cid: cid.clone(),
            }),
        ],
    )
    .unwrap()
    .verify()
    .unwrap();
    Certificate {
        task,
        round: Round::Primary,
        result,
        cid,
        votes: vec![CertifiedVote {
            commit: b.signed_vote(0).unwrap(),
            reveal: b.signed_vote(1).unwrap(),
        }],
    }
}

#[test]
fn certificate_round_trips() {
    let c = signed_certificate(TaskId([5; 32]));
    let back = Certificate::decode(&c.encode()).unwrap();
    assert_eq!(back, c);
    let mut bad = c.encode();
    bad.push(1);
    assert!(Certificate::decode(&bad).unwrap_err().is_penalised());
    let huge = vec![0u8; hal9_consensus::certificate::MAX_CERTIFICATE_BYTES + 1];
    assert!(Certificate::decode(&huge).unwrap_err().is_penalised());
}

#[test]
fn signature_checks_are_split_from_committee_checks() {
    let me = keypair(3).public().to_peer_id();
    let good = signed_certificate(TaskId([6; 32]));
    let v = good.clone().verify_signatures().expect("well signed");
    assert_eq!(v.signers().collect::<Vec<_>>(), vec![&me]);
    // Signed fine, but one signer is no quorum of a fixed committee of 3.
    let committee = vec![
        me,
        keypair(4).public().to_peer_id(),
        keypair(5).public().to_peer_id(),
    ];
    let set = ValidatorSet::new(
        (3..9)
            .map(|n| Validator {
                peer: hal9_consensus::testkit::peer(n),
                weight: 1,
                capabilities: Default::default(),
            })
            .collect(),
    )
    .unwrap();
    let params = TaskParams::fixed(committee);
    assert!(matches!(
        v.verify_committee(&set, &params),
        Err(CertificateError::NoQuorum { .. })
    ));
    assert!(matches!(
        good.verify(&set, &params),
        Err(CertificateError::NoQuorum { .. })
    ));
    // A signature that does not verify is caught without any committee.
    let mut forged = good.clone();
    forged.votes[0].reveal.signature[0] ^= 1;
    assert!(matches!(
        forged.verify_signatures(),
        Err(CertificateError::Unsigned { .. })
    ));
    // Claiming another member's votes with one's own signature fails too.
    let other = keypair(4).public().to_peer_id();
    let mut claimed = good;
    claimed.votes[0].commit.signer = other;
    claimed.votes[0].reveal.signer = other;
    assert!(claimed.verify_signatures().is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn persisted_vote_round_trips(
        task in any::<[u8; 32]>(),
        r in 3usize..200,
        cap in proptest::option::of("[a-z]{0,64}"),
        round in arb_round(),
        result in any::<[u8; 32]>(),
        salt in any::<[u8; 32]>(),
        cid in proptest::collection::vec(any::<u8>(), 0..=128),
        at in any::<u64>(),
    ) {
        let v = PersistedVote {
            task: TaskId(task),
            params: TaskParams {
                r,
                capability: cap,
                committee: None,
            },
            round,
            result: ResultHash(result),
            salt: Salt(salt),
            cid: Cid::new(cid).unwrap(),
            round_started_at: at,
        };
        prop_assert_eq!(PersistedVote::decode(&v.encode()).unwrap(), v);
    }

    #[test]
    fn persisted_vote_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = PersistedVote::decode(&bytes);
    }
}
