//! Reconciling a `RealtimeCluster`: render, check Secrets, apply every child with one field
//! manager, delete disabled ones, program its `Namespace` objects, report status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{ListParams, Patch};
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::apply::{self, apply, delete};
use super::conditions::{merge, now, Want};
use super::{Context, Error};
use crate::crd::cluster::NamespacesStatus;
use crate::crd::{Namespace, NamespaceStatus, RealtimeCluster, RealtimeClusterStatus};
use crate::render::names::{Names, MANAGER};
use crate::render::{self, monitoring, Rendered};

/// Field manager that holds `spec.replicas` while an HPA takes it over.
const HANDOFF_MANAGER: &str = "gyre-operator-handoff";

/// Resync even without events.
const RESYNC: Duration = Duration::from_secs(300);

/// What the apply step found besides errors.
#[derive(Default)]
struct Applied {
    deployment: Option<Deployment>,
    service_monitor_missing: bool,
}

pub async fn reconcile(cluster: Arc<RealtimeCluster>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let ns = cluster.namespace().ok_or_else(|| Error::NotNamespaced(cluster.name_any()))?;
    let name = cluster.name_any();
    let client = &ctx.client;
    ctx.metrics.reconciles.with_label_values(&["RealtimeCluster"]).inc();

    let all: Api<Namespace> = Api::namespaced(client.clone(), &ns);
    let mine: Vec<Namespace> =
        all.list(&ListParams::default()).await?.items.into_iter().filter(|n| n.spec.cluster_ref.name == name).collect();

    let rendered = match render::render(&cluster, &mine) {
        Ok(r) => r,
        Err(message) => {
            tracing::info!(cluster = %name, %message, "spec refused");
            not_reconciled(&ctx, &cluster, "InvalidSpec", message).await?;
            return Ok(Action::await_change());
        }
    };

    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut missing = Vec::new();
    for s in &rendered.secrets {
        if secrets.get_metadata_opt(s).await?.is_none() {
            missing.push(s.clone());
        }
    }
    if !missing.is_empty() {
        let message = format!("Secret(s) not found: {}", missing.join(", "));
        not_reconciled(&ctx, &cluster, "SecretNotFound", message).await?;
        return Ok(Action::requeue(Duration::from_secs(30)));
    }

    let applied = apply_children(&ctx, &cluster, &ns, &rendered).await?;
    program_namespaces(&ctx, &mine, &rendered).await?;
    let status = cluster_status(&cluster, &rendered, &applied);
    patch_cluster_status(&ctx, &cluster, |s| *s = status.clone()).await?;
    ctx.succeeded(&super::key_of("RealtimeCluster", cluster.as_ref()));
    ctx.metrics.duration.with_label_values(&["RealtimeCluster"]).observe(started.elapsed().as_secs_f64());
    Ok(Action::requeue(RESYNC))
}

/// Reports why nothing was applied (`Reconciled` and `Ready` false with `reason`).
async fn not_reconciled(
    ctx: &Context,
    cluster: &RealtimeCluster,
    reason: &'static str,
    message: String,
) -> Result<(), Error> {
    let wants = [Want::new("Reconciled", false, reason, message.clone()), Want::new("Ready", false, reason, message)];
    patch_cluster_status(ctx, cluster, |s| s.conditions = merge(&s.conditions, &wants, generation(cluster), &now()))
        .await
}

fn generation(cluster: &RealtimeCluster) -> Option<i64> {
    cluster.meta().generation
}

/// Applies in dependency order: config, Services, Deployment, then the optional children.
async fn apply_children(ctx: &Context, cluster: &RealtimeCluster, ns: &str, r: &Rendered) -> Result<Applied, Error> {
    let client = &ctx.client;
    let name = Names::of(cluster).edge();
    apply(client, ns, &r.config_map).await?;
    apply(client, ns, &r.client_service).await?;
    apply(client, ns, &r.internal_service).await?;
    if r.deployment.spec.as_ref().is_some_and(|s| s.replicas.is_none()) {
        hand_off_replicas(ctx, ns, &name).await?;
    }
    let deployment = apply(client, ns, &r.deployment).await?;
    match &r.hpa {
        Some(h) => drop(apply(client, ns, h).await?),
        None => delete::<HorizontalPodAutoscaler>(client, ns, &name).await?,
    }
    match &r.pdb {
        Some(p) => drop(apply(client, ns, p).await?),
        None => delete::<PodDisruptionBudget>(client, ns, &name).await?,
    }
    let monitors = apply::dynamic_api(client, ns, monitoring::API_VERSION, monitoring::KIND, "servicemonitors");
    let mut service_monitor_missing = false;
    match &r.service_monitor {
        Some(sm) => match monitors.patch(&name, &apply::params(), &Patch::Apply(sm)).await {
            Ok(_) => {}
            // The kind does not exist: Prometheus operator not installed.
            Err(e) if apply::is_not_found(&e) => service_monitor_missing = true,
            Err(e) => return Err(e.into()),
        },
        None => match monitors.delete(&name, &Default::default()).await {
            Ok(_) => {}
            Err(e) if apply::is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        },
    }
    Ok(Applied { deployment: Some(deployment), service_monitor_missing })
}

/// Before the Deployment is applied without `replicas` (an HPA owns it), a second field
/// manager takes `spec.replicas` at its current value; otherwise dropping the field from our
/// apply would reset the Deployment to one replica.
async fn hand_off_replicas(ctx: &Context, ns: &str, name: &str) -> Result<(), Error> {
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    let Some(live) = api.get_opt(name).await? else { return Ok(()) };
    let ours = live.metadata.managed_fields.iter().flatten().any(|m| {
        m.manager.as_deref() == Some(MANAGER)
            && m.fields_v1.as_ref().is_some_and(|f| f.0.get("f:spec").and_then(|s| s.get("f:replicas")).is_some())
    });
    if !ours {
        return Ok(());
    }
    let replicas = live.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let patch = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name}, "spec": {"replicas": replicas}});
    let params = kube::api::PatchParams::apply(HANDOFF_MANAGER).force();
    api.patch(name, &params, &Patch::Apply(&patch)).await?;
    Ok(())
}

/// Sets `Accepted` and `Programmed` on every `Namespace` object of the cluster.
async fn program_namespaces(ctx: &Context, objects: &[Namespace], r: &Rendered) -> Result<(), Error> {
    for obj in objects {
        let object = obj.name_any();
        let wants = match r.rejected.iter().find(|x| x.object == object) {
            Some(x) => vec![
                Want::new("Accepted", false, x.reason, x.message.clone()),
                Want::new("Programmed", false, x.reason, "not in the cluster's config"),
            ],
            None => vec![
                Want::new("Accepted", true, "Accepted", ""),
                Want::new(
                    "Programmed",
                    true,
                    "Programmed",
                    format!("in the edges' config (hash {})", &r.config_hash[..12]),
                ),
            ],
        };
        let current = obj.status.clone().unwrap_or_default();
        let status = NamespaceStatus {
            observed_generation: obj.meta().generation,
            conditions: merge(&current.conditions, &wants, obj.meta().generation, &now()),
            resolved_name: Some(render::namespaces::resolved_name(obj)),
        };
        super::namespace::patch_status(ctx, obj, &current, status).await?;
    }
    Ok(())
}

fn cluster_status(cluster: &RealtimeCluster, r: &Rendered, applied: &Applied) -> RealtimeClusterStatus {
    let current = cluster.status.clone().unwrap_or_default();
    let d = applied.deployment.as_ref().and_then(|d| d.status.clone()).unwrap_or_default();
    let desired = applied.deployment.as_ref().and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas).unwrap_or(0);
    let ready = d.ready_replicas.unwrap_or(0);
    let available = d.available_replicas.unwrap_or(0);
    let updated = d.updated_replicas.unwrap_or(0);
    let (avail_ok, avail_reason, avail_msg) = if available == 0 && desired > 0 {
        (false, "NoReplicasReady", format!("0 of {desired} edges available"))
    } else if ready < desired || updated < desired {
        (true, "SomeReplicasNotReady", format!("{ready} of {desired} edges ready, {updated} updated"))
    } else {
        (true, "AllReplicasReady", format!("{ready} edges ready"))
    };
    let (rec_reason, rec_msg) = if applied.service_monitor_missing {
        (
            "ServiceMonitorCRDMissing",
            "applied; ServiceMonitor skipped: monitoring.coreos.com/v1 is not installed".to_string(),
        )
    } else {
        ("Applied", "every child applied".to_string())
    };
    let all_ready = avail_ok && avail_reason == "AllReplicasReady";
    let wants = [
        Want::new("Reconciled", true, rec_reason, rec_msg),
        Want::new("Available", avail_ok, avail_reason, avail_msg.clone()),
        Want::new("Ready", all_ready, if all_ready { "Ready" } else { avail_reason }, avail_msg),
    ];
    RealtimeClusterStatus {
        observed_generation: generation(cluster),
        conditions: merge(&current.conditions, &wants, generation(cluster), &now()),
        replicas: Some(d.replicas.unwrap_or(0)),
        ready_replicas: Some(ready),
        updated_replicas: Some(updated),
        available_replicas: Some(available),
        selector: Some(Names::of(cluster).selector_string()),
        config_hash: Some(r.config_hash.clone()),
        namespaces: Some(NamespacesStatus {
            count: i32::try_from(r.namespace_names.len()).unwrap_or(i32::MAX),
            names: r.namespace_names.clone(),
        }),
    }
}

/// Applies the status computed by `update` from the current one, only when it changed.
async fn patch_cluster_status(
    ctx: &Context,
    cluster: &RealtimeCluster,
    update: impl FnOnce(&mut RealtimeClusterStatus),
) -> Result<(), Error> {
    let current = cluster.status.clone().unwrap_or_default();
    let mut next = current.clone();
    update(&mut next);
    next.observed_generation = generation(cluster);
    if next == current {
        return Ok(());
    }
    let api: Api<RealtimeCluster> = Api::namespaced(ctx.client.clone(), &cluster.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": "gyre.dev/v1alpha1",
        "kind": "RealtimeCluster",
        "status": next,
    });
    api.patch_status(&cluster.name_any(), &apply::params(), &Patch::Apply(&patch)).await?;
    Ok(())
}
