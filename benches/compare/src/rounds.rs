//! Alternated rounds: the named cases run in turn, round after round, so that each case
//! sees the same slow and fast periods of the machine; each case's runs, its median, and
//! the first case's median against every other's.
//!
//! A speed claim compares medians taken this way. The host's speed drifts by up to 2x
//! within an hour, so two cases run one after the other (or a single pair of runs) can
//! differ by more than the effect being measured.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::runner;

/// One case of a set, as given on the command line: `CASE[:N]` (a Rust case, `N` defaulting
/// to its size in the full run) or `node/SCRIPT[,ARG...]:N` (a Node program of `node/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Spec {
    pub(crate) program: Program,
    pub(crate) size: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Program {
    Rust(String),
    Node { script: String, args: Vec<String> },
}

impl Spec {
    /// Parses `CASE[:N]` or `node/SCRIPT[,ARG...]:N`.
    pub(crate) fn parse(text: &str) -> anyhow::Result<Self> {
        let (name, size) = match text.rsplit_once(':') {
            Some((name, size)) => {
                let size = size
                    .replace('_', "")
                    .parse()
                    .with_context(|| format!("{text}: the size after ':' is not a number"))?;
                (name, Some(size))
            }
            None => (text, None),
        };
        let program = match name.strip_prefix("node/") {
            Some(rest) => {
                let mut parts = rest.split(',').map(str::to_owned);
                let script = parts.next().unwrap_or_default();
                if !script.ends_with(".js") {
                    bail!("{text}: a Node case is node/SCRIPT.js[,ARG...]:N");
                }
                Program::Node {
                    script,
                    args: parts.collect(),
                }
            }
            None if crate::cases::NAMES.contains(&name) => Program::Rust(name.to_owned()),
            None => bail!(
                "{text}: no case {name:?} (`compare case --help` names the Rust cases; a Node \
                 program is node/SCRIPT.js[,ARG...]:N)"
            ),
        };
        let size = match size.or_else(|| runner::full_size(&program)) {
            Some(size) => size,
            None => bail!("{text}: this case is not in the full run; give its size as {name}:N"),
        };
        Ok(Self { program, size })
    }

    /// How it was written (with its size).
    pub(crate) fn label(&self) -> String {
        match &self.program {
            Program::Rust(name) => format!("{name}:{}", self.size),
            Program::Node { script, args } => {
                let args: String = args.iter().map(|arg| format!(",{arg}")).collect();
                format!("node/{script}{args}:{}", self.size)
            }
        }
    }

    fn command(&self) -> anyhow::Result<Command> {
        match &self.program {
            Program::Rust(name) => {
                let mut command = Command::new(std::env::current_exe()?);
                command.args(["case", name, &self.size.to_string()]);
                Ok(command)
            }
            Program::Node { script, args } => {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                runner::node_command(script, &args, self.size).map_err(anyhow::Error::msg)
            }
        }
    }
}

/// One case's figures in a set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CaseRuns {
    pub(crate) case: String,
    pub(crate) unit: String,
    pub(crate) runs: Vec<f64>,
    pub(crate) median: f64,
    /// The first case's median divided by this one's.
    pub(crate) first_over_this: f64,
}

/// A set of alternated rounds, as saved in `rounds.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Set {
    /// The key it is saved under (a later set with the same key replaces it).
    pub(crate) key: String,
    /// What it checks, in a sentence.
    pub(crate) title: String,
    /// The command that measured it.
    pub(crate) command: String,
    pub(crate) machine: String,
    pub(crate) rounds: usize,
    pub(crate) cases: Vec<CaseRuns>,
}

/// `rounds.json`: every saved set.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Saved {
    pub(crate) sets: Vec<Set>,
}

impl Saved {
    pub(crate) fn load(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

/// What `compare rounds` was asked.
pub(crate) struct Options<'a> {
    pub(crate) rounds: usize,
    pub(crate) specs: &'a [String],
    /// Save the set under this key in `out/rounds.json` (then rewrite the reports).
    pub(crate) save: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) out: &'a Path,
}

/// Runs the set and prints (and, with `save`, records) its figures.
pub(crate) fn main(options: &Options<'_>) -> anyhow::Result<()> {
    let specs: Vec<Spec> = options
        .specs
        .iter()
        .map(|text| Spec::parse(text))
        .collect::<anyhow::Result<_>>()?;
    if specs.is_empty() || options.rounds == 0 {
        bail!("give at least one round and one case");
    }
    if specs
        .iter()
        .any(|spec| matches!(spec.program, Program::Node { .. }))
    {
        runner::ensure_node_packages()?;
    }
    let machine = runner::machine_line();
    let command = format!(
        "compare rounds {} {}",
        options.rounds,
        specs.iter().map(Spec::label).collect::<Vec<_>>().join(" ")
    );
    println!("{command}\nmachine: {machine}");
    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); specs.len()];
    for round in 1..=options.rounds {
        let mut line = format!("round {round}/{}:", options.rounds);
        for (spec, runs) in specs.iter().zip(&mut runs) {
            let timeout = runner::timeout_of(&spec.program).unwrap_or(Duration::from_secs(600));
            let json = runner::run_once(&mut spec.command()?, timeout)
                .map_err(|why| anyhow::anyhow!("{}: {why}", spec.label()))?;
            let value = json
                .get("value")
                .and_then(serde_json::Value::as_f64)
                .with_context(|| format!("{}: no value in {json}", spec.label()))?;
            runs.push(value);
            line.push_str(&format!(" {}={value:.3}", spec.label()));
        }
        println!("{line}");
    }
    let first = runner::median(&runs[0]).unwrap_or(f64::NAN);
    let cases: Vec<CaseRuns> = specs
        .iter()
        .zip(runs)
        .map(|(spec, runs)| {
            let median = runner::median(&runs).unwrap_or(f64::NAN);
            CaseRuns {
                case: spec.label(),
                unit: runner::unit_of(&spec.program)
                    .unwrap_or_default()
                    .to_owned(),
                runs,
                median,
                first_over_this: first / median,
            }
        })
        .collect();
    let set = Set {
        key: options.save.clone().unwrap_or_default(),
        title: options.title.clone().unwrap_or_default(),
        command,
        machine,
        rounds: options.rounds,
        cases,
    };
    println!("\n{}", table(&set));
    if let Some(key) = &options.save {
        let path = options.out.join("rounds.json");
        let mut saved = Saved::load(&path)?;
        match saved.sets.iter_mut().find(|old| &old.key == key) {
            Some(old) => *old = set,
            None => saved.sets.push(set),
        }
        std::fs::create_dir_all(options.out)?;
        std::fs::write(&path, serde_json::to_string_pretty(&saved)? + "\n")?;
        println!("saved as {key:?} in {}", path.display());
        crate::report::write(options.out)?;
    }
    Ok(())
}

/// The set's figures as a markdown table.
pub(crate) fn table(set: &Set) -> String {
    let first = set.cases.first().map_or("", |case| case.case.as_str());
    let mut table = format!("| case | runs | median | {first} ÷ this |\n|---|---|---|---|\n");
    for case in &set.cases {
        let runs: Vec<String> = case.runs.iter().map(|run| format!("{run:.3}")).collect();
        table.push_str(&format!(
            "| `{}` | {} | **{:.3}** {} | {:.2}x |\n",
            case.case,
            runs.join(", "),
            case.median,
            case.unit,
            case.first_over_this
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::{Program, Spec};
    use crate::runner::median;

    #[test]
    fn a_spec_names_a_rust_case_or_a_node_program_and_a_size() {
        let rust = Spec::parse("sqrt_seed:1_000").unwrap();
        assert_eq!(rust.program, Program::Rust("sqrt_seed".into()));
        assert_eq!(rust.size, 1000);
        assert_eq!(rust.label(), "sqrt_seed:1000");
        // Without a size, the full run's.
        assert_eq!(Spec::parse("sqrt_seed").unwrap().size, 10_000_000);
        let node = Spec::parse("node/bullmq.js,rtt:20").unwrap();
        assert_eq!(
            node.program,
            Program::Node {
                script: "bullmq.js".into(),
                args: vec!["rtt".into()]
            }
        );
        assert_eq!(node.label(), "node/bullmq.js,rtt:20");
        assert!(Spec::parse("no_such_case:3").is_err());
        assert!(Spec::parse("sqrt_seed:many").is_err());
        assert!(Spec::parse("node/x.py:3").is_err());
    }

    #[test]
    fn the_median_is_the_middle_run() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(3.0));
        assert_eq!(median(&[]), None);
    }
}
