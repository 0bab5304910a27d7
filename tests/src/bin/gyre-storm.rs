//! Reconnect-storm benchmark: see `gyre-storm --help` and BENCHMARKS.md.
fn main() -> anyhow::Result<()> {
    gyre_tests::storm::main()
}
