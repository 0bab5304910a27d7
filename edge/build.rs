//! Compiles the wire formats in `proto/` into Rust messages and tonic service code: the client
//! protocol, the server API (the edge serves it) and the proxy API (the edge calls it). protox
//! parses the files, so no `protoc` is needed.

use tonic_prost_build::Builder;

/// Server API messages that carry JSON payloads as bytes: read from the HTTP API's JSON
/// results as the payload's text.
const API_PAYLOADS: &[&str] = &["ClientInfo.conn_info", "ClientInfo.chan_info", "Publication.data", "RPCResult.data"];

fn compile(file: &str, build: Builder) -> Result<(), Box<dyn std::error::Error>> {
    let dir = "../proto";
    println!("cargo:rerun-if-changed={dir}/{file}");
    build.compile_fds(protox::compile([file], [dir])?)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let builder = || tonic_prost_build::configure().build_client(false).build_server(false).build_transport(false);
    compile("client.proto", builder())?;

    let api = ".centrifugal.centrifugo.api";
    let mut build = builder().build_server(true).type_attribute(api, "#[derive(serde::Deserialize)] #[serde(default)]");
    for field in API_PAYLOADS {
        build = build
            .field_attribute(format!("{api}.{field}"), r#"#[serde(deserialize_with = "crate::grpc::json_bytes")]"#);
    }
    compile("api.proto", build)?;

    compile("proxy.proto", builder().build_client(true))?;
    Ok(())
}
