//! Where the engine gets programs and puts outputs: the node's content layer.

use bytes::Bytes;
use futures::future::BoxFuture;

use super::cid::RawCid;

/// Content-addressed storage reachable over the network.
pub trait Content: Send + Sync + 'static {
    /// Fetches the bytes named by `cid`, verified against it.
    fn get(&self, cid: RawCid) -> BoxFuture<'static, Result<Bytes, String>>;
    /// Adds bytes, provides them to the network and returns their CID.
    fn add(&self, data: Bytes) -> BoxFuture<'static, Result<RawCid, String>>;
}
