//! What a benchmark run produces: figures, each beside the baseline it was
//! measured against in the same run, printed as a table and written as JSON.

use serde::Serialize;

/// Which way a figure improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// What a figure was compared with: the floor it cannot beat by much, or
/// the same load without the thing measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Baseline {
    pub name: String,
    pub value: f64,
}

/// A figure's target and whether this run met it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub description: String,
    pub met: bool,
}

/// One measured figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub section: &'static str,
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub better: Better,
    pub baseline: Option<Baseline>,
    /// `value / baseline.value`.
    pub ratio: Option<f64>,
    pub target: Option<Target>,
}

impl Figure {
    pub fn new(
        section: &'static str,
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Self {
            section,
            name: name.into(),
            value,
            unit,
            better: Better::Higher,
            baseline: None,
            ratio: None,
            target: None,
        }
    }

    pub fn lower_is_better(mut self) -> Self {
        self.better = Better::Lower;
        self
    }

    pub fn against(mut self, name: impl Into<String>, value: f64) -> Self {
        self.ratio = (value != 0.0).then(|| self.value / value);
        self.baseline = Some(Baseline {
            name: name.into(),
            value,
        });
        self
    }

    pub fn target(mut self, description: impl Into<String>, met: bool) -> Self {
        self.target = Some(Target {
            description: description.into(),
            met,
        });
        self
    }

    /// A target on the ratio to the baseline: at least `min` of it when
    /// higher is better, at most `max` when lower is.
    pub fn ratio_target(self, bound: f64) -> Self {
        let ratio = self.ratio.unwrap_or(f64::NAN);
        let (met, description) = match self.better {
            Better::Higher => (ratio >= bound, format!(">= {bound} x baseline")),
            Better::Lower => (ratio <= bound, format!("<= {bound} x baseline")),
        };
        self.target(description, met)
    }

    /// A target on the value itself.
    pub fn value_target(self, bound: f64) -> Self {
        let (met, description) = match self.better {
            Better::Higher => (
                self.value >= bound,
                format!(">= {}", human(bound, self.unit)),
            ),
            Better::Lower => (self.value < bound, format!("< {}", human(bound, self.unit))),
        };
        self.target(description, met)
    }
}

/// A whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub nasperf_version: &'static str,
    /// The command line that produced this report.
    pub command: String,
    pub quick: bool,
    pub cores: usize,
    pub started_at: String,
    pub figures: Vec<Figure>,
    /// Sections that did not run, and why.
    pub skipped: Vec<String>,
}

impl Report {
    pub fn new(quick: bool) -> Self {
        Self {
            nasperf_version: env!("CARGO_PKG_VERSION"),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            quick,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            started_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            figures: Vec::new(),
            skipped: Vec::new(),
        }
    }

    pub fn targets_missed(&self) -> Vec<&Figure> {
        self.figures
            .iter()
            .filter(|f| f.target.as_ref().is_some_and(|t| !t.met))
            .collect()
    }

    /// The report as a Markdown table (what `docs/performance.md` holds).
    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| section | figure | value | baseline | ratio | target | met |\n|---|---|---|---|---|---|---|\n",
        );
        for f in &self.figures {
            let (baseline, ratio) = match &f.baseline {
                Some(b) => (
                    format!("{} ({})", human(b.value, f.unit), b.name),
                    f.ratio.map_or("-".to_owned(), |r| format!("{r:.2}")),
                ),
                None => ("-".to_owned(), "-".to_owned()),
            };
            let (target, met) = match &f.target {
                Some(t) => (t.description.clone(), if t.met { "yes" } else { "**no**" }),
                None => ("-".to_owned(), "-"),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {baseline} | {ratio} | {target} | {met} |\n",
                f.section,
                f.name,
                human(f.value, f.unit),
            ));
        }
        for s in &self.skipped {
            out.push_str(&format!("\nSkipped: {s}\n"));
        }
        out
    }
}

/// A value with its unit, with as many digits as it deserves.
pub fn human(value: f64, unit: &str) -> String {
    let digits = match value.abs() {
        v if v == 0.0 || v >= 100.0 => 0,
        v if v >= 10.0 => 1,
        v if v >= 0.1 => 2,
        _ => 4,
    };
    if unit.is_empty() {
        format!("{value:.digits$}")
    } else if value.abs() >= 1e-3 || value == 0.0 {
        format!("{value:.digits$} {unit}")
    } else {
        format!("{value:.2e} {unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_and_targets_follow_the_direction_of_better() {
        let faster = Figure::new("s", "rows", 150.0, "rows/s")
            .against("floor", 100.0)
            .ratio_target(1.0);
        assert_eq!(faster.ratio, Some(1.5));
        assert!(faster.target.as_ref().is_some_and(|t| t.met));

        let slower = Figure::new("s", "p99", 1.2, "ms")
            .lower_is_better()
            .against("no swaps", 1.0)
            .ratio_target(1.1);
        assert!(slower.target.as_ref().is_some_and(|t| !t.met));

        let under = Figure::new("s", "rss", 150.0, "MB")
            .lower_is_better()
            .value_target(200.0);
        assert!(under.target.as_ref().is_some_and(|t| t.met));

        // A zero baseline gives no ratio, and a ratio target is then missed.
        let undefined = Figure::new("s", "x", 1.0, "")
            .against("zero", 0.0)
            .ratio_target(1.0);
        assert_eq!(undefined.ratio, None);
        assert!(undefined.target.as_ref().is_some_and(|t| !t.met));
    }

    #[test]
    fn the_markdown_table_has_one_row_per_figure_and_marks_misses() {
        let mut report = Report::new(true);
        report.figures.push(
            Figure::new("grpc", "p99, concurrency 1", 0.8, "ms")
                .lower_is_better()
                .value_target(1.0),
        );
        report.figures.push(
            Figure::new("ingest", "RecordEvaluations", 40.0, "rows/s")
                .against("COPY", 100.0)
                .ratio_target(0.5),
        );
        let md = report.markdown();
        assert_eq!(md.lines().filter(|l| l.starts_with("| ")).count(), 3);
        assert!(md.contains("| grpc | p99, concurrency 1 | 0.80 ms |"));
        assert!(md.contains("| 0.40 | >= 0.5 x baseline | **no** |"));
        assert_eq!(report.targets_missed().len(), 1);
    }
}
