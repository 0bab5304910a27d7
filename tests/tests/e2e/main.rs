//! Gyre's end-to-end tests, one binary: each module spawns real gyre nodes (and nats-server,
//! Node.js, Python clients where it says so) and drives them as a user would.

mod admin;
mod api;
mod bench_tool;
mod browser;
mod channels;
mod chaos;
mod cli;
mod config_watch;
mod cors;
mod delta;
mod emulation;
mod exact;
mod faults;
mod filters;
mod grpc;
mod hardening;
mod interop_js;
mod interop_py;
mod monitoring;
mod nats;
mod operator_config;
mod protobuf;
mod proxy;
mod proxy_grpc;
mod storm_tool;
mod tokens;
mod uni;
mod websocket;
