//! Compiles the wire formats in `proto/` for the test clients and test backends, independently
//! of the edge's own build of the same files.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = ["client.proto"];
    let dir = "../proto";
    for file in files {
        println!("cargo:rerun-if-changed={dir}/{file}");
    }
    let descriptors = protox::compile(files, [dir])?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(descriptors)?;
    Ok(())
}
