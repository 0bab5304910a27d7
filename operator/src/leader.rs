//! Leader election with a `coordination.k8s.io/v1` Lease, so two operator replicas never
//! reconcile at once: the holder renews it; another replica takes it once it expired.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

/// One replica's claim on the Lease.
pub struct Election {
    pub api: Api<Lease>,
    pub name: String,
    pub identity: String,
    pub lease_duration: Duration,
}

impl Election {
    /// Acquires or renews the Lease; true while this replica holds it. A concurrent change by
    /// another replica (409) counts as not holding it.
    pub async fn try_acquire(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let secs = i32::try_from(self.lease_duration.as_secs()).unwrap_or(15);
        let Some(lease) = self.api.get_opt(&self.name).await? else {
            let lease: Lease = serde_json::from_value(json!({
                "metadata": {"name": self.name},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": secs,
                    "acquireTime": MicroTime(now),
                    "renewTime": MicroTime(now),
                    "leaseTransitions": 0,
                }
            }))
            .map_err(kube::Error::SerdeError)?;
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let duration = i64::from(spec.lease_duration_seconds.unwrap_or(secs));
        let expired = spec.renew_time.as_ref().is_none_or(|t| t.0 + SignedDuration::from_secs(duration) < now);
        let mut patch = json!({
            "metadata": {"resourceVersion": lease.metadata.resource_version},
            "spec": {"holderIdentity": self.identity, "leaseDurationSeconds": secs, "renewTime": MicroTime(now)}
        });
        if holder != self.identity {
            if !holder.is_empty() && !expired {
                return Ok(false);
            }
            patch["spec"]["acquireTime"] = json!(MicroTime(now));
            patch["spec"]["leaseTransitions"] = json!(spec.lease_transitions.unwrap_or(0) + 1);
        }
        // The resourceVersion makes this a compare-and-swap.
        match self.api.patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Gives the Lease up (holder cleared) if this replica holds it, so a standby replica takes
    /// over at once instead of after the lease duration.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(lease) = self.api.get_opt(&self.name).await? else { return Ok(()) };
        let holder = lease.spec.as_ref().and_then(|s| s.holder_identity.clone()).unwrap_or_default();
        if holder != self.identity {
            return Ok(());
        }
        let patch = json!({
            "metadata": {"resourceVersion": lease.metadata.resource_version},
            "spec": {"holderIdentity": null, "renewTime": null}
        });
        match self.api.patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica leads, then runs `work` while renewing; returns an error when
    /// leadership is lost (the process should exit and let Kubernetes restart it).
    pub async fn lead<F: std::future::Future<Output = ()>>(
        &self,
        work: F,
        on_lead: impl Fn(bool),
    ) -> anyhow::Result<()> {
        let retry = self.lease_duration / 3;
        loop {
            match self.try_acquire().await {
                Ok(true) => break,
                Ok(false) => tracing::debug!(lease = %self.name, "another replica leads; waiting"),
                Err(err) => tracing::warn!(%err, "cannot read the leader Lease"),
            }
            tokio::time::sleep(retry).await;
        }
        tracing::info!(identity = %self.identity, lease = %self.name, "leading");
        on_lead(true);
        tokio::pin!(work);
        let mut last_renew = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(retry);
        loop {
            tokio::select! {
                () = &mut work => {
                    on_lead(false);
                    if let Err(err) = self.release().await {
                        tracing::warn!(%err, "could not release the leader Lease");
                    }
                    return Ok(());
                }
                _ = tick.tick() => match self.try_acquire().await {
                    Ok(true) => last_renew = tokio::time::Instant::now(),
                    Ok(false) => {
                        on_lead(false);
                        anyhow::bail!("leadership lost to another replica");
                    }
                    Err(err) if last_renew.elapsed() < self.lease_duration => {
                        tracing::warn!(%err, "lease renewal failed; retrying");
                    }
                    Err(err) => {
                        on_lead(false);
                        anyhow::bail!("could not renew the leader Lease in time: {err}");
                    }
                },
            }
        }
    }
}
