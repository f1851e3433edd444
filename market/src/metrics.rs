//! Prometheus metrics of the chain client.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of a contract call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `Contract.function`.
    pub call: String,
    /// `ok` or `error`.
    pub outcome: String,
}

/// Chain client metrics (all counters in base units).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Transactions sent, by call and outcome.
    pub transactions: Family<CallLabels, Counter>,
    /// Gas used by mined transactions, by call.
    pub gas_used: Family<CallLabels, Counter>,
    /// Tasks this client posted.
    pub tasks_posted: Counter,
    /// Verdicts this client submitted.
    pub verdicts_submitted: Counter,
    /// Tasks this client finalized.
    pub tasks_finalized: Counter,
    /// Committees (and escalation committees) this client's `draw` drew.
    pub committees_drawn: Counter,
    /// Draws this client's `draw` re-targeted to a later block.
    pub draws_retargeted: Counter,
    /// Commitments this client stored with `commitMany`.
    pub commitments_sent: Counter,
    /// Highest block number seen in a receipt.
    pub last_block: Gauge,
}

impl Metrics {
    /// Creates the metrics and registers them under `hal9_market_`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("hal9_market");
        r.register(
            "transactions",
            "Transactions sent, by call and outcome",
            m.transactions.clone(),
        );
        r.register(
            "gas_used",
            "Gas used by mined transactions",
            m.gas_used.clone(),
        );
        r.register(
            "tasks_posted",
            "Tasks posted by this client",
            m.tasks_posted.clone(),
        );
        r.register(
            "verdicts_submitted",
            "Verdicts submitted by this client",
            m.verdicts_submitted.clone(),
        );
        r.register(
            "tasks_finalized",
            "Tasks finalized by this client",
            m.tasks_finalized.clone(),
        );
        r.register(
            "committees_drawn",
            "Committees and escalation committees drawn by this client",
            m.committees_drawn.clone(),
        );
        r.register(
            "draws_retargeted",
            "Draws of this client re-targeted to a later block",
            m.draws_retargeted.clone(),
        );
        r.register(
            "commitments_sent",
            "Commitments stored by this client",
            m.commitments_sent.clone(),
        );
        r.register(
            "last_block",
            "Highest block number seen in a receipt",
            m.last_block.clone(),
        );
        m
    }

    pub(crate) fn record(&self, call: &'static str, ok: bool, gas: u64, block: Option<u64>) {
        let outcome = if ok { "ok" } else { "error" };
        self.transactions
            .get_or_create(&CallLabels {
                call: call.into(),
                outcome: outcome.into(),
            })
            .inc();
        if gas > 0 {
            self.gas_used
                .get_or_create(&CallLabels {
                    call: call.into(),
                    outcome: outcome.into(),
                })
                .inc_by(gas);
        }
        if let Some(b) = block {
            let b = i64::try_from(b).unwrap_or(i64::MAX);
            if b > self.last_block.get() {
                self.last_block.set(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn registered_and_encoded() {
        let mut reg = Registry::default();
        let m = Metrics::register(&mut reg);
        m.record("ComputationMarket.finalize", true, 21_000, Some(7));
        m.record("ComputationMarket.finalize", false, 0, None);
        let mut out = String::new();
        encode(&mut out, &reg).unwrap();
        assert!(out.contains(
            "hal9_market_transactions_total{call=\"ComputationMarket.finalize\",outcome=\"ok\"} 1"
        ));
        assert!(out.contains("hal9_market_transactions_total{call=\"ComputationMarket.finalize\",outcome=\"error\"} 1"));
        assert!(out.contains(
            "hal9_market_gas_used_total{call=\"ComputationMarket.finalize\",outcome=\"ok\"} 21000"
        ));
        assert!(out.contains("hal9_market_last_block 7"));
        m.commitments_sent.inc_by(3);
        let mut out = String::new();
        encode(&mut out, &reg).unwrap();
        assert!(
            out.contains("hal9_market_commitments_sent_total 3"),
            "{out}"
        );
        assert!(
            out.contains("hal9_market_committees_drawn_total 0"),
            "{out}"
        );
    }
}
