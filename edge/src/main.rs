fn main() -> std::process::ExitCode {
    gyre_edge::cli::main()
}
