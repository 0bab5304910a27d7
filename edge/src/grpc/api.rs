//! Messages and service trait of the gRPC server API, generated from `proto/api.proto` at build
//! time. Result messages also deserialize from the HTTP API's JSON results (see
//! [`super::answer`]), payloads as the bytes of their JSON text.

#![allow(missing_docs, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/centrifugal.centrifugo.api.rs"));
