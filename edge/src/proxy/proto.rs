//! Messages and client of the gRPC proxy API, generated from `proto/proxy.proto` at build time.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/centrifugal.centrifugo.proxy.rs"));
