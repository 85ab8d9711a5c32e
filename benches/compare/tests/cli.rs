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
    for word in ["case", "list", "--smoke", "--out", "--redraw"] {
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
