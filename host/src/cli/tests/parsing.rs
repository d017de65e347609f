//! Command-line parsing: the commands compose into a valid clap command, and
//! bad flags are clap's usage errors (exit code 2).

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use crate::cli::client::encode_segment;
use crate::cli::{BaseUrl, Cli, Command as TestCli, DEFAULT_URL};

/// Parses `args` with the binary's own command.
fn parse(args: &[&str]) -> Result<TestCli, clap::Error> {
    Cli::try_parse_from(std::iter::once("bulkhead").chain(args.iter().copied())).map(|cli| cli.command)
}

#[test]
fn the_command_is_a_valid_clap_command() {
    Cli::command().debug_assert();
}

#[test]
fn the_worker_subcommand_is_hidden_from_help() {
    let help = Cli::command().render_long_help().to_string();
    let listed: Vec<&str> = help
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    assert_eq!(
        listed,
        [
            "serve",
            "invoke",
            "deploy",
            "processes",
            "terminate",
            "health",
            "bench",
            "config",
            "sandbox",
            "help"
        ],
        "{help}"
    );
}

#[test]
fn invoke_parses_every_flag() {
    let cli = parse(&[
        "invoke",
        "echo",
        "--namespace",
        "a",
        "--session",
        "s",
        "--data",
        "hi",
        "--url",
        "http://h:1/",
    ])
    .expect("valid");
    let TestCli::Invoke(cmd) = cli else {
        panic!("not invoke: {cli:?}")
    };
    assert_eq!((cmd.plugin.as_str(), cmd.namespace.as_str()), ("echo", "a"));
    assert_eq!((cmd.session.as_deref(), cmd.data.as_deref()), (Some("s"), Some("hi")));
    assert_eq!(cmd.client.url.as_str(), "http://h:1");
}

#[test]
fn data_and_file_together_are_a_usage_error() {
    let err = parse(&["invoke", "echo", "--namespace", "a", "--data", "x", "--file", "f"]).expect_err("conflict");
    assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn invoke_needs_a_namespace() {
    let err = parse(&["invoke", "echo"]).expect_err("no namespace");
    assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
}

#[test]
fn a_namespace_that_cannot_be_a_header_is_a_usage_error() {
    let err = parse(&["invoke", "echo", "--namespace", "a\nb"]).expect_err("newline");
    assert_eq!(err.kind(), ErrorKind::ValueValidation);
    assert_eq!(err.exit_code(), 2);
}

#[test]
fn an_https_url_is_refused_clearly() {
    let err = parse(&["health", "--url", "https://127.0.0.1:8080"]).expect_err("https");
    assert_eq!(err.kind(), ErrorKind::ValueValidation);
    assert!(err.to_string().contains("https is not supported"), "{err}");
}

#[test]
fn base_urls_are_normalised_or_refused() {
    assert_eq!(
        BaseUrl::parse("http://127.0.0.1:8080/").unwrap().as_str(),
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        BaseUrl::parse("HTTP://localhost:9").unwrap().as_str(),
        "http://localhost:9"
    );
    assert_eq!(
        BaseUrl::parse("http://h:1/prefix//").unwrap().as_str(),
        "http://h:1/prefix"
    );
    assert!(
        BaseUrl::parse("ftp://h:1")
            .unwrap_err()
            .contains("unsupported scheme `ftp`")
    );
    assert!(
        BaseUrl::parse("127.0.0.1:8080")
            .unwrap_err()
            .contains("expected http://HOST:PORT")
    );
    assert!(BaseUrl::parse("http://").unwrap_err().contains("has no host"));
    assert!(BaseUrl::parse("http://h:1/?x=1").unwrap_err().contains("query"));
}

#[test]
fn the_url_defaults_to_the_local_host_or_bulkhead_url() {
    // Read off the command itself, so the test environment's BULKHEAD_URL
    // (if any) cannot make it pass or fail.
    let command = Cli::command();
    for name in ["invoke", "deploy", "processes", "terminate", "health"] {
        let sub = command.find_subcommand(name).expect("a client command");
        let url = sub
            .get_arguments()
            .find(|arg| arg.get_id() == "url")
            .unwrap_or_else(|| panic!("{name} has no --url"));
        assert_eq!(url.get_default_values(), [DEFAULT_URL], "{name}");
        assert_eq!(url.get_env().and_then(|e| e.to_str()), Some("BULKHEAD_URL"), "{name}");
    }
    let TestCli::Processes(cmd) = parse(&["processes", "--url", DEFAULT_URL]).expect("valid") else {
        panic!("not processes")
    };
    assert_eq!(cmd.client.url.as_str(), DEFAULT_URL);
    assert!(!cmd.json);
}

#[test]
fn terminate_grace_must_be_whole_seconds() {
    let TestCli::Terminate(cmd) = parse(&["terminate", "ns:a", "--grace", "7"]).expect("valid") else {
        panic!("not terminate")
    };
    assert_eq!((cmd.process_id.as_str(), cmd.grace), ("ns:a", Some(7)));
    let err = parse(&["terminate", "ns:a", "--grace", "soon"]).expect_err("not a number");
    assert_eq!(err.kind(), ErrorKind::ValueValidation);
}

#[test]
fn a_zero_timeout_is_refused() {
    let err = parse(&["health", "--timeout", "0"]).expect_err("zero");
    assert_eq!(err.kind(), ErrorKind::ValueValidation);
}

#[test]
fn deploy_needs_a_name() {
    let err = parse(&["deploy", "p.wasm"]).expect_err("no name");
    assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
}

#[test]
fn path_segments_are_percent_encoded_outside_unreserved_characters() {
    assert_eq!(encode_segment("session:abc"), "session%3Aabc");
    assert_eq!(encode_segment("A-z_0.9~"), "A-z_0.9~");
    assert_eq!(encode_segment("a/b c%é"), "a%2Fb%20c%25%C3%A9");
}
