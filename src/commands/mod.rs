//! What each subcommand does. `main.rs` only parses and calls [`run`].

mod bench;
mod eval;
mod import;
pub mod models;
mod predict;
mod retrain;
mod train;

use crate::{
    cli::{Cli, Command, ServeArgs},
    predict::Limits,
    retrain::schedule::Schedule,
    startup::{Application, ServeConfig, TlsFiles, shutdown_signal},
    telemetry,
};

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Train(args) => tokio::task::spawn_blocking(move || train::run(args)).await?,
        Command::Predict(args) => predict::run(args).await,
        Command::Import(args) => import::run(args).await,
        Command::Retrain(args) => retrain::run(args).await,
        Command::Models(command) => models::run(command).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Eval(args) => tokio::task::spawn_blocking(move || eval::run(args)).await?,
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
    let mut config = match args.models {
        Some(dir) => ServeConfig::new(args.listen, dir),
        None => ServeConfig::store_backed(args.listen),
    };
    config.bench = args.bench;
    config.retrain = retrain::config(&args.retrain);
    config.schedule = Schedule {
        interval: (!args.retrain_interval.is_zero()).then_some(args.retrain_interval),
        after: (args.retrain_after > 0).then_some(args.retrain_after),
        check_every: args
            .retrain_check_every
            .max(std::time::Duration::from_millis(10)),
    };
    config.model_poll_interval = args.model_poll_interval;
    config.metrics_listen = args.metrics_listen;
    config.tokens = crate::auth::TokenSources {
        file: args.tokens_file,
        inline: args.tokens,
    };
    config.allow_unauthenticated = args.allow_unauthenticated;
    config.tls = args.tls_cert.zip(args.tls_key).map(|(cert, key)| TlsFiles {
        cert,
        key,
        client_ca: args.tls_client_ca,
    });
    config.reload_interval = args.reload_interval;
    config.limits = Limits {
        max_batch: args.max_batch,
        ..Limits::default()
    };
    config.request_timeout = args.request_timeout;
    config.max_request_bytes = args.max_request_bytes;
    config.max_concurrent_requests = args.max_concurrent_requests;
    config.database_url = args.store.database_url.map(crate::store::DatabaseUrl);
    config.data_dir = args.store.data_dir;
    config.database_max_connections = args.store.database_max_connections;
    config.shutdown_grace = args.shutdown_grace;
    let app = Application::build(config).await?;
    app.run_until_stopped(shutdown_signal()).await
}

async fn open_store(args: &crate::cli::StoreArgs) -> anyhow::Result<crate::store::Store> {
    use anyhow::Context;
    crate::store::Store::open_with_pool(
        args.database_url.as_deref(),
        &args.data_dir,
        args.database_max_connections,
    )
    .await
    .context("opening the evaluation store")
}
