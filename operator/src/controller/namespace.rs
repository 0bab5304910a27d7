//! Reconciling a `Namespace` object: its cluster programs it; here only a missing cluster is
//! reported (`Accepted=False`, `ClusterNotFound`).

use std::sync::Arc;
use std::time::Duration;

use kube::api::Patch;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::conditions::{merge, now, Want};
use super::{apply, Context, Error};
use crate::crd::{Namespace, NamespaceStatus, RealtimeCluster};

pub async fn reconcile(obj: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = obj.namespace().ok_or_else(|| Error::NotNamespaced(obj.name_any()))?;
    ctx.metrics.reconciles.with_label_values(&["Namespace"]).inc();
    let clusters: Api<RealtimeCluster> = Api::namespaced(ctx.client.clone(), &ns);
    let cluster = &obj.spec.cluster_ref.name;
    if clusters.get_metadata_opt(cluster).await?.is_some() {
        // The cluster's reconcile sets Accepted and Programmed.
        ctx.succeeded(&super::key_of("Namespace", obj.as_ref()));
        return Ok(Action::await_change());
    }
    let message = format!("RealtimeCluster {cluster:?} not found in namespace {ns:?}");
    let wants = [
        Want::new("Accepted", false, "ClusterNotFound", message.clone()),
        Want::new("Programmed", false, "ClusterNotFound", message),
    ];
    let current = obj.status.clone().unwrap_or_default();
    let generation = obj.meta().generation;
    let status = NamespaceStatus {
        observed_generation: generation,
        conditions: merge(&current.conditions, &wants, generation, &now()),
        resolved_name: Some(crate::render::namespaces::resolved_name(&obj)),
    };
    patch_status(&ctx, &obj, &current, status).await?;
    ctx.succeeded(&super::key_of("Namespace", obj.as_ref()));
    Ok(Action::requeue(Duration::from_secs(60)))
}

/// Applies `next` as the object's status when it differs from `current`.
pub async fn patch_status(
    ctx: &Context,
    obj: &Namespace,
    current: &NamespaceStatus,
    next: NamespaceStatus,
) -> Result<(), Error> {
    if &next == current {
        return Ok(());
    }
    let api: Api<Namespace> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let patch = json!({"apiVersion": "gyre.dev/v1alpha1", "kind": "Namespace", "status": next});
    api.patch_status(&obj.name_any(), &apply::params(), &Patch::Apply(&patch)).await?;
    Ok(())
}
