//! Where the engine gets programs and puts outputs: the node's content layer.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

use super::cid::RawCid;

/// Content-addressed storage reachable over the network.
pub trait ContentSource: Send + Sync + 'static {
    /// Fetches the bytes named by `cid`, verified against it, waiting at most `timeout`.
    fn get(&self, cid: RawCid, timeout: Duration) -> BoxFuture<'static, Result<Bytes, String>>;
    /// Adds an output of this node's own task: stored, provided to the
    /// network, pinned for the result retention period.
    fn add_result(&self, data: Bytes) -> BoxFuture<'static, Result<RawCid, String>>;
    /// Adds an output like [`ContentSource::add_result`] without telling the
    /// network (chain mode: a member's output stays unannounced until the
    /// commit phase ended on chain, see [`ContentSource::publish`]).
    fn add_sealed_result(&self, data: Bytes) -> BoxFuture<'static, Result<RawCid, String>>;
    /// Announces an object added sealed.
    fn publish(&self, cid: RawCid) -> BoxFuture<'static, Result<(), String>>;
}

fn to_ipfs(cid: &RawCid) -> Result<hal9_p2p::Cid, String> {
    hal9_p2p::Cid::try_from(cid.to_bytes()).map_err(|e| format!("bad CID {cid}: {e}"))
}

fn from_ipfs(cid: &hal9_p2p::Cid) -> Result<RawCid, String> {
    RawCid::from_bytes(&cid.to_bytes())
}

/// The embedded IPFS node (hal9-p2p's content layer).
impl ContentSource for hal9_p2p::Content {
    fn get(&self, cid: RawCid, timeout: Duration) -> BoxFuture<'static, Result<Bytes, String>> {
        let this = self.clone();
        Box::pin(async move {
            let cid = to_ipfs(&cid)?;
            this.get(&cid, timeout).await.map_err(|e| e.to_string())
        })
    }

    fn add_result(&self, data: Bytes) -> BoxFuture<'static, Result<RawCid, String>> {
        let this = self.clone();
        Box::pin(async move {
            let cid = this.add_result(data).await.map_err(|e| e.to_string())?;
            from_ipfs(&cid)
        })
    }

    fn add_sealed_result(&self, data: Bytes) -> BoxFuture<'static, Result<RawCid, String>> {
        let this = self.clone();
        Box::pin(async move {
            let cid = this
                .add_sealed_result(data)
                .await
                .map_err(|e| e.to_string())?;
            from_ipfs(&cid)
        })
    }

    fn publish(&self, cid: RawCid) -> BoxFuture<'static, Result<(), String>> {
        let this = self.clone();
        Box::pin(async move {
            let cid = to_ipfs(&cid)?;
            this.publish(&cid).await.map_err(|e| e.to_string())
        })
    }
}
