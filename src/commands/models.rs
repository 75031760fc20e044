//! `nasperf models list | export DIR | import DIR`: the versions in the
//! store, and moving them as model directories.

use anyhow::{Context, bail};

use crate::{
    cli::ModelsCommand,
    model::{MANIFEST_SUFFIX, Model},
    registry::find_manifests,
    space::SearchSpaces,
    store::{Store, StoreError, models::NewModel},
    train::{TrainedModel, write_model},
};

pub async fn run(command: ModelsCommand) -> anyhow::Result<()> {
    match command {
        ModelsCommand::List(args) => {
            let store = super::open_store(&args.store).await?;
            let models = store.list_models(&args.study, &args.objective).await?;
            println!(
                "{:<12} {:<36} {:<28} {:<9} {:>6} {:>7} {:>7}  decision",
                "study", "objective", "version", "status", "rows", "tau", "serving"
            );
            for m in &models {
                println!(
                    "{:<12} {:<36} {:<28} {:<9} {:>6} {:>7.3} {:>7}  {}",
                    m.study,
                    m.objective,
                    m.version,
                    m.status.as_str(),
                    m.manifest.training_rows,
                    m.manifest.heldout.kendall_tau,
                    m.baseline_kendall_tau
                        .map_or_else(|| "-".to_owned(), |t| format!("{t:.3}")),
                    m.decision
                );
            }
            store.close().await;
            Ok(())
        }
        ModelsCommand::Export(args) => {
            let store = super::open_store(&args.store).await?;
            let n = export(&store, &args.study, &args.dir).await?;
            store.close().await;
            println!(
                "wrote {n} serving versions of study {} to {}",
                args.study,
                args.dir.display()
            );
            Ok(())
        }
        ModelsCommand::Import(args) => {
            let store = super::open_store(&args.store).await?;
            let n = import(&store, &args.study, &args.dir, args.pin).await?;
            store.close().await;
            println!(
                "imported {n} versions into study {}{}",
                args.study,
                if args.pin { ", pinned" } else { "" }
            );
            Ok(())
        }
    }
}

/// Writes the serving versions of `study` as a model directory. Returns
/// how many.
pub async fn export(store: &Store, study: &str, dir: &std::path::Path) -> anyhow::Result<usize> {
    let mut n = 0;
    for v in store.serving_versions().await? {
        if v.study != study {
            continue;
        }
        let (manifest, model_text) = store.model_text(&v.study, &v.objective, &v.version).await?;
        let model = TrainedModel {
            manifest,
            model_text,
        };
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || write_model(&dir, &model))
            .await
            .context("writing a model")??;
        n += 1;
    }
    Ok(n)
}

/// Loads every model of a model directory into `study`, validated as the
/// server would, and makes them serve. Returns how many; an error if some
/// could not serve because a pinned version holds their objective (they
/// are stored as candidates).
pub async fn import(
    store: &Store,
    study: &str,
    dir: &std::path::Path,
    pin: bool,
) -> anyhow::Result<usize> {
    let root = dir.to_owned();
    let models = tokio::task::spawn_blocking(move || read_model_dir(&root))
        .await
        .context("reading the model directory")??;
    if models.is_empty() {
        bail!(
            "{} holds no models (<dataset>/<metric>{MANIFEST_SUFFIX})",
            dir.display()
        );
    }
    match store
        .create_study(study, "created by `nasperf models import`")
        .await
    {
        Ok(_) | Err(StoreError::StudyExists(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let mut held_by_pins = Vec::new();
    for (model, text) in &models {
        let saved = store
            .save_model(NewModel {
                study,
                manifest: &model.manifest,
                model_text: text,
                baseline_kendall_tau: None,
                promote: true,
                pin,
                decision: format!("imported from {}", dir.display()),
                max_evaluation_id: 0,
            })
            .await?;
        if !saved.status.serves() {
            held_by_pins.push(model.manifest.objective.clone());
        }
    }
    if !held_by_pins.is_empty() {
        bail!(
            "imported {} versions, but {} stay candidates because a pinned version serves: {} \
             (import with --pin, or UnpinModel first)",
            models.len(),
            held_by_pins.len(),
            held_by_pins.join(", ")
        );
    }
    Ok(models.len())
}

/// Every manifest under `dir` (the registry's layout) with its model text,
/// validated.
fn read_model_dir(dir: &std::path::Path) -> anyhow::Result<Vec<(Model, String)>> {
    let spaces = SearchSpaces::builtin();
    let manifests = find_manifests(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut out = Vec::new();
    for path in manifests.into_values() {
        let model = Model::load(&path, &spaces)?;
        let text = std::fs::read_to_string(path.with_file_name(&model.manifest.model_file))?;
        out.push((model, text));
    }
    Ok(out)
}
