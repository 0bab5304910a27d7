//! The `gyre` entry point, built inside the test package so tests always run a fresh binary.
fn main() -> std::process::ExitCode {
    gyre_edge::cli::main()
}
