//! Messages of the Protobuf client protocol, generated from `proto/client.proto` at build time.
//! Unknown fields are skipped on decode, so newer clients stay compatible.

#![allow(missing_docs, clippy::all)]

include!(concat!(env!("OUT_DIR"), "/centrifugal.centrifuge.protocol.rs"));
