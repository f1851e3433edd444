//! Operator notes: short UTF-8 texts gossiped on `hal9/notes/1`.
//!
//! They exercise the whole gossip path (envelope, validation, scoring) and
//! let operators and the devnet see that a network is connected.

use hal9_p2p::{
    PeerId, Validation,
    wire::{Envelope, Kind},
};

/// The notes topic.
pub const TOPIC: &str = "hal9/notes/1";
/// Largest note text.
pub const MAX_TEXT: usize = 64 * 1024;

/// Encodes a note.
pub fn encode(text: &str) -> Vec<u8> {
    Envelope::new(Kind::Note, text.as_bytes().to_vec()).encode()
}

/// Decodes a note, or says why it is invalid.
pub fn decode(data: &[u8], limit: usize) -> Result<String, hal9_p2p::wire::DecodeError> {
    use hal9_p2p::wire::DecodeError;
    let env = Envelope::decode(data, limit)?;
    if env.kind != Kind::Note {
        return Err(DecodeError::Malformed("expected a note envelope"));
    }
    String::from_utf8(env.payload.to_vec())
        .map_err(|_| DecodeError::Malformed("note text is not UTF-8"))
}

/// Validator of the notes topic. Texts longer than [`MAX_TEXT`] are
/// rejected here; payloads beyond the topic limit never reach it.
pub fn validate(_source: &PeerId, data: &[u8]) -> Validation {
    match decode(data, MAX_TEXT) {
        Ok(_) => Validation::Accept,
        Err(e) if e.is_ignorable() => Validation::Ignore(e.to_string()),
        Err(e) => Validation::Reject(e.to_string()),
    }
}
