//! `bulkhead processes`: the host's worker processes, as an aligned table or
//! as the JSON of `GET /v1/processes`.

use std::io::Write;

use serde_json::{Map, Value};

use super::error::one_line;
use super::health::write_text;
use super::{CliError, Client, ClientArgs, with_stdout};

/// The table's columns: header and the JSON field shown under it.
const COLUMNS: [(&str, &str); 12] = [
    ("ID", "id"),
    ("LEVEL", "level"),
    ("NAMESPACE", "namespace"),
    ("SESSION", "session"),
    ("STATE", "state"),
    ("HEALTHY", "healthy"),
    ("PID", "pid"),
    ("UPTIME", "uptime_seconds"),
    ("RESTARTS", "restarts"),
    ("ERRORS", "errors"),
    ("IN_FLIGHT", "in_flight"),
    ("QUEUED", "queued"),
];

/// Lists the host's worker processes.
#[derive(Debug, Clone, clap::Args)]
pub struct ProcessesCommand {
    /// Print the JSON as the host sent it instead of a table.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub client: ClientArgs,
}

impl ProcessesCommand {
    /// Runs the command, writing the listing to stdout.
    pub fn execute(self) -> Result<(), CliError> {
        with_stdout(|out| self.execute_to(out))
    }

    /// Runs the command, writing the listing to `out`.
    pub fn execute_to(self, out: &mut dyn Write) -> Result<(), CliError> {
        let client = Client::new(&self.client);
        let text = client.get_text("/v1/processes")?;
        if self.json {
            return write_text(out, &text);
        }
        let processes: Vec<Map<String, Value>> = serde_json::from_str(&text)
            .map_err(|err| client.protocol(format!("the process list is not a JSON array of objects: {err}")))?;
        out.write_all(render_table(&processes).as_bytes())
            .map_err(CliError::Output)
    }
}

/// The processes as a table: a header line, one line per process, columns
/// left-aligned and two spaces apart; a missing or null field shows as `-`.
pub(crate) fn render_table(processes: &[Map<String, Value>]) -> String {
    let mut rows = vec![
        COLUMNS
            .iter()
            .map(|(header, _)| (*header).to_owned())
            .collect::<Vec<_>>(),
    ];
    for process in processes {
        rows.push(
            COLUMNS
                .iter()
                .map(|(_, field)| cell(field, process.get(*field)))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..COLUMNS.len())
        .map(|i| rows.iter().map(|row| row[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut table = String::new();
    for row in rows {
        let line = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>();
        table.push_str(line.join("  ").trim_end());
        table.push('\n');
    }
    table
}

fn cell(field: &str, value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::Number(seconds)) if field == "uptime_seconds" => match seconds.as_f64() {
            Some(seconds) if seconds >= 0.0 => format_uptime(seconds as u64),
            _ => seconds.to_string(),
        },
        Some(Value::String(text)) if text.is_empty() => "-".to_owned(),
        Some(Value::String(text)) => one_line(text),
        Some(other) => one_line(&other.to_string()),
    }
}

/// Whole seconds as the health report writes them: `42s`, `5m23s`, `2h0m5s`.
pub(crate) fn format_uptime(seconds: u64) -> String {
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}
