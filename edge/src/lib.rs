//! Gyre edge node: a Centrifugo-compatible real-time messaging server.
//!
//! The layout follows the design notes: `config` → `protocol` → `session` (one connection)
//! → `node` (hub and the one publish path) → `engine` (broker and presence traits);
//! `transport`, `api` and `admin` (the web UI) are thin adapters, `proxy` asks the
//! application backend, `server` wires listeners.

pub mod admin;
pub mod api;
pub mod auth;
pub mod cli;
pub use gyre_config as config;
pub mod connection;
pub mod engine;
pub mod grpc;
pub mod internode;
pub mod json_object;
pub mod limit;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod node;
pub mod protocol;
pub mod proxy;
pub mod server;
pub mod session;
pub mod transport;
