//! Readers for the public benchmark tables, in the layout of
//! `../shared/benchdata` (see its PROVENANCE.md). The product reads them
//! from a directory the user names; nothing here is shipped with nasperf.

use std::{
    collections::HashMap,
    io::Read,
    path::{Path, PathBuf},
};

use crate::{
    dataset::Dataset,
    features::{PROXY_NAMES, ProxyValues},
    objectives::Objective,
    space::nb201::cell::Cell,
};

/// The environment variable tests and benchmarks read the benchmark
/// directory from.
pub const BENCHDATA_ENV: &str = "NASPERF_BENCHDATA";

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{file}: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {source}")]
    Csv {
        file: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("{file}: no column {column:?}")]
    MissingColumn { file: PathBuf, column: String },
    #[error("{file}, data row {row}: {message}")]
    Row {
        file: PathBuf,
        row: usize,
        message: String,
    },
}

/// One measured value of an objective for a cell, as the table holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measurement {
    pub cell: Cell,
    pub value: f64,
}

fn open(path: &Path) -> Result<std::fs::File, BenchError> {
    std::fs::File::open(path).map_err(|source| BenchError::Io {
        file: path.to_owned(),
        source,
    })
}

/// Reads a CSV table, calling `visit` with the fields of `columns`, in that
/// order. A missing column, a malformed row or an error `visit` returns
/// names `path` (the table's name in messages) and the data row.
fn for_each_row(
    input: impl Read,
    path: &Path,
    columns: &[&str],
    mut visit: impl FnMut(&[&str]) -> Result<(), String>,
) -> Result<(), BenchError> {
    let csv_err = |source| BenchError::Csv {
        file: path.to_owned(),
        source,
    };
    let mut reader = csv::Reader::from_reader(input);
    let headers = reader.headers().map_err(csv_err)?.clone();
    let indices: Vec<usize> = columns
        .iter()
        .map(|name| {
            headers
                .iter()
                .position(|h| h == *name)
                .ok_or_else(|| BenchError::MissingColumn {
                    file: path.to_owned(),
                    column: (*name).to_owned(),
                })
        })
        .collect::<Result<_, _>>()?;
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(csv_err)?;
        // The reader is not flexible: every record has the header's width.
        let fields: Vec<&str> = indices.iter().map(|&i| &record[i]).collect();
        visit(&fields).map_err(|message| BenchError::Row {
            file: path.to_owned(),
            row,
            message,
        })?;
    }
    Ok(())
}

fn parse_key(key_column: &str, text: &str) -> Result<Cell, String> {
    let parsed = if key_column == "net" {
        Cell::parse_naslib_tuple(text)
    } else {
        Cell::parse_arch_string(text)
    };
    parsed.map_err(|e| format!("column {key_column:?}: {e}"))
}

fn parse_value(column: &str, text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .map_err(|_| format!("column {column:?}: {text:?} is not a number"))
}

/// Every measurement of `objective` in the table under `root`, skipping the
/// objective's "not measured" sentinel. A non-finite value is an error, not
/// a row to skip silently.
pub fn load_objective(root: &Path, objective: &Objective) -> Result<Vec<Measurement>, BenchError> {
    let path = root.join(objective.source.file);
    read_objective(open(&path)?, &path, objective)
}

/// [`load_objective`] over any reader; `path` names the table in errors.
pub fn read_objective(
    input: impl Read,
    path: &Path,
    objective: &Objective,
) -> Result<Vec<Measurement>, BenchError> {
    let key_column = objective.source.key_column;
    let column = objective.source.column.as_str();
    let mut out = Vec::new();
    for_each_row(input, path, &[key_column, column], |fields| {
        let cell = parse_key(key_column, fields[0])?;
        let value = parse_value(column, fields[1])?;
        if objective.missing_sentinel == Some(value) {
            return Ok(());
        }
        if !value.is_finite() {
            return Err(format!("column {column:?} is not finite"));
        }
        out.push(Measurement { cell, value });
        Ok(())
    })?;
    Ok(out)
}

/// The NAS-Bench-Suite-Zero proxy file of a dataset, if the tables have one.
pub fn proxy_file(ds: Dataset) -> Option<&'static str> {
    match ds {
        Dataset::Cifar10 => Some("nas-bench-suite-zero/zccombine_nb201_cifar10_zc_proxies.csv"),
        Dataset::ImageNet16_120 => {
            Some("nas-bench-suite-zero/zccombine_nb201_ImageNet16-120_zc_proxies.csv")
        }
        Dataset::Cifar100 => None,
    }
}

/// The zero-cost proxies of every (canonical) network the dataset's table
/// holds, or `None` when the tables have no proxies for the dataset.
pub fn load_proxies(
    root: &Path,
    ds: Dataset,
) -> Result<Option<HashMap<Cell, ProxyValues>>, BenchError> {
    let Some(file) = proxy_file(ds) else {
        return Ok(None);
    };
    let path = root.join(file);
    // A directory with part of the benchmark may lack a dataset's proxies.
    if !path.is_file() {
        return Ok(None);
    }
    read_proxies(open(&path)?, &path).map(Some)
}

/// The rows of a NAS-Bench-Suite-Zero proxy table from any reader; `path`
/// names the table in errors.
pub fn read_proxies(
    input: impl Read,
    path: &Path,
) -> Result<HashMap<Cell, ProxyValues>, BenchError> {
    let mut columns = vec!["net"];
    columns.extend(PROXY_NAMES);
    let mut out = HashMap::new();
    for_each_row(input, path, &columns, |fields| {
        let cell = parse_key("net", fields[0])?;
        let mut values = ProxyValues::MISSING;
        for (i, (name, text)) in PROXY_NAMES.iter().zip(&fields[1..]).enumerate() {
            let v = parse_value(name, text)?;
            if !v.is_finite() {
                return Err(format!("proxy {name:?} is not finite"));
            }
            values.0[i] = v;
        }
        out.insert(cell, values);
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objectives::catalogue;

    fn objective() -> Objective {
        catalogue()
            .into_iter()
            .find(|o| o.id == "cifar10/edgetpu_latency")
            .expect("in the catalogue")
    }

    fn table(dir: &Path, body: &str) {
        let path = dir.join(objective().source.file);
        std::fs::create_dir_all(path.parent().expect("a folder")).unwrap();
        std::fs::write(path, body).unwrap();
    }

    #[test]
    fn reads_rows_and_skips_the_not_measured_sentinel() {
        let dir = tempfile::tempdir().unwrap();
        table(
            dir.path(),
            "net,edgetpu_latency\n\"(4, 3, 3, 0, 0, 0)\",0.95\n\"(2, 2, 0, 4, 2, 0)\",-1\n",
        );
        let rows = load_objective(dir.path(), &objective()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].cell.to_op_codes(), "421211");
        assert_eq!(rows[0].value, 0.95);
    }

    #[test]
    fn bad_tables_name_the_file_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        table(
            dir.path(),
            "net,edgetpu_latency\n\"(4, 3, 3, 0, 0, 0)\",0.95\n\"(9, 3, 3, 0, 0, 0)\",1\n",
        );
        let e = load_objective(dir.path(), &objective())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("zccombine_hw_cifar10.csv, data row 1: column \"net\""),
            "{e}"
        );

        table(
            dir.path(),
            "net,edgetpu_latency\n\"(4, 3, 3, 0, 0, 0)\",fast\n",
        );
        let e = load_objective(dir.path(), &objective())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("data row 0: column \"edgetpu_latency\": \"fast\" is not a number"),
            "{e}"
        );

        table(
            dir.path(),
            "net,edgetpu_latency\n\"(4, 3, 3, 0, 0, 0)\",NaN\n",
        );
        let e = load_objective(dir.path(), &objective())
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not finite"), "{e}");

        table(dir.path(), "net,latency\n");
        let e = load_objective(dir.path(), &objective())
            .unwrap_err()
            .to_string();
        assert!(e.contains("no column \"edgetpu_latency\""), "{e}");

        table(dir.path(), "net,edgetpu_latency\n\"(4, 3, 3, 0, 0, 0)\"\n");
        assert!(
            load_objective(dir.path(), &objective()).is_err(),
            "a short row is an error"
        );

        let missing = load_objective(&dir.path().join("nowhere"), &objective()).unwrap_err();
        assert!(matches!(missing, BenchError::Io { .. }));
    }
}
