//! The operator's Prometheus metrics (`gyre_operator_*`).

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

pub struct Metrics {
    registry: Registry,
    pub reconciles: IntCounterVec,
    pub failures: IntCounterVec,
    pub duration: HistogramVec,
    /// 1 while this replica holds the leader Lease.
    pub leader: IntGauge,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new_custom(Some("gyre_operator".into()), None)?;
        let reconciles = IntCounterVec::new(Opts::new("reconciles_total", "Reconciles started, by kind"), &["kind"])?;
        let failures = IntCounterVec::new(
            Opts::new("reconcile_failures_total", "Failed reconciles, by kind and error"),
            &["kind", "error"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("reconcile_duration_seconds", "Duration of successful reconciles")
                .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["kind"],
        )?;
        let leader = IntGauge::new("leader", "1 while this replica leads")?;
        registry.register(Box::new(reconciles.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(leader.clone()))?;
        Ok(Self { registry, reconciles, failures, duration, leader })
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = String::new();
        if let Err(err) = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut buf) {
            tracing::error!(%err, "metrics encoding failed");
        }
        buf
    }
}
