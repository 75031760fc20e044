//! `nasperf eval`: the prediction-quality protocol, its reference run and
//! its report (Markdown, JSON, PNG figures).

use anyhow::{Context, bail};
use indicatif::ProgressBar;

use crate::{
    cli::EvalArgs,
    commands::train::select_objectives,
    eval::{self, plot, reference, report},
    train::recipe::{Candidate, Choice, Recipe},
};

/// The objectives of docs/quality.md: accuracy, two attacks, three devices.
pub const DEFAULT_OBJECTIVES: [&str; 6] = [
    "cifar10/val_acc_200ep",
    "cifar10/fgsm_eps1",
    "cifar10/pgd_eps1",
    "cifar10/edgegpu_latency",
    "cifar10/raspi4_latency",
    "cifar10/eyeriss_energy",
];

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let ids: Vec<String> = if args.objectives.is_empty() {
        DEFAULT_OBJECTIVES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        args.objectives.clone()
    };
    let objectives = select_objectives(&ids)?;
    if args.train_sizes.is_empty() || args.train_sizes.contains(&0) {
        bail!("--train-sizes needs sizes of at least 1");
    }
    if args.seeds == 0 {
        bail!("--seeds needs at least 1");
    }
    // Checked before our side's minutes of fitting, not after them.
    if !args.no_reference && !args.reference_script.is_file() {
        bail!(
            "no reference runner at {} (--reference-script; the default is relative to the \
             repository's root), or pass --no-reference",
            args.reference_script.display()
        );
    }
    let seeds_end = args
        .first_seed
        .checked_add(args.seeds)
        .context("--first-seed plus --seeds is past the largest seed")?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let mut recipe = Recipe::default();
    if !args.candidates.is_empty() {
        recipe.choices = args
            .candidates
            .iter()
            .map(|name| {
                Choice::named(name).with_context(|| {
                    let known: Vec<&str> = Candidate::all().iter().map(|c| c.name).collect();
                    format!(
                        "unknown candidate in {name:?}; known: {} (join them with + for their mean)",
                        known.join(", ")
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?;
    }
    // Margins and a share: each a finite number of at least 0.
    for (flag, value, into) in [
        (
            "--selection-margin",
            args.selection_margin,
            &mut recipe.selection_margin,
        ),
        (
            "--family-selection-margin",
            args.family_selection_margin,
            &mut recipe.family_selection_margin,
        ),
        (
            "--family-default-floor-share",
            args.family_default_floor_share,
            &mut recipe.family_default_floor_share,
        ),
    ] {
        if let Some(value) = value {
            if !(value.is_finite() && value >= 0.0) {
                bail!("{flag} must be a finite number of at least 0, got {value}");
            }
            *into = value;
        }
    }
    if let Some(rows) = args.family_max_rows {
        recipe.family_max_rows = rows;
    }
    if let Some(rows) = args.fresh_calibration_max_rows {
        recipe.fresh_calibration_max_rows = rows;
    }
    let protocol = eval::Protocol {
        objectives,
        train_sizes: args.train_sizes.clone(),
        seeds: (args.first_seed..seeds_end).collect(),
        feature_sets: args.feature_sets.clone(),
        recipe,
        jobs,
        without_proxies: args.without_proxies,
    };
    let data = eval::load(&args.bench, &protocol.objectives)
        .with_context(|| format!("reading the tables under {}", args.bench.display()))?;
    for d in &data {
        eprintln!("{}: {} networks", d.objective.id, d.len());
    }
    let stand_ins = report::proxy_stand_ins(&data);

    let bar = ProgressBar::new(0);
    let outcome = eval::run(&protocol, &data, &bar)?;
    bar.finish_and_clear();
    eprintln!(
        "our side: {} fits in {:.0} s",
        outcome.runs.len(),
        outcome.seconds
    );

    let references = if args.no_reference {
        Vec::new()
    } else {
        let r = reference::Reference {
            python: args.reference_python.clone(),
            script: args.reference_script.clone(),
            feature_sets: args.reference_feature_sets.clone(),
            models: args.reference_models.clone(),
        };
        let bar = ProgressBar::new(0);
        let started = std::time::Instant::now();
        let jobs_dir = args.out.join("reference");
        let runs = reference::run(
            &r,
            &data,
            &protocol.train_sizes,
            &protocol.seeds,
            &jobs_dir,
            &bar,
        )?;
        bar.finish_and_clear();
        eprintln!(
            "reference: {} fits in {:.0} s",
            runs.len(),
            started.elapsed().as_secs_f64()
        );
        runs
    };

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let cells = report::cells(&outcome.runs, &references);
    let mut figures = Vec::new();
    let tau_png = "quality-tau.png";
    let scatter_png = "quality-scatter.png";
    let drawn = plot::tau_by_train_size(&cells, &args.out.join(tau_png))
        .and_then(|()| plot::predicted_vs_true(&outcome.scatters, &args.out.join(scatter_png)));
    match drawn {
        Ok(()) => figures.extend([tau_png.to_owned(), scatter_png.to_owned()]),
        // The figures are for people; the tables still hold every number.
        Err(e) => eprintln!("warning: no figures: {e}"),
    }
    let command = std::env::args()
        .map(|a| {
            if a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let markdown = report::markdown(&cells, &command, outcome.seconds, &figures, &stand_ins);
    let md_path = args.out.join("quality.md");
    std::fs::write(&md_path, &markdown)
        .with_context(|| format!("writing {}", md_path.display()))?;
    let json = serde_json::json!({
        "command": command,
        "seconds": outcome.seconds,
        "cells": cells,
        // Which dataset's proxies each objective read (null: none).
        "proxy_datasets": data
            .iter()
            .map(|d| (d.objective.id.as_str(), d.proxy_dataset.map(|p| p.name())))
            .collect::<std::collections::BTreeMap<_, _>>(),
        "runs": outcome.runs,
        "reference_runs": references,
    });
    let json_path = args.out.join("quality.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!("{markdown}");
    eprintln!("report: {}", md_path.display());
    Ok(())
}
