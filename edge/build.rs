//! Compiles the wire formats in `proto/` (client protocol, server API, proxy API) into Rust
//! messages and tonic service traits; protox parses the files, so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["client.proto"];
    let dir = "../proto";
    for file in files {
        println!("cargo:rerun-if-changed={dir}/{file}");
    }
    let descriptors = protox::compile(files, [dir])?;
    tonic_prost_build::configure().build_client(false).build_server(true).compile_fds(descriptors)?;
    Ok(())
}
