//! The one table the benchmark prints: scenario, figure, value, target, met / not met.

use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Met {
    Yes,
    No,
    /// A figure without a target (a breakdown, or a target that applies at another N).
    Info,
}

#[derive(Clone, Debug)]
pub struct Row {
    pub scenario: String,
    pub figure: String,
    pub value: String,
    pub target: String,
    pub met: Met,
}

/// Rows of one scenario.
pub struct Rows {
    scenario: String,
    pub rows: Vec<Row>,
}

impl Rows {
    pub fn new(scenario: impl Into<String>) -> Self {
        Self {
            scenario: scenario.into(),
            rows: Vec::new(),
        }
    }

    /// A figure with a target; `met` is `None` when the target does not apply here.
    pub fn target(
        &mut self,
        figure: impl Into<String>,
        value: impl Into<String>,
        target: impl Into<String>,
        met: Option<bool>,
    ) {
        self.rows.push(Row {
            scenario: self.scenario.clone(),
            figure: figure.into(),
            value: value.into(),
            target: target.into(),
            met: match met {
                Some(true) => Met::Yes,
                Some(false) => Met::No,
                None => Met::Info,
            },
        });
    }

    /// A figure shown for information.
    pub fn info(&mut self, figure: impl Into<String>, value: impl Into<String>) {
        self.target(figure, value, "", None);
    }
}

fn met_text(met: Met) -> &'static str {
    match met {
        Met::Yes => "met",
        Met::No => "NOT MET",
        Met::Info => "",
    }
}

/// The table as aligned text.
pub fn text(rows: &[Row]) -> String {
    let header = ["scenario", "figure", "value", "target", "met"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.clone(),
                r.figure.clone(),
                r.value.clone(),
                r.target.clone(),
                met_text(r.met).to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: &[String]| {
        let mut text = String::new();
        for (cell, width) in row.iter().zip(widths) {
            let _ = write!(text, "{cell:<width$}  ");
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&mut out, &header.map(str::to_owned));
    line(&mut out, &widths.map(|w| "-".repeat(w)));
    for row in &cells {
        line(&mut out, row);
    }
    out
}

/// The table as Markdown (for docs/benchmarks.md).
pub fn markdown(rows: &[Row]) -> String {
    let mut out =
        String::from("| scenario | figure | value | target | met |\n|---|---|---|---|---|\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            r.scenario,
            r.figure,
            r.value,
            r.target,
            met_text(r.met)
        );
    }
    out
}

/// `n / d` as a float (counts are far below 2^52).
#[allow(clippy::cast_precision_loss)]
pub fn per(n: usize, d: usize) -> f64 {
    n as f64 / d.max(1) as f64
}

#[allow(clippy::cast_precision_loss)]
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[allow(clippy::cast_precision_loss)]
pub fn kib_per(kib: u64, n: usize) -> f64 {
    kib as f64 / n.max(1) as f64
}
