//! The datasets objectives and proxies refer to. A model only ever uses
//! proxies computed on its own dataset.

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
