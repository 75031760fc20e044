//! The datasets objectives and proxies refer to. A model uses proxies
//! computed on one dataset, the one it was trained with: its own where the
//! data has them, else a stand-in of the same input shape
//! ([`Dataset::proxy_sources`]).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dataset {
    Cifar10,
    Cifar100,
    ImageNet16_120,
}

impl Dataset {
    pub const ALL: [Dataset; 3] = [Dataset::Cifar10, Dataset::Cifar100, Dataset::ImageNet16_120];

    /// The name used in objective IDs, requests and benchmark file names.
    pub fn name(self) -> &'static str {
        match self {
            Dataset::Cifar10 => "cifar10",
            Dataset::Cifar100 => "cifar100",
            Dataset::ImageNet16_120 => "ImageNet16-120",
        }
    }

    pub fn from_name(name: &str) -> Option<Dataset> {
        Dataset::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Classes of the classifier head.
    pub fn num_classes(self) -> u64 {
        match self {
            Dataset::Cifar10 => 10,
            Dataset::Cifar100 => 100,
            Dataset::ImageNet16_120 => 120,
        }
    }

    /// Input height and width in pixels.
    pub fn resolution(self) -> u64 {
        match self {
            Dataset::Cifar10 | Dataset::Cifar100 => 32,
            Dataset::ImageNet16_120 => 16,
        }
    }

    /// The datasets whose zero-cost proxies a model of this dataset may
    /// read, best first: its own, then those of the same input resolution.
    /// A network computes on the same shapes there (only the classifier
    /// head differs), so where no proxies of the dataset itself are at hand
    /// (NAS-Bench-Suite-Zero has none for CIFAR-100 on NAS-Bench-201),
    /// those of its stand-in still rank its networks: `docs/quality.md`
    /// measures what CIFAR-10's proxies do for CIFAR-100's objectives.
    pub fn proxy_sources(self) -> &'static [Dataset] {
        match self {
            Dataset::Cifar10 => &[Dataset::Cifar10, Dataset::Cifar100],
            Dataset::Cifar100 => &[Dataset::Cifar100, Dataset::Cifar10],
            Dataset::ImageNet16_120 => &[Dataset::ImageNet16_120],
        }
    }

    /// Comma-separated names, for error messages.
    pub fn names() -> String {
        Dataset::ALL.map(Dataset::name).join(", ")
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_sources_start_with_the_dataset_itself_and_keep_its_resolution() {
        for ds in Dataset::ALL {
            let sources = ds.proxy_sources();
            assert_eq!(sources.first(), Some(&ds));
            assert!(sources.iter().all(|s| s.resolution() == ds.resolution()));
            // Each dataset of the same resolution is offered once.
            let same: Vec<_> = Dataset::ALL
                .into_iter()
                .filter(|s| s.resolution() == ds.resolution())
                .collect();
            assert_eq!(sources.len(), same.len(), "{ds}");
        }
    }
}
