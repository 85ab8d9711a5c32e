//! The reports the runner writes from its own output: `benchmarks.md` (the machine, the
//! commands, every saved set of alternated rounds and the full run's table) and, when the
//! output folder is the project's `docs/`, the speed table in the README (between two
//! markers). No figure in either is typed by hand.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

use crate::rounds::{Saved, table};

/// Where the README's generated table starts and ends.
const BEGIN: &str = "<!-- speed: written by `compare`, do not edit -->";
const END: &str = "<!-- /speed -->";
/// Where the README's table of what faults cost starts and ends (from the saved set
/// [`FAULTS`]).
const FAULTS_BEGIN: &str = "<!-- faults: written by `compare`, do not edit -->";
const FAULTS_END: &str = "<!-- /faults -->";
/// The key of the saved set of the fault cases.
const FAULTS: &str = "faults";

/// One entry of the full run's `compare.json`.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(default)]
    id: String,
    group: String,
    name: String,
    side: String,
    unit: String,
    median: Option<f64>,
    ours_better_by: Option<f64>,
    note: Option<String>,
}

/// A row group of the README's table: what is compared, our case, and each peer with a
/// short label (ids as `compare rounds` names cases).
struct Headline {
    what: &'static str,
    ours: &'static str,
    peers: &'static [(&'static str, &'static str)],
}

/// The README's rows.
const HEADLINES: &[Headline] = &[
    Headline {
        what: "round trip, main <-> worker",
        ours: "rt_worker",
        peers: &[
            ("node/round_trip.js,parentport", "Node parentPort"),
            ("rt_crossbeam", "crossbeam-channel"),
        ],
    },
    Headline {
        what: "one-way, 1 M posts",
        ours: "tput_ours",
        peers: &[
            ("node/one_way.js", "Node postMessage"),
            ("tput_crossbeam", "crossbeam-channel"),
        ],
    },
    Headline {
        what: "spawn to first message",
        ours: "spawn_worker",
        peers: &[
            ("node/spawn.js", "Node new Worker"),
            ("spawn_thread", "std::thread + mpsc"),
        ],
    },
    Headline {
        what: "memory per idle worker",
        ours: "idle_worker",
        peers: &[
            ("node/idle.js", "Node Worker"),
            ("idle_thread", "std::thread"),
        ],
    },
    Headline {
        what: "Atomics wait/notify",
        ours: "atomics_ours",
        peers: &[("node/atomics.js", "Node Atomics")],
    },
    Headline {
        what: "the chapter's loop, 10 M tasks",
        ours: "sqrt_seed",
        peers: &[
            ("node/sqrt_piscina.js,piscina4", "piscina 4"),
            ("sqrt_threadpool", "threadpool"),
            ("sqrt_rayon", "rayon::spawn"),
        ],
    },
    Headline {
        what: "async pool, 1,000 timers",
        ours: "async_pool",
        peers: &[("node/async_piscina.js,piscina4", "piscina 4")],
    },
    Headline {
        what: "process worker round trip",
        ours: "rt_process",
        peers: &[
            ("rt_ipc_channel", "ipc-channel"),
            ("node/cluster_ipc.js", "Node process.send"),
        ],
    },
    Headline {
        what: "process pool, one task",
        ours: "rt_process_pool",
        peers: &[("node/tinypool_rt.js", "tinypool (processes)")],
    },
    Headline {
        what: "cluster IPC round trip",
        ours: "ipc_cluster",
        peers: &[("node/cluster_ipc.js", "Node worker.send")],
    },
    Headline {
        what: "HTTP hello, 2 workers",
        ours: "http/ours-rr",
        peers: &[("http/node-2", "Node cluster")],
    },
    Headline {
        what: "remote pool, 512 in flight",
        ours: "remote_run",
        peers: &[("node/bullmq.js,run", "BullMQ")],
    },
    Headline {
        what: "remote pool, round trip",
        ours: "remote_rtt",
        peers: &[("node/bullmq.js,rtt", "BullMQ")],
    },
];

/// The full run's `compare.json`.
#[derive(Debug, Deserialize)]
struct FullRun {
    machine: String,
    mode: String,
    results: Vec<Entry>,
}

impl FullRun {
    fn load(path: &Path) -> anyhow::Result<Option<Self>> {
        if !path.exists() {
            return Ok(None);
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let run: Self =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok((run.mode == "full").then_some(run))
    }
}

/// Writes `out/benchmarks.md` from `out/compare.json` and `out/rounds.json`, and the
/// README's speed table if `out` is the project's `docs/`.
pub(crate) fn write(out: &Path) -> anyhow::Result<()> {
    let full = FullRun::load(&out.join("compare.json"))?;
    let saved = Saved::load(&out.join("rounds.json"))?;
    let path = out.join("benchmarks.md");
    std::fs::write(&path, benchmarks(full.as_ref(), &saved))?;
    println!("wrote {}", path.display());
    let Some(readme) = readme_of(out) else {
        return Ok(());
    };
    let mut text = std::fs::read_to_string(&readme)?;
    if let Some(full) = &full
        && let Some(updated) = replace_block(&text, (BEGIN, END), &speed_table(full))
    {
        text = updated;
        println!("wrote the speed table in {}", readme.display());
    }
    if let Some(table) = faults_table(&saved)
        && let Some(updated) = replace_block(&text, (FAULTS_BEGIN, FAULTS_END), &table)
    {
        text = updated;
        println!("wrote the faults table in {}", readme.display());
    }
    std::fs::write(&readme, text)?;
    Ok(())
}

/// The README's table of what a fault costs a submitter, from the saved set [`FAULTS`]
/// (`compare rounds N remote_recovery_first remote_recovery_last remote_failover_p99
/// remote_failover_max --save faults`).
fn faults_table(saved: &Saved) -> Option<String> {
    let set = saved.sets.iter().find(|set| set.key == FAULTS)?;
    let median = |case: &str| {
        set.cases
            .iter()
            .find(|runs| runs.case.split(':').next() == Some(case))
            .map(|runs| value(runs.median, &runs.unit))
    };
    let mut out = format!(
        "| fault (default settings, medians of {} rounds) | what a submitter sees |\n|---|---|\n",
        set.rounds
    );
    let _ = writeln!(
        out,
        "| a worker killed (SIGKILL) with 100 tasks | first redone after {}, last after {} |",
        median("remote_recovery_first")?,
        median("remote_recovery_last")?,
    );
    let _ = writeln!(
        out,
        "| a 3-node cluster's stream leader killed | round trips: p99 {}, longest {} |",
        median("remote_failover_p99")?,
        median("remote_failover_max")?,
    );
    Some(out)
}

/// The project's README, if `out` is the project's `docs/` folder.
fn readme_of(out: &Path) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .ok()?;
    let docs = root.join("docs").canonicalize().ok()?;
    (out.canonicalize().ok()? == docs).then(|| root.join("README.md"))
}

/// `text` with what lies between the markers replaced by `block`; `None` without markers.
fn replace_block(text: &str, (begin, end): (&str, &str), block: &str) -> Option<String> {
    let start = text.find(begin)? + begin.len();
    let end = start + text[start..].find(end)?;
    Some(format!("{}\n{block}{}", &text[..start], &text[end..]))
}

fn value(median: f64, unit: &str) -> String {
    let digits = if median >= 100.0 { 1 } else { 3 };
    format!("{median:.digits$} {unit}")
}

/// The README's table: for each headline comparison, our median and how many times better
/// it is than each peer in the same run (the ratio the runner computed).
fn speed_table(run: &FullRun) -> String {
    let mut out =
        String::from("| what | worker-threads | against | better by |\n|---|---|---|---|\n");
    let group_of = |id: &str| run.results.iter().find(|entry| entry.id == id);
    for Headline { what, ours, peers } in HEADLINES {
        let Some(ours) = group_of(ours) else { continue };
        let Some(median) = ours.median else { continue };
        let mut first = true;
        for (peer, label) in *peers {
            let Some(ratio) = run
                .results
                .iter()
                .find(|entry| entry.id == *peer && entry.group == ours.group)
                .and_then(|entry| entry.ours_better_by)
            else {
                continue;
            };
            let (what, ours) = if first {
                (*what, value(median, &ours.unit))
            } else {
                ("", String::new())
            };
            first = false;
            let _ = writeln!(out, "| {what} | {ours} | {label} | {ratio:.2}x |");
        }
    }
    let _ = writeln!(out, "\nMeasured on {}.", without_date(&run.machine));
    out
}

/// The machine line without the date it starts with, nor any parenthesised part (a
/// toolchain's commit and date): the README names no run dates; the JSON and
/// benchmarks.md keep them.
fn without_date(machine: &str) -> String {
    let rest = match machine.split_once(", ") {
        Some((date, rest)) if date.len() == 10 && date.as_bytes()[4] == b'-' => rest,
        _ => machine,
    };
    let mut out = String::with_capacity(rest.len());
    let mut depth = 0usize;
    for c in rest.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(" ,", ",")
}

/// The whole of `benchmarks.md`.
fn benchmarks(full: Option<&FullRun>, saved: &Saved) -> String {
    let mut out = String::from(
        "# Benchmarks\n\n\
         Written by the comparison runner (`benches/compare`) from its own runs: no figure here \
         is typed by hand. Ratios are \"how many times better worker-threads is\" (above 1x: \
         better) in the full run, and the first case's median over each case's in a set of \
         rounds.\n\n\
         - `cargo run --release -p compare -- --out docs`: the full run (every case three \
         times, medians, in a process of its own each; Node and npm for Node's side).\n\
         - `cargo run --release -p compare -- --out docs rounds R CASE:N ... --save KEY`: a \
         set of alternated rounds (each round runs every case once, in turn), saved under KEY.\n\n\
         The host's speed drifts by up to 2x within an hour, so only figures measured in the same \
         rounds are compared with each other.\n\n## Alternated rounds\n",
    );
    if saved.sets.is_empty() {
        out.push_str("\nNone saved yet.\n");
    }
    for set in &saved.sets {
        let _ = write!(
            out,
            "\n### {}\n\n`{}` ({} rounds; {})\n\n{}",
            if set.title.is_empty() {
                &set.key
            } else {
                &set.title
            },
            set.command,
            set.rounds,
            set.machine,
            table(set)
        );
    }
    out.push_str("\n## Full run\n");
    let Some(run) = full else {
        out.push_str("\nNot run yet.\n");
        return out;
    };
    let _ = write!(
        out,
        "\n{}\n\n| case | implementation | median | worker-threads better by |\n|---|---|---|---|\n",
        run.machine
    );
    let mut last_group = "";
    for entry in &run.results {
        let group = if entry.group == last_group {
            ""
        } else {
            &entry.group
        };
        last_group = &entry.group;
        let name = if entry.side == "Ours" {
            format!("**{}**", entry.name)
        } else {
            entry.name.clone()
        };
        let median = entry.median.map_or_else(
            || entry.note.clone().unwrap_or_default(),
            |median| value(median, &entry.unit),
        );
        let ratio = entry
            .ours_better_by
            .map_or(String::new(), |ratio| format!("{ratio:.2}x"));
        let _ = writeln!(out, "| {group} | {name} | {median} | {ratio} |");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{BEGIN, END, HEADLINES, replace_block, without_date};

    #[test]
    fn the_readme_gets_the_machine_without_the_date() {
        assert_eq!(without_date("2026-12-06, 2 cores, CPU"), "2 cores, CPU");
        assert_eq!(without_date("2 cores, CPU"), "2 cores, CPU");
        assert_eq!(
            without_date("2026-11-30, 2 cores, rustc 1.95.0 (59807616e 2026-04-14), node v20"),
            "2 cores, rustc 1.95.0, node v20"
        );
    }

    #[test]
    fn every_headline_names_cases_of_the_full_run() {
        for super::Headline { what, ours, peers } in HEADLINES {
            assert!(crate::runner::has_case(ours), "{what}: no case {ours}");
            for (peer, _) in *peers {
                assert!(crate::runner::has_case(peer), "{what}: no case {peer}");
            }
        }
    }

    #[test]
    fn the_faults_table_gives_each_cases_median_from_the_saved_set() {
        use crate::rounds::{CaseRuns, Saved, Set};
        let runs = |case: &str, unit: &str, median: f64| CaseRuns {
            case: case.to_string(),
            unit: unit.to_string(),
            runs: vec![median],
            median,
            first_over_this: 1.0,
        };
        let mut saved = Saved::default();
        assert_eq!(super::faults_table(&saved), None);
        saved.sets.push(Set {
            key: super::FAULTS.to_string(),
            title: String::new(),
            command: String::new(),
            machine: String::new(),
            rounds: 5,
            cases: vec![
                runs("remote_recovery_first:100", "ms", 1481.5),
                runs("remote_recovery_last:100", "ms", 1706.25),
                runs("remote_failover_p99:3000", "ms", 3.625),
                runs("remote_failover_max:3000", "ms", 4640.0),
            ],
        });
        let table = super::faults_table(&saved).unwrap();
        assert!(table.contains("medians of 5 rounds"), "{table}");
        assert!(
            table.contains("after 1481.5 ms, last after 1706.2 ms"),
            "{table}"
        );
        assert!(table.contains("p99 3.625 ms, longest 4640.0 ms"), "{table}");
        assert!(table.lines().all(|line| line.len() <= 100), "{table}");
    }

    #[test]
    fn the_block_between_the_markers_is_replaced_and_the_rest_kept() {
        let text = format!("intro\n{BEGIN}\nold table\n{END}\nafter\n");
        let updated = replace_block(&text, (BEGIN, END), "new table\n").unwrap();
        assert_eq!(
            updated,
            format!("intro\n{BEGIN}\nnew table\n{END}\nafter\n")
        );
        assert_eq!(replace_block("no markers", (BEGIN, END), "x"), None);
    }
}
