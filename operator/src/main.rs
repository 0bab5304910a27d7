//! `gyre-operator`: run the controllers (default), or print the CRDs.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use gyre_operator::crd::RealtimeCluster;
use gyre_operator::http::Health;
use gyre_operator::leader::Election;
use gyre_operator::metrics::Metrics;
use kube::api::ListParams;
use kube::{Api, Client};

#[derive(Parser)]
#[command(name = "gyre-operator", version, about = "Kubernetes operator for Gyre edge fleets")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Watch only this Kubernetes namespace (default: all).
    #[arg(long, env = "GYRE_OPERATOR_WATCH_NAMESPACE", global = true)]
    namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "GYRE_OPERATOR_HTTP_ADDR", default_value = "0.0.0.0:8080", global = true)]
    http_addr: String,
    /// Namespace of the leader Lease (the operator's own; empty disables leader election).
    #[arg(long, env = "POD_NAMESPACE", default_value = "", global = true)]
    lease_namespace: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME", default_value = "", global = true)]
    identity: String,
    /// Log format: text or json.
    #[arg(long, env = "GYRE_OPERATOR_LOG_FORMAT", default_value = "text", global = true)]
    log_format: String,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controllers (the default).
    Run,
    /// Print the CustomResourceDefinitions (YAML) to apply before running the operator.
    Crd,
    /// Print the operator's RBAC rules (ClusterRole, and the Role for its leader Lease).
    Rbac {
        /// Namespace the operator runs in (for the Lease Role).
        #[arg(long, default_value = "gyre-system")]
        operator_namespace: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd) => emit(&gyre_operator::crd::crds_yaml()?),
        Some(Command::Rbac { operator_namespace }) => emit(&gyre_operator::rbac::yaml(&operator_namespace)?),
        Some(Command::Run) | None => run(cli).await,
    }
}

/// Writes generated YAML to stdout; a closed pipe (`| head`) is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to stdout"),
        _ => Ok(()),
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    init_logging(&cli.log_format);
    let metrics = Arc::new(Metrics::new()?);
    let health = Arc::new(Health { metrics: metrics.clone(), ready: false.into() });
    let listener = tokio::net::TcpListener::bind(&cli.http_addr)
        .await
        .with_context(|| format!("cannot listen on {} (--http-addr)", cli.http_addr))?;
    let app = gyre_operator::http::router(health.clone());
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%err, "http server failed");
        }
    });

    let client =
        Client::try_default().await.context("no Kubernetes client configuration (in-cluster or kubeconfig)")?;
    // Fail early with a hint when the CRDs are missing.
    let clusters: Api<RealtimeCluster> = Api::all(client.clone());
    clusters
        .list(&ListParams::default().limit(1))
        .await
        .context("cannot list RealtimeClusters: are the CRDs installed? (gyre-operator crd | kubectl apply -f -)")?;
    health.ready.store(true, Ordering::Relaxed);

    let work = gyre_operator::controller::run(client.clone(), metrics.clone(), cli.namespace.clone());
    if cli.lease_namespace.is_empty() {
        tracing::warn!("leader election off (no POD_NAMESPACE): run a single replica");
        metrics.leader.set(1);
        work.await;
        return Ok(());
    }
    let identity = if cli.identity.is_empty() { format!("gyre-operator-{}", std::process::id()) } else { cli.identity };
    let election = Election {
        api: Api::namespaced(client, &cli.lease_namespace),
        name: "gyre-operator".to_string(),
        identity,
        lease_duration: Duration::from_secs(15),
    };
    election.lead(work, |leading| metrics.leader.set(i64::from(leading))).await
}
