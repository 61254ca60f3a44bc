//! Printing results: aligned tables for people, JSON for scripts.

use std::io::Write;

use serde::Serialize;
use tabwriter::TabWriter;

pub use crate::app::local_time;

/// Rows as an aligned table with a header.
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut tw = TabWriter::new(Vec::new()).padding(2);
    let _ = writeln!(tw, "{}", header.join("\t"));
    for r in rows {
        let cells: Vec<String> = r
            .into_iter()
            .map(|c| c.replace(['\t', '\n'], " "))
            .collect();
        let _ = writeln!(tw, "{}", cells.join("\t"));
    }
    let bytes = tw.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A value as pretty JSON, with a final newline.
pub fn json<T: Serialize + ?Sized>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("output values serialize");
    s.push('\n');
    s
}

/// `-` for a missing value.
pub fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}
