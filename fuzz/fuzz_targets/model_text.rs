//! LightGBM model text, as a server loads it from a model directory or the
//! store: whatever the text, parsing refuses it or yields a forest that
//! predicts every row without panicking, looping or producing garbage from
//! out-of-range indices, one row at a time and in a batch alike.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nasperf_core::model::Forest;

fuzz_target!(|text: &str| {
    let Ok(forest) = Forest::parse(text) else {
        return;
    };
    assert!(forest.num_trees() > 0);
    let width = forest.feature_names().len();
    let mut rows = Vec::new();
    let mut singles = Vec::new();
    for fill in [
        0.0,
        -1.0,
        1e300,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e-36,
    ] {
        // Leaf values are finite, so a finite sum is the only possible
        // answer unless the forest is huge; either way it must return.
        let row = vec![fill; width];
        singles.push(forest.predict(&row));
        rows.extend(row);
    }
    // The batch path walks the same trees: the same answers, bit for bit.
    let mut batch = vec![0.0; singles.len()];
    forest.predict_batch(&rows, &mut batch);
    for (b, s) in batch.iter().zip(&singles) {
        assert_eq!(b.to_bits(), s.to_bits());
    }
    // Parsing is a function of the text.
    assert_eq!(Forest::parse(text).as_ref(), Ok(&forest));
});
