//! Wire types of the vote and task topics and their binary codec.
//!
//! One deterministic encoding, big-endian, length-prefixed, no optional
//! fields, no trailing bytes (ADR 0023). Every message starts with a `u16`
//! version. Size limits are checked before anything else is parsed.
//!
//! ```text
//! VoteBatch   = version:u16 signer_len:u8 signer seq:u64 count:u32 item*count sig_len:u8 sig
//! VoteItem    = 0x00 task:32 round:u8 commitment:32
//!             | 0x01 task:32 round:u8 result:32 salt:32 cid_len:u8 cid
//! TaskAnnouncement = version:u16 task:32 spec_len:u32 spec       (task == keccak256(spec))
//! ```
//!
//! A batch is signed once: the signature covers a Merkle root over its
//! items, so a single vote can later be proven (certificate) with its
//! Merkle path without carrying the whole batch.

use libp2p_identity::{Keypair, PeerId, PublicKey};

use crate::error::{DecodeError, VerifyError};
use crate::types::{Cid, Commitment, MAX_CID_BYTES, ResultHash, Round, Salt, TaskId, keccak256};

/// Version of the vote batch format this node speaks.
pub const VOTE_BATCH_VERSION: u16 = 1;
/// Version of the task announcement format this node speaks.
pub const TASK_ANNOUNCEMENT_VERSION: u16 = 1;
/// Largest encoded vote batch accepted, in bytes.
pub const MAX_VOTE_BATCH_BYTES: usize = 256 * 1024;
/// Most items in one vote batch.
pub const MAX_BATCH_ITEMS: usize = 1024;
/// Largest ABI-encoded task spec accepted, in bytes.
pub const MAX_SPEC_BYTES: usize = 64 * 1024;
/// Largest encoded task announcement accepted, in bytes.
pub const MAX_TASK_ANNOUNCEMENT_BYTES: usize = MAX_SPEC_BYTES + 2 + 32 + 4;
/// Longest PeerId accepted, in bytes (an identity multihash of an ed25519
/// key is 38 bytes).
pub const MAX_PEER_ID_BYTES: usize = 64;
/// Longest signature accepted, in bytes (ed25519 is 64).
pub const MAX_SIGNATURE_BYTES: usize = 128;
/// Domain separator of vote signatures.
pub const VOTE_DOMAIN: &[u8] = b"hal9/vote/1";

const KIND_BATCH: &str = "vote batch";
const KIND_TASK: &str = "task announcement";

/// A commit: the member binds itself to a result without showing it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommitVote {
    /// Task.
    pub task: TaskId,
    /// Round.
    pub round: Round,
    /// H(R || salt || member).
    pub commitment: Commitment,
}

/// A reveal: opens the member's commitment.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RevealVote {
    /// Task.
    pub task: TaskId,
    /// Round.
    pub round: Round,
    /// R = keccak256(output).
    pub result: ResultHash,
    /// Salt of the commitment.
    pub salt: Salt,
    /// CID of the output.
    pub cid: Cid,
}

/// One vote in a batch. The member is the batch's signer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VoteItem {
    /// A commit.
    Commit(CommitVote),
    /// A reveal.
    Reveal(RevealVote),
}

impl VoteItem {
    /// The task this vote is about.
    pub fn task(&self) -> TaskId {
        match self {
            VoteItem::Commit(c) => c.task,
            VoteItem::Reveal(r) => r.task,
        }
    }
    /// The round this vote is about.
    pub fn round(&self) -> Round {
        match self {
            VoteItem::Commit(c) => c.round,
            VoteItem::Reveal(r) => r.round,
        }
    }

    fn encode_into(&self, w: &mut Vec<u8>) {
        match self {
            VoteItem::Commit(c) => {
                w.push(0);
                w.extend_from_slice(&c.task.0);
                w.push(c.round.as_u8());
                w.extend_from_slice(&c.commitment.0);
            }
            VoteItem::Reveal(r) => {
                w.push(1);
                w.extend_from_slice(&r.task.0);
                w.push(r.round.as_u8());
                w.extend_from_slice(&r.result.0);
                w.extend_from_slice(&r.salt.0);
                // Cid::new bounds the length to MAX_CID_BYTES < 256.
                w.push(r.cid.as_bytes().len() as u8);
                w.extend_from_slice(r.cid.as_bytes());
            }
        }
    }

    /// The item's canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(140);
        self.encode_into(&mut w);
        w
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8("item tag")?;
        let task = TaskId(r.array("task id")?);
        let round_n = r.u8("round")?;
        let round = Round::from_u8(round_n)
            .ok_or_else(|| r.malformed(format!("expected round 0 or 1, found {round_n}")))?;
        match tag {
            0 => Ok(VoteItem::Commit(CommitVote {
                task,
                round,
                commitment: Commitment(r.array("commitment")?),
            })),
            1 => {
                let result = ResultHash(r.array("result")?);
                let salt = Salt(r.array("salt")?);
                let len = r.u8("cid length")? as usize;
                if len > MAX_CID_BYTES {
                    return Err(r.malformed(format!(
                        "expected a CID of at most {MAX_CID_BYTES} bytes, found {len}"
                    )));
                }
                let bytes = r.bytes(len, "cid")?.to_vec();
                let cid = Cid::new(bytes).ok_or_else(|| r.malformed("cid too long".into()))?;
                Ok(VoteItem::Reveal(RevealVote {
                    task,
                    round,
                    result,
                    salt,
                    cid,
                }))
            }
            t => Err(r.malformed(format!(
                "expected item tag 0 (commit) or 1 (reveal), found {t}"
            ))),
        }
    }

    /// Decode one item from exactly `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, KIND_BATCH);
        let item = Self::decode_from(&mut r)?;
        r.finish()?;
        Ok(item)
    }
}

/// Bounds-checked cursor over untrusted bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    kind: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], kind: &'static str) -> Self {
        Self { buf, pos: 0, kind }
    }
    pub(crate) fn malformed(&self, detail: String) -> DecodeError {
        DecodeError::Malformed {
            kind: self.kind,
            detail,
        }
    }
    pub(crate) fn bytes(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        let left = self.buf.len() - self.pos;
        if n > left {
            return Err(self.malformed(format!(
                "expected {n} bytes of {what} at offset {}, found {left}",
                self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub(crate) fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N, what)?);
        Ok(a)
    }
    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }
    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }
    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }
    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
    pub(crate) fn peer(&mut self, what: &str) -> Result<PeerId, DecodeError> {
        let len = self.u8(what)? as usize;
        if len > MAX_PEER_ID_BYTES {
            return Err(self.malformed(format!(
                "expected a {what} of at most {MAX_PEER_ID_BYTES} bytes, found {len}"
            )));
        }
        let b = self.bytes(len, what)?;
        PeerId::from_bytes(b)
            .map_err(|e| self.malformed(format!("expected a PeerId as {what}: {e}")))
    }
    pub(crate) fn signature(&mut self) -> Result<Vec<u8>, DecodeError> {
        let len = self.u8("signature length")? as usize;
        if len > MAX_SIGNATURE_BYTES {
            return Err(self.malformed(format!(
                "expected a signature of at most {MAX_SIGNATURE_BYTES} bytes, found {len}"
            )));
        }
        Ok(self.bytes(len, "signature")?.to_vec())
    }
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        let left = self.buf.len() - self.pos;
        if left != 0 {
            return Err(self.malformed(format!(
                "expected end of message, found {left} trailing bytes"
            )));
        }
        Ok(())
    }
}

pub(crate) fn put_peer(w: &mut Vec<u8>, p: &PeerId) {
    let b = p.to_bytes();
    // PeerIds are multihashes of at most 64 digest bytes; longer ones do not
    // decode and are never produced by libp2p.
    w.push(b.len() as u8);
    w.extend_from_slice(&b);
}

pub(crate) fn put_sig(w: &mut Vec<u8>, s: &[u8]) {
    w.push(s.len() as u8);
    w.extend_from_slice(s);
}

// ---------------------------------------------------------------- Merkle

fn leaf_hash(item: &VoteItem) -> [u8; 32] {
    keccak256(&[&[0u8], &item.encode()])
}

fn node_hash(l: &[u8; 32], r: &[u8; 32]) -> [u8; 32] {
    keccak256(&[&[1u8], l, r])
}

/// All levels of the tree, leaves first; an odd last node is promoted.
fn merkle_levels(leaves: Vec<[u8; 32]>) -> Vec<Vec<[u8; 32]>> {
    let mut levels = vec![leaves];
    while levels.last().is_some_and(|l| l.len() > 1) {
        let prev = &levels[levels.len() - 1];
        let next: Vec<[u8; 32]> = prev
            .chunks(2)
            .map(|c| {
                if c.len() == 2 {
                    node_hash(&c[0], &c[1])
                } else {
                    c[0]
                }
            })
            .collect();
        levels.push(next);
    }
    levels
}

fn merkle_root(levels: &[Vec<[u8; 32]>]) -> [u8; 32] {
    levels
        .last()
        .and_then(|l| l.first())
        .copied()
        .unwrap_or([0u8; 32])
}

fn merkle_path(levels: &[Vec<[u8; 32]>], mut index: usize) -> Vec<[u8; 32]> {
    let mut path = Vec::new();
    for level in &levels[..levels.len().saturating_sub(1)] {
        let sib = index ^ 1;
        if sib < level.len() {
            path.push(level[sib]);
        }
        index /= 2;
    }
    path
}

fn root_from_path(
    leaf: [u8; 32],
    mut index: usize,
    mut count: usize,
    path: &[[u8; 32]],
) -> Result<[u8; 32], VerifyError> {
    if count == 0 || index >= count {
        return Err(VerifyError::BadProof {
            detail: format!("expected an index below the item count {count}, found {index}"),
        });
    }
    let mut h = leaf;
    let mut used = 0;
    while count > 1 {
        let sib = index ^ 1;
        if sib < count {
            let s = path.get(used).ok_or_else(|| VerifyError::BadProof {
                detail: format!(
                    "expected more than {used} path entries, found {}",
                    path.len()
                ),
            })?;
            used += 1;
            h = if index.is_multiple_of(2) {
                node_hash(&h, s)
            } else {
                node_hash(s, &h)
            };
        }
        index /= 2;
        count = count.div_ceil(2);
    }
    if used != path.len() {
        return Err(VerifyError::BadProof {
            detail: format!("expected {used} path entries, found {}", path.len()),
        });
    }
    Ok(h)
}

fn signed_bytes(version: u16, signer: &PeerId, seq: u64, count: u32, root: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(VOTE_DOMAIN.len() + 2 + 65 + 8 + 4 + 32);
    m.extend_from_slice(VOTE_DOMAIN);
    m.extend_from_slice(&version.to_be_bytes());
    put_peer(&mut m, signer);
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&count.to_be_bytes());
    m.extend_from_slice(root);
    m
}

/// The public key embedded in an ed25519 (identity multihash) PeerId.
pub fn public_key_of(peer: &PeerId) -> Result<PublicKey, VerifyError> {
    let mh = peer.as_ref();
    if mh.code() != 0x00 {
        return Err(VerifyError::NoPublicKey { peer: *peer });
    }
    PublicKey::try_decode_protobuf(mh.digest())
        .map_err(|_| VerifyError::NoPublicKey { peer: *peer })
}

// ---------------------------------------------------------------- batch

/// A signed batch of one node's votes for many tasks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoteBatch {
    /// Format version ([`VOTE_BATCH_VERSION`]).
    pub version: u16,
    /// The member casting every vote in the batch.
    pub signer: PeerId,
    /// Sender's sequence number (makes every batch a distinct message).
    pub seq: u64,
    /// The votes.
    pub items: Vec<VoteItem>,
    /// ed25519 signature over the domain, header and Merkle root of items.
    pub signature: Vec<u8>,
}

impl VoteBatch {
    /// Sign `items` with `keypair`.
    pub fn sign(keypair: &Keypair, seq: u64, items: Vec<VoteItem>) -> Result<Self, VerifyError> {
        if items.len() > MAX_BATCH_ITEMS {
            return Err(VerifyError::TooManyItems {
                max: MAX_BATCH_ITEMS,
                found: items.len(),
            });
        }
        let signer = keypair.public().to_peer_id();
        let levels = merkle_levels(items.iter().map(leaf_hash).collect());
        let msg = signed_bytes(
            VOTE_BATCH_VERSION,
            &signer,
            seq,
            items.len() as u32,
            &merkle_root(&levels),
        );
        let signature = keypair
            .sign(&msg)
            .map_err(|e| VerifyError::Signing(e.to_string()))?;
        Ok(Self {
            version: VOTE_BATCH_VERSION,
            signer,
            seq,
            items,
            signature,
        })
    }

    /// Sign any number of votes as consecutive batches of at most
    /// [`MAX_BATCH_ITEMS`] items, with sequence numbers from `first_seq`.
    /// Every batch fits [`MAX_VOTE_BATCH_BYTES`] once encoded.
    pub fn sign_all(
        keypair: &Keypair,
        first_seq: u64,
        items: &[VoteItem],
    ) -> Result<Vec<Self>, VerifyError> {
        items
            .chunks(MAX_BATCH_ITEMS)
            .enumerate()
            .map(|(i, chunk)| Self::sign(keypair, first_seq.wrapping_add(i as u64), chunk.to_vec()))
            .collect()
    }

    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(64 + self.items.len() * 140);
        w.extend_from_slice(&self.version.to_be_bytes());
        put_peer(&mut w, &self.signer);
        w.extend_from_slice(&self.seq.to_be_bytes());
        w.extend_from_slice(&(self.items.len() as u32).to_be_bytes());
        for it in &self.items {
            it.encode_into(&mut w);
        }
        put_sig(&mut w, &self.signature);
        w
    }

    /// Decode untrusted bytes. Does not check the signature (see
    /// [`VoteBatch::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_VOTE_BATCH_BYTES {
            return Err(DecodeError::Malformed {
                kind: KIND_BATCH,
                detail: format!(
                    "expected at most {MAX_VOTE_BATCH_BYTES} bytes, found {}",
                    bytes.len()
                ),
            });
        }
        let mut r = Reader::new(bytes, KIND_BATCH);
        let version = r.u16("version")?;
        if version != VOTE_BATCH_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                kind: KIND_BATCH,
                supported: VOTE_BATCH_VERSION,
                found: version,
            });
        }
        let signer = r.peer("signer")?;
        let seq = r.u64("seq")?;
        let count = r.u32("item count")? as usize;
        if count > MAX_BATCH_ITEMS {
            return Err(r.malformed(format!(
                "expected at most {MAX_BATCH_ITEMS} items, found {count}"
            )));
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(VoteItem::decode_from(&mut r)?);
        }
        let signature = r.signature()?;
        r.finish()?;
        Ok(Self {
            version,
            signer,
            seq,
            items,
            signature,
        })
    }

    /// Check the signature; on success the batch's votes can be proven one
    /// by one.
    pub fn verify(self) -> Result<VerifiedBatch, VerifyError> {
        let key = public_key_of(&self.signer)?;
        let levels = merkle_levels(self.items.iter().map(leaf_hash).collect());
        let root = merkle_root(&levels);
        let msg = signed_bytes(
            self.version,
            &self.signer,
            self.seq,
            self.items.len() as u32,
            &root,
        );
        if !key.verify(&msg, &self.signature) {
            return Err(VerifyError::BadSignature {
                peer: self.signer,
                seq: self.seq,
            });
        }
        Ok(VerifiedBatch {
            batch: self,
            levels,
        })
    }
}

/// Outcome of validating a gossip message, for the network's application
/// validation step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationAction {
    /// Deliver and forward.
    Accept,
    /// Drop without penalty (unsupported version).
    Ignore,
    /// Drop and penalise the sender.
    Reject,
}

/// Error of [`validate_vote_message`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteMessageError {
    /// Could not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Decoded, but the signature does not hold.
    #[error(transparent)]
    Verify(#[from] VerifyError),
}

impl VoteMessageError {
    /// What the network should do with the message.
    pub fn action(&self) -> ValidationAction {
        match self {
            VoteMessageError::Decode(d) if !d.is_penalised() => ValidationAction::Ignore,
            _ => ValidationAction::Reject,
        }
    }
}

/// Decode and verify a message of the votes topic in one step.
pub fn validate_vote_message(bytes: &[u8]) -> Result<VerifiedBatch, VoteMessageError> {
    Ok(VoteBatch::decode(bytes)?.verify()?)
}

/// A batch whose signature was checked. Only [`VoteBatch::verify`] makes one.
#[derive(Clone, Debug)]
pub struct VerifiedBatch {
    batch: VoteBatch,
    levels: Vec<Vec<[u8; 32]>>,
}

impl VerifiedBatch {
    /// The signer.
    pub fn signer(&self) -> PeerId {
        self.batch.signer
    }
    /// The batch.
    pub fn batch(&self) -> &VoteBatch {
        &self.batch
    }
    /// The votes.
    pub fn items(&self) -> &[VoteItem] {
        &self.batch.items
    }
    /// A self-standing proof of item `index`; `None` when out of range.
    pub fn signed_vote(&self, index: usize) -> Option<SignedVote> {
        let item = self.batch.items.get(index)?.clone();
        Some(SignedVote {
            signer: self.batch.signer,
            seq: self.batch.seq,
            count: self.batch.items.len() as u32,
            index: index as u32,
            path: merkle_path(&self.levels, index),
            signature: self.batch.signature.clone(),
            item,
        })
    }
}

/// One vote with the proof that its signer signed it: the batch header,
/// signature and Merkle path. Any node can check it alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedVote {
    /// Signer (the member).
    pub signer: PeerId,
    /// Sequence number of the batch.
    pub seq: u64,
    /// Items in the batch.
    pub count: u32,
    /// Position of the vote in the batch.
    pub index: u32,
    /// Merkle path from the vote to the signed root.
    pub path: Vec<[u8; 32]>,
    /// Batch signature.
    pub signature: Vec<u8>,
    /// The vote.
    pub item: VoteItem,
}

/// Longest Merkle path accepted (2^16 items is far beyond the batch limit).
pub const MAX_PATH_LEN: usize = 16;

impl SignedVote {
    /// Check the path and signature.
    pub fn verify(&self) -> Result<(), VerifyError> {
        if self.count as usize > MAX_BATCH_ITEMS {
            return Err(VerifyError::BadProof {
                detail: format!(
                    "expected at most {MAX_BATCH_ITEMS} items, found {}",
                    self.count
                ),
            });
        }
        let root = root_from_path(
            leaf_hash(&self.item),
            self.index as usize,
            self.count as usize,
            &self.path,
        )?;
        let key = public_key_of(&self.signer)?;
        let msg = signed_bytes(
            VOTE_BATCH_VERSION,
            &self.signer,
            self.seq,
            self.count,
            &root,
        );
        if key.verify(&msg, &self.signature) {
            Ok(())
        } else {
            Err(VerifyError::BadSignature {
                peer: self.signer,
                seq: self.seq,
            })
        }
    }

    pub(crate) fn encode_into(&self, w: &mut Vec<u8>) {
        put_peer(w, &self.signer);
        w.extend_from_slice(&self.seq.to_be_bytes());
        w.extend_from_slice(&self.count.to_be_bytes());
        w.extend_from_slice(&self.index.to_be_bytes());
        w.push(self.path.len() as u8);
        for p in &self.path {
            w.extend_from_slice(p);
        }
        put_sig(w, &self.signature);
        self.item.encode_into(w);
    }

    pub(crate) fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let signer = r.peer("signer")?;
        let seq = r.u64("seq")?;
        let count = r.u32("item count")?;
        let index = r.u32("index")?;
        let plen = r.u8("path length")? as usize;
        if plen > MAX_PATH_LEN {
            return Err(r.malformed(format!(
                "expected a path of at most {MAX_PATH_LEN} hashes, found {plen}"
            )));
        }
        let mut path = Vec::with_capacity(plen);
        for _ in 0..plen {
            path.push(r.array("path hash")?);
        }
        let signature = r.signature()?;
        let item = VoteItem::decode_from(r)?;
        Ok(Self {
            signer,
            seq,
            count,
            index,
            path,
            signature,
            item,
        })
    }
}

// ---------------------------------------------------------------- tasks

/// Envelope of the tasks topic: the task id and the ABI-encoded spec
/// (opaque here). The id must be keccak256 of the spec bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskAnnouncement {
    /// Format version ([`TASK_ANNOUNCEMENT_VERSION`]).
    pub version: u16,
    /// keccak256(spec).
    pub task: TaskId,
    /// ABI-encoded task spec.
    pub spec: Vec<u8>,
}

impl TaskAnnouncement {
    /// Wrap spec bytes; `None` when larger than [`MAX_SPEC_BYTES`].
    pub fn new(spec: Vec<u8>) -> Option<Self> {
        (spec.len() <= MAX_SPEC_BYTES).then(|| Self {
            version: TASK_ANNOUNCEMENT_VERSION,
            task: TaskId::of_spec(&spec),
            spec,
        })
    }

    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(38 + self.spec.len());
        w.extend_from_slice(&self.version.to_be_bytes());
        w.extend_from_slice(&self.task.0);
        w.extend_from_slice(&(self.spec.len() as u32).to_be_bytes());
        w.extend_from_slice(&self.spec);
        w
    }

    /// Decode and check untrusted bytes (size, version, id = keccak256(spec)).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_TASK_ANNOUNCEMENT_BYTES {
            return Err(DecodeError::Malformed {
                kind: KIND_TASK,
                detail: format!(
                    "expected at most {MAX_TASK_ANNOUNCEMENT_BYTES} bytes, found {}",
                    bytes.len()
                ),
            });
        }
        let mut r = Reader::new(bytes, KIND_TASK);
        let version = r.u16("version")?;
        if version != TASK_ANNOUNCEMENT_VERSION {
            return Err(DecodeError::UnsupportedVersion {
                kind: KIND_TASK,
                supported: TASK_ANNOUNCEMENT_VERSION,
                found: version,
            });
        }
        let task = TaskId(r.array("task id")?);
        let len = r.u32("spec length")? as usize;
        if len > MAX_SPEC_BYTES {
            return Err(r.malformed(format!(
                "expected a spec of at most {MAX_SPEC_BYTES} bytes, found {len}"
            )));
        }
        let spec = r.bytes(len, "spec")?.to_vec();
        r.finish()?;
        let id = TaskId::of_spec(&spec);
        if id != task {
            return Err(r.malformed(format!(
                "expected task id {} (keccak256 of the spec), found {}",
                id.to_hex(),
                task.to_hex()
            )));
        }
        Ok(Self {
            version,
            task,
            spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::keypair;

    fn items(n: usize) -> Vec<VoteItem> {
        (0..n)
            .map(|i| {
                let task = TaskId(keccak256(&[&(i as u64).to_be_bytes()]));
                if i % 2 == 0 {
                    VoteItem::Commit(CommitVote {
                        task,
                        round: Round::Primary,
                        commitment: Commitment([i as u8; 32]),
                    })
                } else {
                    VoteItem::Reveal(RevealVote {
                        task,
                        round: Round::Escalation,
                        result: ResultHash([1; 32]),
                        salt: Salt([2; 32]),
                        cid: Cid::new(vec![7; 36]).unwrap(),
                    })
                }
            })
            .collect()
    }

    #[test]
    fn every_item_of_every_batch_size_proves() {
        let kp = keypair(1);
        for n in [1usize, 2, 3, 4, 5, 7, 8, 9, 33] {
            let b = VoteBatch::sign(&kp, n as u64, items(n)).unwrap();
            let v = b.verify().unwrap();
            for i in 0..n {
                let sv = v.signed_vote(i).unwrap();
                sv.verify().unwrap_or_else(|e| panic!("n={n} i={i}: {e}"));
                // A proof for one item does not prove another.
                let mut forged = sv.clone();
                forged.item = items(n + 1)[(i + 1) % (n + 1)].clone();
                if forged.item != sv.item {
                    assert!(forged.verify().is_err());
                }
            }
            assert!(v.signed_vote(n).is_none());
        }
    }

    #[test]
    fn sign_all_splits_at_the_item_limit() {
        let many = items(MAX_BATCH_ITEMS + 3);
        let batches = VoteBatch::sign_all(&keypair(1), 10, &many).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].items.len(), MAX_BATCH_ITEMS);
        assert_eq!(batches[1].items.len(), 3);
        assert_eq!((batches[0].seq, batches[1].seq), (10, 11));
        assert!(VoteBatch::sign_all(&keypair(1), 0, &[]).unwrap().is_empty());
    }

    #[test]
    fn empty_batch_signs_and_verifies() {
        let b = VoteBatch::sign(&keypair(1), 0, vec![]).unwrap();
        let back = VoteBatch::decode(&b.encode()).unwrap();
        back.verify().unwrap();
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let b = VoteBatch::sign(&keypair(1), 5, items(4)).unwrap();
        let mut t = b.clone();
        t.seq = 6;
        assert!(matches!(t.verify(), Err(VerifyError::BadSignature { .. })));
        let mut t = b.clone();
        t.items.pop();
        assert!(matches!(t.verify(), Err(VerifyError::BadSignature { .. })));
        let mut t = b.clone();
        t.signer = keypair(2).public().to_peer_id();
        assert!(matches!(t.verify(), Err(VerifyError::BadSignature { .. })));
        let mut t = b;
        t.signature[0] ^= 1;
        assert!(t.verify().is_err());
    }

    #[test]
    fn version_errors_are_ignored_malformed_rejected() {
        let b = VoteBatch::sign(&keypair(1), 5, items(2)).unwrap();
        let mut bytes = b.encode();
        bytes[1] = 2;
        let e = validate_vote_message(&bytes).unwrap_err();
        assert!(matches!(
            e,
            VoteMessageError::Decode(DecodeError::UnsupportedVersion { found: 2, .. })
        ));
        assert_eq!(e.action(), ValidationAction::Ignore);
        let mut bytes = b.encode();
        bytes.push(0);
        let e = validate_vote_message(&bytes).unwrap_err();
        assert_eq!(e.action(), ValidationAction::Reject);
        let too_big = vec![0u8; MAX_VOTE_BATCH_BYTES + 1];
        assert_eq!(
            validate_vote_message(&too_big).unwrap_err().action(),
            ValidationAction::Reject
        );
        let mut bytes = b.encode();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert_eq!(
            validate_vote_message(&bytes).unwrap_err().action(),
            ValidationAction::Reject
        );
    }

    #[test]
    fn max_batch_fits_the_size_limit() {
        let big: Vec<VoteItem> = (0..MAX_BATCH_ITEMS)
            .map(|_| {
                VoteItem::Reveal(RevealVote {
                    task: TaskId([3; 32]),
                    round: Round::Primary,
                    result: ResultHash([1; 32]),
                    salt: Salt([2; 32]),
                    cid: Cid::new(vec![7; MAX_CID_BYTES]).unwrap(),
                })
            })
            .collect();
        let b = VoteBatch::sign(&keypair(1), 1, big).unwrap();
        let bytes = b.encode();
        assert!(bytes.len() <= MAX_VOTE_BATCH_BYTES, "{} bytes", bytes.len());
        assert_eq!(VoteBatch::decode(&bytes).unwrap(), b);
        let too_many = vec![b.items[0].clone(); MAX_BATCH_ITEMS + 1];
        assert!(matches!(
            VoteBatch::sign(&keypair(1), 1, too_many),
            Err(VerifyError::TooManyItems { .. })
        ));
    }

    #[test]
    fn task_announcement_checks_id_and_version() {
        let a = TaskAnnouncement::new(vec![1, 2, 3]).unwrap();
        assert_eq!(TaskAnnouncement::decode(&a.encode()).unwrap(), a);
        let mut bad = a.clone();
        bad.task = TaskId([0; 32]);
        assert!(
            TaskAnnouncement::decode(&bad.encode())
                .unwrap_err()
                .is_penalised()
        );
        let mut v2 = a.encode();
        v2[1] = 9;
        assert!(!TaskAnnouncement::decode(&v2).unwrap_err().is_penalised());
        assert!(TaskAnnouncement::new(vec![0; MAX_SPEC_BYTES + 1]).is_none());
    }
}
