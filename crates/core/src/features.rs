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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Space(usize),
    Proxy(usize),
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
        self.sources.iter().any(|s| matches!(s, Source::Proxy(_)))
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
}
