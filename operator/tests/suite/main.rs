//! The operator's tests, one binary: CRDs and generated files, rendering against golden
//! manifests, reconciles against kube's mock service, schema validation and real helm.

mod common;
mod controller;
mod crds;
mod helm;
mod reconcile;
mod render;
mod schemas;
