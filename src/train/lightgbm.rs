//! Training through LightGBM's C API, so that the Dataset is built with our
//! parameters.
//!
//! lightgbm3's `Dataset::from_slice` builds the Dataset with LightGBM's
//! default dataset parameters, and the booster's parameters cannot change
//! them afterwards. Those defaults pre-filter features with
//! `min_data_in_leaf = 20`: every feature that cannot put 20 rows on each
//! side of a split is dropped before training starts. With a few dozen
//! training networks (a search's first models, or the N = 32 protocol),
//! that is most of the one-hot graph features, and models came out
//! constant. Here the Dataset gets the same `min_data_in_leaf` as the
//! booster, no pre-filter and single-row bins.

use std::{
    ffi::{CStr, CString, c_char, c_int, c_void},
    ptr,
};

use lightgbm3_sys as sys;

/// An error from LightGBM's C API, with its message.
#[derive(Debug, thiserror::Error)]
#[error("LightGBM: {0}")]
pub struct LightGbmError(pub String);

fn last_error() -> LightGbmError {
    // SAFETY: LGBM_GetLastError returns a pointer to a thread-local,
    // NUL-terminated buffer that LightGBM owns and keeps alive until the next
    // call on this thread; it is copied out at once.
    let message = unsafe { CStr::from_ptr(sys::LGBM_GetLastError()) };
    LightGbmError(message.to_string_lossy().into_owned())
}

fn check(code: c_int) -> Result<(), LightGbmError> {
    if code == 0 { Ok(()) } else { Err(last_error()) }
}

fn c_string(what: &str, s: &str) -> Result<CString, LightGbmError> {
    CString::new(s).map_err(|_| LightGbmError(format!("{what} contains a NUL byte")))
}

/// Owns a Dataset handle and frees it on every path out.
struct DatasetHandle(sys::DatasetHandle);

impl Drop for DatasetHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from LGBM_DatasetCreateFromMat, is not
        // null and is freed only here, once.
        unsafe {
            sys::LGBM_DatasetFree(self.0);
        }
    }
}

/// Owns a Booster handle. Declared after the Dataset in `train` so that it
/// drops first: a Booster keeps a pointer to its training Dataset.
struct BoosterHandle(sys::BoosterHandle);

impl Drop for BoosterHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from LGBM_BoosterCreate, is not null and
        // is freed only here, once.
        unsafe {
            sys::LGBM_BoosterFree(self.0);
        }
    }
}

/// Renders parameters as LightGBM's `key=value` list.
fn parameter_string(params: &serde_json::Value) -> String {
    params
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("{k}={s}"),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

/// Trains a regression booster on row-major `rows` (`names.len()` values
/// per row) and returns its model text.
///
/// `dataset_params` shape the bins (e.g. `min_data_in_leaf`,
/// `feature_pre_filter`); `booster_params` the boosting, including
/// `num_iterations`.
pub fn train(
    rows: &[f64],
    labels: &[f32],
    names: &[String],
    dataset_params: &serde_json::Value,
    booster_params: &serde_json::Value,
) -> Result<String, LightGbmError> {
    train_grouped(rows, labels, None, names, dataset_params, booster_params)
}

/// [`train`] with the rows in consecutive query groups of the given sizes,
/// which a ranking objective (`lambdarank`) orders within: `groups` must
/// sum to the number of rows.
pub fn train_grouped(
    rows: &[f64],
    labels: &[f32],
    groups: Option<&[i32]>,
    names: &[String],
    dataset_params: &serde_json::Value,
    booster_params: &serde_json::Value,
) -> Result<String, LightGbmError> {
    let width = names.len();
    if width == 0 || rows.len() != labels.len() * width || labels.is_empty() {
        return Err(LightGbmError(format!(
            "{} values for {} rows of {} features",
            rows.len(),
            labels.len(),
            width
        )));
    }
    if let Some(groups) = groups {
        let total: i64 = groups.iter().map(|&g| i64::from(g)).sum();
        if groups.iter().any(|&g| g <= 0) || total != labels.len() as i64 {
            return Err(LightGbmError(format!(
                "query groups of {} rows in all (each at least 1) for {} rows",
                total,
                labels.len()
            )));
        }
    }
    let n_rows = i32::try_from(labels.len())
        .map_err(|_| LightGbmError(format!("{} rows is too many", labels.len())))?;
    let n_cols =
        i32::try_from(width).map_err(|_| LightGbmError(format!("{width} features is too many")))?;
    let iterations = booster_params
        .get("num_iterations")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(100);

    let dataset_params = c_string("dataset parameters", &parameter_string(dataset_params))?;
    let mut handle: sys::DatasetHandle = ptr::null_mut();
    // SAFETY: `rows` holds n_rows * n_cols f64 values, row-major (checked
    // above), and outlives the call (LightGBM copies them into its bins);
    // the parameter string is NUL-terminated; a null reference means no
    // reference Dataset; `handle` is a valid out-pointer.
    check(unsafe {
        sys::LGBM_DatasetCreateFromMat(
            rows.as_ptr().cast::<c_void>(),
            sys::C_API_DTYPE_FLOAT64 as c_int,
            n_rows,
            n_cols,
            1,
            dataset_params.as_ptr(),
            ptr::null_mut(),
            &mut handle,
        )
    })?;
    let dataset = DatasetHandle(handle);

    let label_field = c_string("field", "label")?;
    // SAFETY: the Dataset is live; `labels` holds exactly n_rows f32 values,
    // which LightGBM copies.
    check(unsafe {
        sys::LGBM_DatasetSetField(
            dataset.0,
            label_field.as_ptr(),
            labels.as_ptr().cast::<c_void>(),
            n_rows,
            sys::C_API_DTYPE_FLOAT32 as c_int,
        )
    })?;

    if let Some(groups) = groups {
        let group_field = c_string("field", "group")?;
        let count = i32::try_from(groups.len())
            .map_err(|_| LightGbmError(format!("{} query groups is too many", groups.len())))?;
        // SAFETY: the Dataset is live; `groups` holds `count` i32 sizes
        // that sum to n_rows (checked above), which LightGBM copies into
        // its query boundaries.
        check(unsafe {
            sys::LGBM_DatasetSetField(
                dataset.0,
                group_field.as_ptr(),
                groups.as_ptr().cast::<c_void>(),
                count,
                sys::C_API_DTYPE_INT32 as c_int,
            )
        })?;
    }

    let c_names = names
        .iter()
        .map(|n| c_string("feature name", n))
        .collect::<Result<Vec<_>, _>>()?;
    let mut name_ptrs: Vec<*const c_char> = c_names.iter().map(|n| n.as_ptr()).collect();
    // SAFETY: the Dataset is live; `name_ptrs` holds n_cols pointers to
    // NUL-terminated strings kept alive by `c_names` for the call, and
    // LightGBM copies them.
    check(unsafe { sys::LGBM_DatasetSetFeatureNames(dataset.0, name_ptrs.as_mut_ptr(), n_cols) })?;

    let booster_params = c_string("booster parameters", &parameter_string(booster_params))?;
    let mut handle: sys::BoosterHandle = ptr::null_mut();
    // SAFETY: the Dataset is live and outlives the Booster (`booster` is
    // dropped before `dataset`); the parameter string is NUL-terminated;
    // `handle` is a valid out-pointer.
    check(unsafe { sys::LGBM_BoosterCreate(dataset.0, booster_params.as_ptr(), &mut handle) })?;
    let booster = BoosterHandle(handle);

    for _ in 0..iterations {
        let mut finished: c_int = 0;
        // SAFETY: the Booster and its Dataset are live; `finished` is a
        // valid out-pointer.
        check(unsafe { sys::LGBM_BoosterUpdateOneIter(booster.0, &mut finished) })?;
        if finished != 0 {
            break;
        }
    }

    // The text's length is known only after a first call.
    let mut buffer: Vec<u8> = vec![0; 1 << 16];
    loop {
        let mut needed: i64 = 0;
        let capacity = i64::try_from(buffer.len())
            .map_err(|_| LightGbmError("model text too large".to_owned()))?;
        // SAFETY: the Booster is live; `buffer` is writable for `capacity`
        // bytes and LightGBM writes at most that many (it reports the size
        // it needs in `needed` when the buffer is too small).
        check(unsafe {
            sys::LGBM_BoosterSaveModelToString(
                booster.0,
                0,
                -1,
                sys::C_API_FEATURE_IMPORTANCE_SPLIT as c_int,
                capacity,
                &mut needed,
                buffer.as_mut_ptr().cast::<c_char>(),
            )
        })?;
        let needed = usize::try_from(needed)
            .map_err(|_| LightGbmError(format!("model text length {needed}")))?;
        if needed <= buffer.len() {
            // `needed` counts the terminating NUL.
            buffer.truncate(needed.saturating_sub(1));
            break;
        }
        buffer.resize(needed, 0);
    }
    drop(booster);
    drop(dataset);
    String::from_utf8(buffer).map_err(|_| LightGbmError("model text is not UTF-8".to_owned()))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn booster_params(min_data_in_leaf: u32) -> serde_json::Value {
        json!({
            "objective": "regression",
            "num_iterations": 50,
            "learning_rate": 0.1,
            "num_leaves": 4,
            "min_data_in_leaf": min_data_in_leaf,
            "deterministic": true,
            "num_threads": 1,
            "verbosity": -1,
        })
    }

    /// 16 rows; the target is 10 where the rare binary feature (3 of 16
    /// rows) is set, 0 elsewhere.
    fn rare_feature_rows() -> (Vec<f64>, Vec<f32>, Vec<String>) {
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..16 {
            let rare = if i % 5 == 0 { 1.0 } else { 0.0 };
            rows.extend([rare, f64::from(i % 2)]);
            labels.push(if rare > 0.0 { 10.0 } else { 0.0 });
        }
        (rows, labels, vec!["rare".to_owned(), "parity".to_owned()])
    }

    fn predict(text: &str, row: &[f64]) -> f64 {
        let forest = crate::model::Forest::parse(text).expect("model text parses");
        forest.predict(row)
    }

    #[test]
    fn a_feature_rarer_than_lightgbms_default_leaf_size_is_learned() {
        let (rows, labels, names) = rare_feature_rows();
        let text = train(
            &rows,
            &labels,
            &names,
            &json!({"min_data_in_leaf": 2, "feature_pre_filter": false, "min_data_in_bin": 1}),
            &booster_params(2),
        )
        .expect("trains");
        assert!(text.contains("feature_names=rare parity"), "names kept");
        let (with, without) = (predict(&text, &[1.0, 0.0]), predict(&text, &[0.0, 0.0]));
        assert!(
            with - without > 5.0,
            "the rare feature drives the prediction: {with} vs {without}"
        );
    }

    #[test]
    fn lightgbm3s_default_dataset_drops_the_rare_feature() {
        // Why this module exists: the same rows through lightgbm3's
        // Dataset (LightGBM's default dataset parameters) give a constant
        // model, whatever the booster's min_data_in_leaf.
        let (rows, labels, _) = rare_feature_rows();
        let dataset = lightgbm3::Dataset::from_slice(&rows, &labels, 2, true).expect("dataset");
        let booster = lightgbm3::Booster::train(dataset, &booster_params(2)).expect("trains");
        let text = booster.save_string().expect("text");
        let (with, without) = (predict(&text, &[1.0, 0.0]), predict(&text, &[0.0, 0.0]));
        assert!((with - without).abs() < 1e-9, "{with} vs {without}");
    }

    #[test]
    fn a_ranking_objective_learns_the_order_within_its_query_groups() {
        // 16 rows in 4 groups of 4: the relevance rises with feature 0, and
        // feature 1 is noise. The ranker's scores must rise with feature 0.
        let mut rows = Vec::new();
        let mut labels = Vec::new();
        for i in 0..16u32 {
            rows.extend([f64::from(i % 4), f64::from((i * 7) % 5)]);
            labels.push((i % 4) as f32);
        }
        let names = vec!["level".to_owned(), "noise".to_owned()];
        let mut params = booster_params(1);
        params["objective"] = json!("lambdarank");
        let text = train_grouped(
            &rows,
            &labels,
            Some(&[4, 4, 4, 4]),
            &names,
            &json!({"min_data_in_leaf": 1, "feature_pre_filter": false, "min_data_in_bin": 1}),
            &params,
        )
        .expect("trains");
        assert!(text.contains("objective=lambdarank"), "ranked");
        let forest = crate::model::Forest::parse(
            &text.replace("objective=lambdarank", "objective=regression"),
        )
        .expect("parses");
        let scores: Vec<f64> = (0..4)
            .map(|l| forest.predict(&[f64::from(l), 0.0]))
            .collect();
        assert!(scores.windows(2).all(|w| w[0] < w[1]), "{scores:?}");

        // Groups that do not cover the rows are an error, not a crash.
        let err =
            train_grouped(&rows, &labels, Some(&[4, 4]), &names, &json!({}), &params).unwrap_err();
        assert!(err.0.contains("8 rows in all"), "{err}");
        let err =
            train_grouped(&rows, &labels, Some(&[16, 0]), &names, &json!({}), &params).unwrap_err();
        assert!(err.0.contains("at least 1"), "{err}");
    }

    #[test]
    fn bad_shapes_and_parameters_are_errors_not_crashes() {
        let (rows, labels, names) = rare_feature_rows();
        let err = train(&rows[1..], &labels, &names, &json!({}), &booster_params(2)).unwrap_err();
        assert!(err.0.contains("values for 16 rows"), "{err}");
        let err = train(
            &rows,
            &labels,
            &names,
            &json!({}),
            &json!({"objective": "no-such-objective", "num_iterations": 1}),
        )
        .unwrap_err();
        assert!(err.0.contains("no-such-objective"), "{err}");
        let bad_name = vec!["a\0b".to_owned(), "c".to_owned()];
        let err = train(&rows, &labels, &bad_name, &json!({}), &booster_params(2)).unwrap_err();
        assert!(err.0.contains("NUL"), "{err}");
    }
}
