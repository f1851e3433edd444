//! The node's network events that are not the engine's: notes for the API,
//! and the peers it identified (recorded in the store, redialed at start).

use std::{collections::VecDeque, sync::Arc};

use hal9_api::ReceivedNote;
use hal9_p2p::{NetworkEvent, NetworkHandle};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::NOTES_KEPT;
use crate::{clock::Clock, engine, notes, store::Store};

/// How many remembered peers are dialed at start-up.
const REDIAL_PEERS: usize = 16;

/// Dials the most recently seen peers the store remembers.
pub async fn redial_known_peers(net: &NetworkHandle, store: &Arc<Store>) {
    let store = store.clone();
    let known = tokio::task::spawn_blocking(move || store.peers())
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    let mut known: Vec<_> = known
        .into_iter()
        .filter_map(|(peer, rec)| Some((rec.last_seen, peer, rec.last_addr?)))
        .collect();
    known.sort_by_key(|k| std::cmp::Reverse(k.0));
    for (_, peer, addr) in known.into_iter().take(REDIAL_PEERS) {
        let Ok(addr) = format!("{addr}/p2p/{peer}").parse() else {
            continue;
        };
        if let Err(e) = net.dial(addr).await {
            tracing::debug!(target: "hal9::node", %peer, error = %e, "redial failed");
        }
    }
}

/// Consumes the network's events until the network stops. The engine's
/// topics never reach here: their validators hand them to the engine.
pub async fn run(
    mut events: mpsc::Receiver<NetworkEvent>,
    store: Arc<Store>,
    notes: Arc<Mutex<VecDeque<ReceivedNote>>>,
    clock: Arc<dyn Clock>,
) -> &'static str {
    while let Some(ev) = events.recv().await {
        let Some(ev) = engine::route(ev) else {
            continue;
        };
        match ev {
            NetworkEvent::Message {
                id,
                source,
                author,
                topic,
                data,
            } if topic == notes::TOPIC => match notes::decode(&data, notes::MAX_TEXT) {
                Ok(text) => {
                    info!(target: "hal9::node", %id, author = ?author.map(|a| a.to_string()), "note received");
                    let mut q = notes.lock();
                    if q.len() >= NOTES_KEPT {
                        q.pop_front();
                    }
                    q.push_back(ReceivedNote {
                        id,
                        author: author.map(|a| a.to_string()),
                        source: source.to_string(),
                        text,
                        received_at_ms: clock.now_ms(),
                    });
                }
                Err(e) => {
                    warn!(target: "hal9::node", %id, error = %e, "undecodable note passed validation")
                }
            },
            NetworkEvent::Message { topic, .. } => {
                tracing::debug!(target: "hal9::node", %topic, "message on a topic without a consumer");
            }
            NetworkEvent::PeerIdentified { peer, listen_addrs } => {
                // Prefer a TCP address: it is what a restarted node redials first.
                let addr = listen_addrs
                    .iter()
                    .find(|a| a.to_string().contains("/tcp/"))
                    .or(listen_addrs.first())
                    .map(|a| a.to_string());
                let store = store.clone();
                let now = clock.now_ms() / 1000;
                let res = tokio::task::spawn_blocking(move || {
                    store.record_peer(&peer.to_string(), addr, now)
                })
                .await;
                if let Ok(Err(e)) = res {
                    warn!(target: "hal9::node", error = %e, "cannot record peer");
                }
            }
            NetworkEvent::PeerConnected(_)
            | NetworkEvent::PeerDisconnected(_)
            | NetworkEvent::Listening(_) => {}
        }
    }
    "event loop"
}
