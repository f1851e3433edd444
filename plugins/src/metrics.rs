//! Prometheus metrics of the plugin runtime (base units: seconds, bytes).

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Metrics of a [`crate::PluginEngine`]. Cheap to clone (shared handles).
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Executions by outcome (`ok` or an [`crate::Error::kind`] label).
    pub executions: Family<Vec<(String, String)>, Counter>,
    /// Wall-clock time of executions, seconds.
    pub execution_seconds: Histogram,
    /// Fuel consumed by successful executions.
    pub fuel_consumed: Counter,
    /// Time to compile a module, seconds.
    pub compile_seconds: Histogram,
    /// Module cache hits.
    pub cache_hits: Counter,
    /// Module cache misses (compilations).
    pub cache_misses: Counter,
    /// Modules evicted from the cache.
    pub cache_evictions: Counter,
    /// Modules in the cache.
    pub cache_modules: Gauge,
    /// Module bytes held by the cache.
    pub cache_bytes: Gauge,
    /// Modules refused at load, by reason.
    pub load_refused: Family<Vec<(String, String)>, Counter>,
    /// Shortcut to the `outcome="ok"` child of `executions`.
    ok: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let executions: Family<Vec<(String, String)>, Counter> = Family::default();
        let ok = executions
            .get_or_create(&vec![("outcome".to_owned(), "ok".to_owned())])
            .clone();
        Self {
            executions,
            ok,
            // 1 µs .. ~16 s
            execution_seconds: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(1e-6, 4.0, 13),
            ),
            fuel_consumed: Counter::default(),
            compile_seconds: Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(1e-3, 2.0, 14),
            ),
            cache_hits: Counter::default(),
            cache_misses: Counter::default(),
            cache_evictions: Counter::default(),
            cache_modules: Gauge::default(),
            cache_bytes: Gauge::default(),
            load_refused: Family::default(),
        }
    }
}

impl Metrics {
    /// Creates the metrics and registers them under the `hal9_plugins` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        let r = registry.sub_registry_with_prefix("hal9_plugins");
        r.register(
            "executions",
            "Plugin executions by outcome",
            m.executions.clone(),
        );
        r.register(
            "execution_seconds",
            "Wall-clock time of plugin executions",
            m.execution_seconds.clone(),
        );
        r.register(
            "fuel_consumed",
            "Fuel consumed by successful executions",
            m.fuel_consumed.clone(),
        );
        r.register(
            "compile_seconds",
            "Time to compile a module",
            m.compile_seconds.clone(),
        );
        r.register("cache_hits", "Module cache hits", m.cache_hits.clone());
        r.register(
            "cache_misses",
            "Module cache misses",
            m.cache_misses.clone(),
        );
        r.register(
            "cache_evictions",
            "Modules evicted from the cache",
            m.cache_evictions.clone(),
        );
        r.register(
            "cache_modules",
            "Modules in the cache",
            m.cache_modules.clone(),
        );
        r.register(
            "cache_bytes",
            "Module bytes held by the cache",
            m.cache_bytes.clone(),
        );
        r.register(
            "load_refused",
            "Modules refused at load by reason",
            m.load_refused.clone(),
        );
        m
    }

    pub(crate) fn ok(&self) {
        self.ok.inc();
    }

    pub(crate) fn outcome(&self, label: &str) {
        self.executions
            .get_or_create(&vec![("outcome".to_owned(), label.to_owned())])
            .inc();
    }

    pub(crate) fn refused(&self, label: &str) {
        self.load_refused
            .get_or_create(&vec![("reason".to_owned(), label.to_owned())])
            .inc();
    }
}
