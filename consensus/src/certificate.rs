//! Verdict certificates: the q signed reveals (each with its signed
//! commit) that prove a verdict to a node that trusts nobody.

use std::collections::BTreeSet;

use crate::committee::ValidatorSet;
use crate::error::{CertificateError, CommitteeError, DecodeError};
use crate::types::{Cid, Commitment, ResultHash, Round, TaskId, quorum};
use crate::wire::{Reader, SignedVote, VoteItem};
use libp2p_identity::PeerId;

/// Version of the certificate encoding.
pub const CERTIFICATE_VERSION: u16 = 1;
/// Most votes a certificate may carry (an escalation committee of a task
/// with the largest replication factor).
pub const MAX_CERTIFICATE_VOTES: usize = 256;

/// Largest encoded certificate accepted, in bytes.
pub const MAX_CERTIFICATE_BYTES: usize = 256 * 1024;

const KIND: &str = "certificate";

/// One member's signed commit and the signed reveal that opens it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedVote {
    /// The commit.
    pub commit: SignedVote,
    /// The reveal.
    pub reveal: SignedVote,
}

/// Proof of a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// Task.
    pub task: TaskId,
    /// Round that reached quorum.
    pub round: Round,
    /// Result hash of the verdict.
    pub result: ResultHash,
    /// CID of the output.
    pub cid: Cid,
    /// At least q matching votes from distinct members.
    pub votes: Vec<CertifiedVote>,
}

/// A certificate whose votes and signatures were checked by
/// [`Certificate::verify_signatures`]; only its committee is left to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedCertificate {
    certificate: Certificate,
    signers: BTreeSet<PeerId>,
}

impl VerifiedCertificate {
    /// The certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The distinct signers.
    pub fn signers(&self) -> impl Iterator<Item = &PeerId> {
        self.signers.iter()
    }

    /// Back to the plain certificate.
    pub fn into_inner(self) -> Certificate {
        self.certificate
    }

    /// Checks the signers against the committee and the quorum (the
    /// signatures were checked already).
    pub fn verify_committee(
        &self,
        validators: &ValidatorSet,
        params: &TaskParams,
    ) -> Result<(), CertificateError> {
        self.certificate
            .check_committee(&self.signers, validators, params)
    }
}

/// Task parameters a verifier needs to re-derive the committee.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TaskParams {
    /// Replication factor r of the primary committee.
    pub r: usize,
    /// Capability a member must offer, if any.
    pub capability: Option<String>,
    /// A committee drawn elsewhere (on chain, from the `postTask` event),
    /// in draw order. When set it replaces the local draw, it must hold `r`
    /// distinct members, and there is no local escalation round: the chain
    /// decides what happens to a task without quorum.
    pub committee: Option<Vec<PeerId>>,
}

impl TaskParams {
    /// Parameters of a task whose committee is drawn locally from the validator set.
    pub fn drawn(r: usize, capability: Option<String>) -> Self {
        Self {
            r,
            capability,
            committee: None,
        }
    }

    /// Parameters of a task whose committee was drawn elsewhere.
    pub fn fixed(committee: Vec<PeerId>) -> Self {
        Self {
            r: committee.len(),
            capability: None,
            committee: Some(committee),
        }
    }
}

impl Certificate {
    /// Check the certificate against the committee derived from the task id
    /// and `validators` (the set in force when the task was posted).
    pub fn verify(
        &self,
        validators: &ValidatorSet,
        params: &TaskParams,
    ) -> Result<(), CertificateError> {
        let signers = self.check_votes()?;
        self.check_committee(&signers, validators, params)
    }

    /// Checks what needs no committee: every vote is a commit and a reveal
    /// of this task, round and result by one signer, the reveal opens the
    /// commit, signers are distinct, and every signature verifies. A gossip
    /// validator runs this once; the task state then only checks the
    /// committee ([`VerifiedCertificate::verify_committee`]).
    pub fn verify_signatures(self) -> Result<VerifiedCertificate, CertificateError> {
        let signers = self.check_votes()?;
        Ok(VerifiedCertificate {
            certificate: self,
            signers,
        })
    }

    fn check_votes(&self) -> Result<BTreeSet<PeerId>, CertificateError> {
        if self.votes.len() > MAX_CERTIFICATE_VOTES {
            return Err(CertificateError::WrongVote {
                peer: self.votes[0].commit.signer,
                detail: format!(
                    "expected at most {MAX_CERTIFICATE_VOTES} votes, found {}",
                    self.votes.len()
                ),
            });
        }
        let mut signers = BTreeSet::new();
        for v in &self.votes {
            let peer = v.reveal.signer;
            if v.commit.signer != peer {
                return Err(CertificateError::WrongVote {
                    peer,
                    detail: format!(
                        "expected the commit signed by {peer}, found {}",
                        v.commit.signer
                    ),
                });
            }
            if !signers.insert(peer) {
                return Err(CertificateError::DuplicateSigner { peer });
            }
            let (VoteItem::Commit(c), VoteItem::Reveal(r)) = (&v.commit.item, &v.reveal.item)
            else {
                return Err(CertificateError::WrongVote {
                    peer,
                    detail: "expected a commit and a reveal".into(),
                });
            };
            if c.task != self.task
                || r.task != self.task
                || c.round != self.round
                || r.round != self.round
            {
                return Err(CertificateError::WrongVote {
                    peer,
                    detail: format!(
                        "expected task {} round {}, found commit for {} {} and reveal for {} {}",
                        self.task, self.round, c.task, c.round, r.task, r.round
                    ),
                });
            }
            if r.result != self.result || r.cid != self.cid {
                return Err(CertificateError::WrongVote {
                    peer,
                    detail: format!("expected result {}, found {}", self.result, r.result),
                });
            }
            if Commitment::compute(&r.result, &r.salt, &peer) != c.commitment {
                return Err(CertificateError::CommitMismatch { peer });
            }
            v.commit
                .verify()
                .map_err(|source| CertificateError::Unsigned {
                    peer,
                    source: Box::new(source),
                })?;
            v.reveal
                .verify()
                .map_err(|source| CertificateError::Unsigned {
                    peer,
                    source: Box::new(source),
                })?;
        }
        Ok(signers)
    }

    fn check_committee(
        &self,
        signers: &BTreeSet<PeerId>,
        validators: &ValidatorSet,
        params: &TaskParams,
    ) -> Result<(), CertificateError> {
        let committee_err = |source| CertificateError::Committee {
            task: self.task,
            round: self.round,
            source,
        };
        let cap = params.capability.as_deref();
        let committee = match (&params.committee, self.round) {
            (Some(fixed), Round::Primary) => fixed.clone(),
            (Some(_), Round::Escalation) => {
                return Err(committee_err(CommitteeError::NoEscalation));
            }
            (None, round) => {
                let primary = validators
                    .committee(&self.task, params.r, cap)
                    .map_err(committee_err)?;
                match round {
                    Round::Primary => primary,
                    Round::Escalation => validators
                        .escalation_committee(&self.task, &primary, params.r, cap)
                        .map_err(committee_err)?,
                }
            }
        };
        if let Some(peer) = signers.iter().find(|p| !committee.contains(p)) {
            return Err(CertificateError::NotMember {
                task: self.task,
                round: self.round,
                peer: *peer,
            });
        }
        let q = quorum(committee.len());
        if signers.len() < q {
            return Err(CertificateError::NoQuorum {
                quorum: q,
                found: signers.len(),
            });
        }
        Ok(())
    }

    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::new();
        w.extend_from_slice(&CERTIFICATE_VERSION.to_be_bytes());
        w.extend_from_slice(&self.task.0);
        w.push(self.round.as_u8());
        w.extend_from_slice(&self.result.0);
        w.push(self.cid.as_bytes().len() as u8);
        w.extend_from_slice(self.cid.as_bytes());
        w.extend_from_slice(&(self.votes.len() as u16).to_be_bytes());
        for v in &self.votes {
            v.commit.encode_into(&mut w);
            v.reveal.encode_into(&mut w);
        }
        w
    }

    /// Decode untrusted bytes (then call [`Certificate::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_CERTIFICATE_BYTES {
            return Err(DecodeError::Malformed {
                kind: KIND,
                detail: format!(
                    "expected at most {MAX_CERTIFICATE_BYTES} bytes, found {}",
                    bytes.len()
                ),
            });
        }
        let mut r = Reader::new(bytes, KIND);
        let version = r.u16("version")?;
        if version != CERTIFICATE_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                kind: KIND,
                supported: CERTIFICATE_VERSION,
                found: version,
            });
        }
        let task = TaskId(r.array("task id")?);
        let rn = r.u8("round")?;
        let round = Round::from_u8(rn)
            .ok_or_else(|| r.malformed(format!("expected round 0 or 1, found {rn}")))?;
        let result = ResultHash(r.array("result")?);
        let clen = r.u8("cid length")? as usize;
        let cid = Cid::new(r.bytes(clen, "cid")?.to_vec())
            .ok_or_else(|| r.malformed(format!("expected a short cid, found {clen} bytes")))?;
        let n = r.u16("vote count")? as usize;
        if n > MAX_CERTIFICATE_VOTES {
            return Err(r.malformed(format!(
                "expected at most {MAX_CERTIFICATE_VOTES} votes, found {n}"
            )));
        }
        let mut votes = Vec::with_capacity(n);
        for _ in 0..n {
            let commit = SignedVote::decode_from(&mut r)?;
            let reveal = SignedVote::decode_from(&mut r)?;
            votes.push(CertifiedVote { commit, reveal });
        }
        r.finish()?;
        Ok(Self {
            task,
            round,
            result,
            cid,
            votes,
        })
    }
}
