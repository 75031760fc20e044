//! Architecture encodings as clients send them (`Candidate.arch`, and the
//! `arch` of every recorded evaluation): whatever the text, parsing returns
//! an error or an architecture whose own encodings parse back to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nasperf_core::space::{SearchSpaces, nb201::cell::Cell};

fuzz_target!(|encoding: &str| {
    let spaces = SearchSpaces::builtin();
    for name in spaces.names() {
        let Some(space) = spaces.get(name) else {
            continue;
        };
        let identity = space.identify(encoding);
        match space.parse(encoding) {
            Ok(parsed) => {
                assert_eq!(parsed.features.len(), space.feature_names().len());
                assert!(parsed.features.iter().all(|v| v.is_finite()), "{parsed:?}");
                assert_eq!(
                    identity.as_ref().ok(),
                    Some(&(parsed.encoding.clone(), parsed.canonical_key.clone())),
                    "identify and parse disagree on {encoding:?}"
                );
                // The normalised encoding is itself accepted and means the same network.
                let again = space
                    .parse(&parsed.encoding)
                    .expect("its own encoding parses");
                assert_eq!(again.encoding, parsed.encoding);
                assert_eq!(again.canonical_key, parsed.canonical_key);
            }
            Err(e) => {
                assert!(
                    identity.is_err(),
                    "identify accepts what parse refuses: {encoding:?}"
                );
                assert!(!e.0.is_empty());
            }
        }
    }
    // Each NB201 spelling on its own: every accepted cell round-trips through all three.
    for parse in [
        Cell::parse,
        Cell::parse_arch_string,
        Cell::parse_op_codes,
        Cell::parse_naslib_tuple,
    ] {
        if let Ok(cell) = parse(encoding) {
            assert_eq!(Cell::parse_arch_string(&cell.to_arch_string()), Ok(cell));
            assert_eq!(Cell::parse_op_codes(&cell.to_op_codes()), Ok(cell));
            assert_eq!(Cell::parse_naslib_tuple(&cell.to_naslib_tuple()), Ok(cell));
            assert_eq!(cell.canonical().canonical(), cell.canonical());
        }
    }
});
