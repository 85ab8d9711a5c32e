//! The runner's command line: help that names the cases, a clear error for an unknown
//! case, the list of comparisons, and one case's JSON line.

use std::process::{Command, Output};

fn compare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_compare"))
        .args(args)
        .output()
        .expect("the compare binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_describes_the_commands_without_a_stack_trace() {
    let out = compare(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for word in [
        "case", "list", "rounds", "report", "--smoke", "--out", "--redraw",
    ] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
    assert!(!text(&out.stderr).contains("panicked"));
    let case_help = text(&compare(&["case", "--help"]).stdout);
    assert!(
        case_help.contains("sqrt_seed") && case_help.contains("tput_ours"),
        "{case_help}"
    );
}

#[test]
fn an_unknown_case_is_a_usage_error_naming_the_cases() {
    let out = compare(&["case", "no_such_case", "1"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("invalid value 'no_such_case'") && err.contains("rt_worker"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn list_names_every_group_and_how_each_case_runs() {
    let out = compare(&["list"]);
    assert!(out.status.success());
    let list = text(&out.stdout);
    assert!(
        list.contains(
            "round trip, small message | ping_pong (Worker parent port) | compare case rt_worker N"
        ),
        "{list}"
    );
    assert!(list.contains("node node/"), "{list}");
}

#[test]
fn a_case_prints_its_value_as_one_json_line() {
    let out = compare(&["case", "tput_ours", "1000"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    assert!(
        line.starts_with("{\"value\":") && line.trim_end().ends_with('}'),
        "{line}"
    );
}

#[test]
fn rounds_alternate_the_cases_and_save_the_set_for_the_report() {
    let out_dir = std::env::temp_dir().join(format!("wt-compare-rounds-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = compare(&[
        "--out",
        out_dir.to_str().unwrap(),
        "rounds",
        "2",
        "tput_ours:1000",
        "tput_crossbeam:1000",
        "--save",
        "one-way",
        "--title",
        "one-way against crossbeam",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // Each round runs both cases, in turn.
    assert!(
        stdout.contains("round 1/2: tput_ours:1000=")
            && stdout.contains("round 2/2: tput_ours:1000="),
        "{stdout}"
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("rounds.json")).unwrap())
            .unwrap();
    let set = &saved["sets"][0];
    assert_eq!(set["key"], "one-way");
    assert_eq!(set["rounds"], 2);
    let cases = set["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for case in cases {
        let runs = case["runs"].as_array().unwrap();
        assert_eq!(runs.len(), 2, "{case}");
        let median = case["median"].as_f64().unwrap();
        // The median is one of the runs (the upper of two).
        let max = runs
            .iter()
            .map(|run| run.as_f64().unwrap())
            .fold(0.0, f64::max);
        assert_eq!(median, max, "{case}");
    }
    // The first case's median over itself.
    assert_eq!(cases[0]["first_over_this"].as_f64(), Some(1.0));
    let report = std::fs::read_to_string(out_dir.join("benchmarks.md")).unwrap();
    assert!(report.contains("### one-way against crossbeam"), "{report}");
    assert!(
        report.contains("`compare rounds 2 tput_ours:1000 tput_crossbeam:1000`"),
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&out_dir);
}

#[test]
fn rounds_refuse_an_unknown_case_before_running_anything() {
    let out = compare(&["rounds", "3", "tput_ours:10", "no_such_case:10"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("no case \"no_such_case\""), "{err}");
    assert!(
        !text(&out.stdout).contains("round 1/3"),
        "{}",
        text(&out.stdout)
    );
}
