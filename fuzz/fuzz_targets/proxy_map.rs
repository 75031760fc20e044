//! Zero-cost proxy maps as clients send them with a candidate or an
//! evaluation: accepted only when every name is known, sent once and finite.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use nasperf_core::features::{PROXY_NAMES, ProxyError, ProxyValues};

fuzz_target!(|named: Vec<(String, f64)>| {
    let result = ProxyValues::from_named(named.iter().map(|(n, v)| (n.as_str(), *v)));
    let distinct: HashSet<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
    match result {
        Ok(values) => {
            assert_eq!(distinct.len(), named.len(), "a repeated name was accepted");
            let sent: Vec<(&str, f64)> = values.sent().collect();
            assert_eq!(sent.len(), named.len());
            for (name, value) in &named {
                assert!(PROXY_NAMES.contains(&name.as_str()));
                assert!(value.is_finite());
                assert!(sent.contains(&(name.as_str(), *value)));
            }
        }
        Err(e) => {
            let bad = match &e {
                ProxyError::Unknown { name } => !PROXY_NAMES.contains(&name.as_str()),
                ProxyError::Duplicate { name } => {
                    named.iter().filter(|(n, _)| n == name).count() > 1
                }
                ProxyError::NonFinite { name, value } => {
                    !value.is_finite() && named.iter().any(|(n, _)| n == name)
                }
            };
            assert!(
                bad,
                "refused for a reason that does not hold: {e:?} on {named:?}"
            );
            assert!(!e.to_string().is_empty());
        }
    }
});
