//! Readers for the public benchmark tables, in the layout of
//! `../shared/benchdata` (see its PROVENANCE.md). The product reads them
//! from a directory the user names; nothing here is shipped with nasperf.

use std::{
    collections::HashMap,
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

fn open(path: &Path) -> Result<csv::Reader<std::fs::File>, BenchError> {
    let file = std::fs::File::open(path).map_err(|source| BenchError::Io {
        file: path.to_owned(),
        source,
    })?;
    Ok(csv::Reader::from_reader(file))
}

fn column(path: &Path, headers: &csv::StringRecord, name: &str) -> Result<usize, BenchError> {
    headers
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| BenchError::MissingColumn {
            file: path.to_owned(),
            column: name.to_owned(),
        })
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
    let mut reader = open(&path)?;
    let headers = reader
        .headers()
        .map_err(|source| BenchError::Csv {
            file: path.clone(),
            source,
        })?
        .clone();
    let key = column(&path, &headers, objective.source.key_column)?;
    let value = column(&path, &headers, &objective.source.column)?;
    let mut out = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|source| BenchError::Csv {
            file: path.clone(),
            source,
        })?;
        let row_err = |message: String| BenchError::Row {
            file: path.clone(),
            row,
            message,
        };
        let cell = parse_key(objective.source.key_column, &record[key]).map_err(row_err)?;
        let v = parse_value(&objective.source.column, &record[value]).map_err(row_err)?;
        if objective.missing_sentinel == Some(v) {
            continue;
        }
        if !v.is_finite() {
            return Err(row_err(format!(
                "column {:?} is not finite",
                objective.source.column
            )));
        }
        out.push(Measurement { cell, value: v });
    }
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
    let mut reader = open(&path)?;
    let headers = reader
        .headers()
        .map_err(|source| BenchError::Csv {
            file: path.clone(),
            source,
        })?
        .clone();
    let key = column(&path, &headers, "net")?;
    let columns: Vec<usize> = PROXY_NAMES
        .iter()
        .map(|p| column(&path, &headers, p))
        .collect::<Result<_, _>>()?;
    let mut out = HashMap::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.map_err(|source| BenchError::Csv {
            file: path.clone(),
            source,
        })?;
        let row_err = |message: String| BenchError::Row {
            file: path.clone(),
            row,
            message,
        };
        let cell = parse_key("net", &record[key]).map_err(row_err)?;
        let mut values = ProxyValues::MISSING;
        for (i, &c) in columns.iter().enumerate() {
            let v = parse_value(PROXY_NAMES[i], &record[c]).map_err(row_err)?;
            if !v.is_finite() {
                return Err(row_err(format!("proxy {:?} is not finite", PROXY_NAMES[i])));
            }
            values.0[i] = v;
        }
        out.insert(cell, values);
    }
    Ok(Some(out))
}
