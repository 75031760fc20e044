//! What each subcommand does. `main.rs` only parses and calls [`run`].

mod import;
mod predict;
mod train;

use crate::{
    cli::{Cli, Command, ServeArgs},
    predict::Limits,
    startup::{Application, ServeConfig, shutdown_signal},
    telemetry,
};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Train(args) => tokio::task::spawn_blocking(move || train::run(args)).await?,
        Command::Predict(args) => predict::run(args).await,
        Command::Import(args) => import::run(args).await,
        Command::Objectives(args) => {
            if args.markdown {
                print!("{}", crate::objectives::markdown());
            } else {
                for o in crate::objectives::catalogue() {
                    println!("{:<40} {:<6} {}", o.id, o.unit, o.description);
                }
            }
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = ServeConfig::new(args.listen, args.models);
    config.reload_interval = args.reload_interval;
    config.limits = Limits {
        max_batch: args.max_batch,
        ..Limits::default()
    };
    config.request_timeout = args.request_timeout;
    config.max_request_bytes = args.max_request_bytes;
    config.max_concurrent_requests = args.max_concurrent_requests;
    config.database_url = args.database_url.map(crate::store::DatabaseUrl);
    config.data_dir = args.data_dir;
    config.shutdown_grace = args.shutdown_grace;
    let app = Application::build(config).await?;
    app.run_until_stopped(shutdown_signal()).await
}
