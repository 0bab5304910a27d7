//! Compiles the wire formats in `proto/` for the test clients (client protocol, server API) and
//! test backends (proxy API), independently of the edge's own build of the same files.

use tonic_prost_build::Builder;

fn compile(file: &str, build: Builder) -> Result<(), Box<dyn std::error::Error>> {
    let dir = "../proto";
    println!("cargo:rerun-if-changed={dir}/{file}");
    build.compile_fds(protox::compile([file], [dir])?)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let builder = || tonic_prost_build::configure().build_client(false).build_server(false).build_transport(false);
    compile("client.proto", builder())?;
    compile("api.proto", builder().build_client(true))?;
    compile("proxy.proto", builder().build_server(true))?;
    Ok(())
}
