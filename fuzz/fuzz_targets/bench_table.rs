//! The public benchmark tables, as `nasperf import`, `train` and `eval`
//! read them from a directory the user names: whatever the bytes, every
//! reader returns rows or an error naming the file, and the rows it returns
//! are finite measurements of valid cells.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nasperf_core::{bench, objectives::catalogue};

fuzz_target!(|data: &[u8]| {
    let Some((&choice, table)) = data.split_first() else {
        return;
    };
    let objectives = catalogue();
    let objective = &objectives[usize::from(choice) % objectives.len()];
    let path = Path::new(objective.source.file);
    match bench::read_objective(table, path, objective) {
        Ok(rows) => {
            for row in rows {
                assert!(row.value.is_finite());
                assert_ne!(objective.missing_sentinel, Some(row.value));
            }
        }
        Err(e) => assert!(e.to_string().contains(objective.source.file), "{e}"),
    }
    let proxies = Path::new("proxies.csv");
    match bench::read_proxies(table, proxies) {
        Ok(rows) => {
            for values in rows.values() {
                assert!(values.0.iter().all(|v| v.is_finite()));
            }
        }
        Err(e) => assert!(e.to_string().contains("proxies.csv"), "{e}"),
    }
});
