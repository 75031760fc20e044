use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    nasperf::commands::run(nasperf::cli::Cli::parse()).await
}
