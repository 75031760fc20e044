//! `nasperf bench --quick`, the smoke run of the performance suite: it
//! completes, and its JSON holds every section with a baseline beside each
//! figure. No timing is asserted: these machines are noisy.

mod common;

#[test]
fn the_quick_benchmark_completes_and_writes_every_section_as_json() {
    let out = tempfile::tempdir().expect("dir");
    let json = out.path().join("bench.json");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_nasperf"))
        .args(["bench", "--quick", "--bench"])
        .arg(common::benchdata())
        .arg("--json")
        .arg(&json)
        .arg("--postgres")
        .arg(common::postgres_admin_url())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run nasperf bench");
    assert!(status.success(), "nasperf bench --quick failed: {status}");

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON report"))
            .expect("valid JSON");
    assert_eq!(report["quick"], true);
    assert!(
        report["skipped"].as_array().is_some_and(Vec::is_empty),
        "skipped: {}",
        report["skipped"]
    );
    let figures = report["figures"].as_array().expect("figures");
    let sections: std::collections::BTreeSet<&str> = figures
        .iter()
        .filter_map(|f| f["section"].as_str())
        .collect();
    for section in [
        "retrain",
        "equality",
        "evaluation",
        "grpc",
        "hot reload",
        "memory",
        "ingest",
    ] {
        assert!(
            sections.contains(section),
            "no {section} figures: {sections:?}"
        );
    }
    for f in figures {
        let value = f["value"].as_f64().expect("a numeric value");
        assert!(value.is_finite() && value >= 0.0, "{f}");
        // Every figure but the equality check has a baseline from the run.
        if f["section"] != "equality" {
            let baseline = f["baseline"]["value"].as_f64().unwrap_or(f64::NAN);
            assert!(baseline.is_finite() && baseline > 0.0, "no baseline: {f}");
            assert!(f["ratio"].as_f64().is_some(), "no ratio: {f}");
        }
    }
    // The equality check is a correctness bar, met in every run.
    let equality = figures
        .iter()
        .find(|f| f["section"] == "equality")
        .expect("equality");
    assert!(
        equality["value"].as_f64().expect("value") <= 1e-9,
        "{equality}"
    );
    assert_eq!(equality["target"]["met"], true);
    // Both batch sizes the issue names, and the single row.
    for batch in ["batch 1,", "batch 100,", "batch 10000,"] {
        assert!(
            figures.iter().any(|f| f["section"] == "evaluation"
                && f["name"].as_str().is_some_and(|n| n.starts_with(batch))),
            "no evaluation figure for {batch}"
        );
    }
}
