//! A model's manifest and text together, as the registry validates them
//! before a model may serve: the input is the manifest JSON, a NUL byte and
//! the model text. A manifest that parses gets the text's true hash half
//! the time, so the fuzzer also reaches the checks past the hash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nasperf_core::{
    model::{Manifest, Model, sha256_hex},
    space::SearchSpaces,
};

fuzz_target!(|data: &[u8]| {
    let (json, text) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(mut manifest) = serde_json::from_slice::<Manifest>(json) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let _ = manifest.content_addressed_file_name();
    if data.len() % 2 == 0 {
        manifest.model_sha256 = sha256_hex(text.as_bytes());
    }
    let spaces = SearchSpaces::builtin();
    if let Ok(model) = Model::from_parts(manifest, text, &spaces) {
        // What loading promises: the model predicts a finite value on the probe.
        let probe = model
            .space
            .parse(&model.space.probe_encoding())
            .expect("the probe parses");
        assert!(
            model
                .predict(&probe.features, None, &mut Vec::new())
                .is_finite()
        );
    }
});
