//! The `gyre` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rand::distr::{Alphanumeric, SampleString};

use crate::auth::{mint_connection_token, TokenVerifier};
use crate::config::{self, Config, Format};
use crate::node::VERSION;

#[derive(Parser)]
#[command(name = "gyre", version = VERSION, about = "Gyre: a Centrifugo-compatible real-time messaging server")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args, Clone, Default)]
struct ServeArgs {
    /// Config file (JSON, YAML or TOML by extension). Without one, a development node starts
    /// with fresh secrets.
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    /// Client port (overrides `port`).
    #[arg(short, long)]
    port: Option<u16>,
    /// Bind address (overrides `address`).
    #[arg(short, long)]
    address: Option<String>,
    /// API/metrics/health port (overrides `internal_port`).
    #[arg(long)]
    internal_port: Option<u16>,
    /// Log level (overrides `log_level`).
    #[arg(long, value_parser = log_level_parser())]
    log_level: Option<config::LogLevel>,
}

/// `--log-level`: the config's level names, offered by clap as its possible values and read
/// by the config's own deserializer (one definition of the names).
fn log_level_parser() -> impl clap::builder::TypedValueParser<Value = config::LogLevel> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(["trace", "debug", "info", "warn", "error", "none"])
        .try_map(|name| serde_json::from_value::<config::LogLevel>(serde_json::Value::String(name)))
}

#[derive(Subcommand)]
enum Command {
    /// Run a node (the default).
    Serve(ServeArgs),
    /// Write a new config file with random secrets (refuses to overwrite).
    Genconfig {
        /// Target file; its extension picks JSON, YAML or TOML.
        #[arg(default_value = "config.json")]
        file: PathBuf,
    },
    /// Validate a config file and print every problem.
    Checkconfig { file: PathBuf },
    /// Mint a connection token signed with the config's HMAC secret.
    Gentoken {
        #[arg(short, long)]
        user: String,
        /// Lifetime such as "1h" or "3600" (seconds); "0" for no expiry.
        #[arg(short, long, default_value = "168h")]
        ttl: String,
        /// Print only the token.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Verify a connection token against the config.
    Checktoken { token: String },
    /// Print the version.
    Version,
}

/// Entry point of the `gyre` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(mut args)) => {
            args.config = args.config.or(cli.serve.config);
            serve(args)
        }
        Some(Command::Genconfig { file }) => genconfig(&file),
        Some(Command::Checkconfig { file }) => checkconfig(&file),
        Some(Command::Gentoken { user, ttl, quiet }) => gentoken(cli.serve.config.as_deref(), &user, &ttl, quiet),
        Some(Command::Checktoken { token }) => checktoken(cli.serve.config.as_deref(), &token),
        Some(Command::Version) => {
            println!("gyre {VERSION}");
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn random_secret() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), 32)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let dev = args.config.is_none();
    let path = args.config.clone();
    let mut config = config::load(args.config.as_deref())?;
    if let Some(p) = args.port {
        config.port = p;
    }
    if let Some(a) = args.address {
        config.address = a;
    }
    if args.internal_port.is_some() {
        config.internal_port = args.internal_port;
    }
    if let Some(l) = args.log_level {
        config.log_level = l;
    }
    crate::logging::init(config.log_level, config.log_format);
    if dev {
        dev_defaults(&mut config)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(crate::server::run(config, path))
}

/// Without a config file: fresh secrets (logged once) and open top-level channels, so one
/// command gives something to connect to.
fn dev_defaults(config: &mut Config) -> anyhow::Result<()> {
    if config.token_hmac_secret_key.is_empty() {
        config.token_hmac_secret_key = random_secret();
    }
    if config.api_key.is_empty() {
        config.api_key = random_secret();
    }
    config.channel.allow_subscribe_for_client = true;
    config.channel.allow_publish_for_subscriber = true;
    let token = mint_connection_token(&config.token_hmac_secret_key, "demo", Some(24 * 3600), serde_json::Value::Null)?;
    tracing::warn!(
        api_key = %config.api_key,
        token_hmac_secret_key = %config.token_hmac_secret_key,
        sample_token_user_demo = %token,
        "no config file: development node with fresh secrets; top-level channels open to subscribers"
    );
    Ok(())
}

fn genconfig(file: &Path) -> anyhow::Result<()> {
    if file.exists() {
        anyhow::bail!("{} already exists; not overwriting it", file.display());
    }
    let value = serde_json::json!({
        "token_hmac_secret_key": random_secret(),
        "api_key": random_secret(),
        "allowed_origins": [],
        "namespaces": [{
            "name": "chat",
            "allow_subscribe_for_client": true,
            "allow_publish_for_subscriber": true,
            "presence": true,
            "join_leave": true,
            "history_size": 100,
            "history_ttl": "300s",
            "force_recovery": true
        }]
    });
    let text = match Format::from_path(file) {
        Format::Json => serde_json::to_string_pretty(&value)? + "\n",
        Format::Yaml => serde_yaml::to_string(&value)?,
        Format::Toml => toml::to_string_pretty(&value)?,
    };
    config::load_str(&text, Format::from_path(file), &file.display().to_string())?;
    std::fs::write(file, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
    println!("wrote {}", file.display());
    Ok(())
}

fn checkconfig(file: &Path) -> anyhow::Result<()> {
    config::load(Some(file))?;
    println!("{}: valid", file.display());
    Ok(())
}

fn load_for_tokens(file: Option<&Path>) -> anyhow::Result<Config> {
    let default = config::default_path();
    let path = file.or_else(|| default.exists().then_some(default.as_path()));
    let config = config::load(path)?;
    if config.token_hmac_secret_key.is_empty() {
        anyhow::bail!("no token_hmac_secret_key configured (pass --config FILE)");
    }
    Ok(config)
}

fn gentoken(file: Option<&Path>, user: &str, ttl: &str, quiet: bool) -> anyhow::Result<()> {
    let config = load_for_tokens(file)?;
    let ttl = config::parse_duration(ttl).map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
    let ttl_secs = (!ttl.is_zero()).then_some(ttl.as_secs() as i64);
    let token = mint_connection_token(&config.token_hmac_secret_key, user, ttl_secs, serde_json::Value::Null)?;
    if quiet {
        println!("{token}");
    } else {
        let lifetime = ttl_secs.map_or("no expiry".to_string(), |s| format!("expires in {s}s"));
        println!("HMAC SHA-256 token for user {user:?} ({lifetime}):\n{token}");
    }
    Ok(())
}

fn checktoken(file: Option<&Path>, token: &str) -> anyhow::Result<()> {
    let config = load_for_tokens(file)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let claims = runtime.block_on(TokenVerifier::new(&config).verify_connect(token))?;
    let expiry = claims.expires_at().map_or("never expires".to_string(), |at| format!("expires at unix {at}"));
    println!("valid token for user {:?}, {expiry}", claims.sub);
    Ok(())
}
