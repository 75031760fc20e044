//! The NB201 encodings, canonical form and analytic network cost, checked
//! against every row of the public tables.

mod common;

use std::collections::HashSet;

use nasperf::{
    dataset::Dataset,
    space::nb201::{
        cell::Cell,
        cost::{NetworkCost, network_cost},
    },
};

fn records(file: &str) -> Vec<csv::StringRecord> {
    let path = common::benchdata().join(file);
    let mut reader =
        csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    reader.records().map(|r| r.expect("csv row")).collect()
}

#[test]
fn every_cell_of_the_arch_index_parses_round_trips_and_agrees_across_encodings() {
    let rows = records("nb201_arch_index.csv");
    assert_eq!(rows.len(), 15_625);
    let mut canonical = HashSet::new();
    for (i, row) in rows.iter().enumerate() {
        let (index, arch, tuple, codes) = (&row[0], &row[1], &row[2], &row[3]);
        assert_eq!(index, i.to_string(), "rows are in NB201 index order");
        let cell = Cell::parse(arch).unwrap_or_else(|e| panic!("row {i}: {e}"));
        assert_eq!(cell.to_arch_string(), arch, "row {i}");
        assert_eq!(cell.to_op_codes(), codes, "row {i}");
        assert_eq!(Cell::parse(codes).unwrap(), cell, "row {i}");
        assert_eq!(Cell::parse_naslib_tuple(tuple).unwrap(), cell, "row {i}");
        assert_eq!(cell.to_naslib_tuple(), tuple, "row {i}");
        canonical.insert(cell.canonical());
    }
    assert_eq!(canonical.len(), 9_445);

    // Our canonical networks are exactly NAS-Bench-Suite-Zero's 9,445.
    let theirs: HashSet<Cell> = records("nb201-groundtruth/zccombine_nb201_cifar10_valid_nets.csv")
        .iter()
        .map(|r| Cell::parse_naslib_tuple(&r[0]).unwrap())
        .collect();
    assert_eq!(theirs, canonical);
}

fn check_cost(what: &str, cost: NetworkCost, params_m: f64, flops_m: f64) {
    assert!(
        (cost.params_m - params_m).abs() <= 1e-9 * params_m,
        "{what}: params {} vs table {params_m}",
        cost.params_m
    );
    let rel = (cost.flops_m - flops_m).abs() / flops_m;
    assert!(
        rel <= 1e-3,
        "{what}: flops {} vs table {flops_m} ({rel:.2e})",
        cost.flops_m
    );
}

#[test]
fn params_and_flops_match_nas_bench_suite_zero() {
    for (ds, file) in [
        (
            Dataset::Cifar10,
            "nas-bench-suite-zero/zccombine_nb201_cifar10_zc_proxies.csv",
        ),
        (
            Dataset::ImageNet16_120,
            "nas-bench-suite-zero/zccombine_nb201_ImageNet16-120_zc_proxies.csv",
        ),
    ] {
        let path = common::benchdata().join(file);
        let mut reader = csv::Reader::from_path(&path).unwrap();
        let headers = reader.headers().unwrap().clone();
        let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
        let (net, params, flops) = (col("net"), col("params"), col("flops"));
        let mut n = 0;
        for row in reader.records() {
            let row = row.unwrap();
            let cell = Cell::parse_naslib_tuple(&row[net]).unwrap();
            check_cost(
                &format!("{ds} {}", &row[net]),
                network_cost(&cell, ds),
                row[params].parse().unwrap(),
                row[flops].parse().unwrap(),
            );
            n += 1;
        }
        assert_eq!(n, 9_445, "{ds}");
    }

    // CIFAR-100: the 725 cells of the early NASLib release, as sent (some
    // have dead operations, which still count).
    let path = common::benchdata().join("nas-bench-suite-zero/naslib_partial_zc_nasbench201.json");
    // Python wrote it: three nwot scores are `-Infinity`, which is not JSON.
    // Only params and flops are read here, and they are always finite.
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("-Infinity", "null")
        .replace("Infinity", "null")
        .replace("NaN", "null");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cells = json["cifar100"].as_object().expect("cifar100 entries");
    assert_eq!(cells.len(), 725);
    for (key, entry) in cells {
        let cell = Cell::parse_naslib_tuple(key).unwrap();
        let score = |p: &str| {
            entry[p]["score"]
                .as_f64()
                .unwrap_or_else(|| panic!("{key}: {p}"))
        };
        check_cost(
            &format!("cifar100 {key}"),
            network_cost(&cell, Dataset::Cifar100),
            score("params"),
            score("flops"),
        );
    }
}
