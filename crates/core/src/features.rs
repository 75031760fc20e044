//! Model inputs: a model stores the exact ordered feature names it was
//! trained on, and [`FeatureMap`] feeds it exactly those, by name, from the
//! search space's features and the candidate's zero-cost proxies. Training
//! and serving build rows through this one type, so they cannot drift apart.

use crate::space::SearchSpace;

/// The zero-cost proxies of NAS-Bench-Suite-Zero, in a fixed order.
pub const PROXY_NAMES: [&str; 13] = [
    "epe_nas",
    "fisher",
    "flops",
    "grad_norm",
    "grasp",
    "jacov",
    "l2_norm",
    "nwot",
    "params",
    "plain",
    "snip",
    "synflow",
    "zen",
];

/// The prefix of proxy feature names: proxy `synflow` is feature `zc.synflow`.
pub const PROXY_FEATURE_PREFIX: &str = "zc.";

/// A feature of models that read proxies: how many of the candidate's
/// proxies were sent (0 to 13). A served model splits on it first, so that
/// a candidate with every proxy is answered by trees trained with them and
/// any other by trees trained on the architecture alone
/// (`nasperf::train::recipe`).
pub const PROXIES_SENT_FEATURE: &str = "proxies.sent";

pub fn proxy_index(name: &str) -> Option<usize> {
    PROXY_NAMES.iter().position(|&p| p == name)
}

pub fn proxy_feature_names() -> Vec<String> {
    PROXY_NAMES
        .iter()
        .map(|p| format!("{PROXY_FEATURE_PREFIX}{p}"))
        .collect()
}

/// A candidate's proxy values in [`PROXY_NAMES`] order; NaN where a proxy
/// was not sent (LightGBM's missing value, never a silent zero).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProxyValues(pub [f64; PROXY_NAMES.len()]);

impl ProxyValues {
    pub const MISSING: ProxyValues = ProxyValues([f64::NAN; PROXY_NAMES.len()]);

    /// How many proxies have a value.
    pub fn count_sent(&self) -> usize {
        self.0.iter().filter(|v| !v.is_nan()).count()
    }

    /// Whether every proxy has a value.
    pub fn all_sent(&self) -> bool {
        self.count_sent() == PROXY_NAMES.len()
    }

    /// Validates proxies sent by name, as every request and table carries
    /// them: each name must be known, sent once, and its value finite (a
    /// NaN would silently read as "not sent"). The first error in name
    /// order is reported, so the same input always gives the same error.
    pub fn from_named<'a>(
        proxies: impl IntoIterator<Item = (&'a str, f64)>,
    ) -> Result<ProxyValues, ProxyError> {
        let mut named: Vec<(&str, f64)> = proxies.into_iter().collect();
        named.sort_by(|a, b| a.0.cmp(b.0));
        let mut values = ProxyValues::MISSING;
        for (position, &(name, value)) in named.iter().enumerate() {
            let i = proxy_index(name).ok_or_else(|| ProxyError::Unknown {
                name: name.to_owned(),
            })?;
            if position > 0 && named[position - 1].0 == name {
                return Err(ProxyError::Duplicate {
                    name: name.to_owned(),
                });
            }
            if !value.is_finite() {
                return Err(ProxyError::NonFinite {
                    name: name.to_owned(),
                    value,
                });
            }
            values.0[i] = value;
        }
        Ok(values)
    }

    /// The proxies that were sent, by name, in [`PROXY_NAMES`] order.
    pub fn sent(&self) -> impl Iterator<Item = (&'static str, f64)> + '_ {
        PROXY_NAMES
            .iter()
            .zip(self.0)
            .filter(|(_, v)| !v.is_nan())
            .map(|(&name, v)| (name, v))
    }
}

/// Why a set of named proxies was refused. Callers prefix the field path
/// they know (`candidates[3].proxies`) and [`ProxyError::key`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProxyError {
    #[error("unknown proxy {name:?}; known: {}", PROXY_NAMES.join(", "))]
    Unknown { name: String },
    #[error("sent twice")]
    Duplicate { name: String },
    #[error("{value} is not a finite number")]
    NonFinite { name: String, value: f64 },
}

impl ProxyError {
    /// The map key the error is about (`["synflow"]`), or "" when the
    /// name itself is the problem.
    pub fn key(&self) -> String {
        match self {
            ProxyError::Unknown { .. } => String::new(),
            ProxyError::Duplicate { name } | ProxyError::NonFinite { name, .. } => {
                format!("[{name:?}]")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Space(usize),
    Proxy(usize),
    ProxiesSent,
}

/// How to build a model's input row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureMap {
    sources: Vec<Source>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "feature {name:?} is neither a feature of search space {space:?} nor a known zero-cost proxy"
)]
pub struct UnknownFeature {
    pub name: String,
    pub space: String,
}

impl FeatureMap {
    pub fn resolve(space: &dyn SearchSpace, names: &[String]) -> Result<Self, UnknownFeature> {
        let space_names = space.feature_names();
        let sources = names
            .iter()
            .map(|name| {
                if let Some(i) = space_names.iter().position(|n| n == name) {
                    return Ok(Source::Space(i));
                }
                if name == PROXIES_SENT_FEATURE {
                    return Ok(Source::ProxiesSent);
                }
                name.strip_prefix(PROXY_FEATURE_PREFIX)
                    .and_then(proxy_index)
                    .map(Source::Proxy)
                    .ok_or_else(|| UnknownFeature {
                        name: name.clone(),
                        space: space.name().to_owned(),
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { sources })
    }

    pub fn len(&self) -> usize {
        self.sources.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// Whether the model reads any proxy.
    pub fn uses_proxies(&self) -> bool {
        self.sources
            .iter()
            .any(|s| matches!(s, Source::Proxy(_) | Source::ProxiesSent))
    }

    /// Whether the model answers candidates without every proxy from trees
    /// of their own (it reads [`PROXIES_SENT_FEATURE`]).
    pub fn switches_on_proxies(&self) -> bool {
        self.sources.contains(&Source::ProxiesSent)
    }

    /// Appends one row: `space_features` in the space's order, `proxies`
    /// `None` when the candidate's proxies are not for this model's dataset.
    pub fn push_row(
        &self,
        space_features: &[f64],
        proxies: Option<&ProxyValues>,
        row: &mut Vec<f64>,
    ) {
        row.extend(self.sources.iter().map(|s| match *s {
            Source::Space(i) => space_features[i],
            Source::Proxy(i) => proxies.map_or(f64::NAN, |p| p.0[i]),
            // Counts of at most 13 are exact in f64.
            Source::ProxiesSent => proxies.map_or(0.0, |p| p.count_sent() as f64),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::nb201::Nb201;

    #[test]
    fn rows_follow_the_stored_order_and_missing_proxies_are_nan() {
        let space = Nb201::new();
        let names = vec![
            "zc.synflow".to_owned(),
            "ops.conv3x3".to_owned(),
            "zc.nwot".to_owned(),
        ];
        let map = FeatureMap::resolve(&space, &names).unwrap();
        let arch = space.parse("333333").unwrap();
        let mut proxies = ProxyValues::MISSING;
        proxies.0[proxy_index("synflow").unwrap()] = 42.0;
        let mut row = Vec::new();
        map.push_row(&arch.features, Some(&proxies), &mut row);
        assert_eq!(row[0], 42.0);
        assert_eq!(row[1], 6.0);
        assert!(row[2].is_nan());
        row.clear();
        map.push_row(&arch.features, None, &mut row);
        assert!(row[0].is_nan());
        let err = FeatureMap::resolve(&space, &["zc.magic".to_owned()]).unwrap_err();
        assert_eq!(err.name, "zc.magic");
    }

    #[test]
    fn proxy_names_are_sorted() {
        // The store's evaluation keys hash sent proxies in this order.
        assert!(PROXY_NAMES.is_sorted());
    }

    #[test]
    fn named_proxies_are_checked_and_the_first_error_is_stable() {
        let values = ProxyValues::from_named([("synflow", 3.5), ("nwot", -1.0)]).unwrap();
        assert_eq!(values.0[proxy_index("synflow").unwrap()], 3.5);
        assert_eq!(
            values.sent().collect::<Vec<_>>(),
            vec![("nwot", -1.0), ("synflow", 3.5)]
        );
        assert_eq!(ProxyValues::from_named([]).unwrap().sent().count(), 0);

        // Two errors: the one first in name order wins, whatever the order sent.
        for input in [
            [("zzz", 1.0), ("fisher", f64::NAN)],
            [("fisher", f64::NAN), ("zzz", 1.0)],
        ] {
            let err = ProxyValues::from_named(input).unwrap_err();
            assert!(matches!(err, ProxyError::NonFinite { ref name, .. } if name == "fisher"));
        }
        let err = ProxyValues::from_named([("snip", f64::INFINITY)]).unwrap_err();
        assert_eq!(
            format!("proxies{}: {err}", err.key()),
            "proxies[\"snip\"]: inf is not a finite number"
        );
        assert!(matches!(
            ProxyValues::from_named([("snip", 1.0), ("snip", 2.0)]).unwrap_err(),
            ProxyError::Duplicate { .. }
        ));
        assert!(matches!(
            ProxyValues::from_named([("zc.snip", 1.0)]).unwrap_err(),
            ProxyError::Unknown { .. }
        ));
    }
}
