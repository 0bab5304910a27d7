//! Load tool: see `gyre-bench --help` and BENCHMARKS.md.
fn main() -> anyhow::Result<()> {
    gyre_tests::bench::main()
}
