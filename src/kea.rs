//! Kea's control channel: one command over kea-dhcp4's UNIX control socket, and its answer.
//!
//! Kea answers `{"result": N, "text": "…"}` (a list of such objects through the Control
//! Agent); `result` 0 is success, 1 an error, 2 an unsupported command, 3 an empty result.
//! `config-reload` makes kea-dhcp4 read its configuration file again: on a rejection Kea says
//! why and keeps running on the configuration it had.

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// How long Kea may take to answer (a reload of a large configuration takes seconds).
const ANSWER_LIMIT: Duration = Duration::from_secs(60);

/// Kea's answer to a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// 0: success; anything else: the command failed.
    pub result: i64,
    /// What Kea said.
    pub text: String,
}

/// Send `command` (with no arguments) to the control socket at `socket`; Kea's answer.
pub fn command(socket: &Path, command: &str) -> Result<Answer> {
    let mut s = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach Kea's control socket {} (is kea-dhcp4 running, with this \
             control-socket in its configuration?)",
            socket.display()
        )
    })?;
    s.set_read_timeout(Some(ANSWER_LIMIT))?;
    s.set_write_timeout(Some(ANSWER_LIMIT))?;
    let request = serde_json::json!({ "command": command });
    s.write_all(request.to_string().as_bytes())
        .with_context(|| format!("sending {command} to {}", socket.display()))?;
    // Kea sends one JSON value and closes; read until it parses (or the socket closes).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).with_context(|| {
            format!(
                "waiting for Kea's answer to {command} on {}",
                socket.display()
            )
        })?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if serde_json::from_slice::<Value>(&buf).is_ok() {
            break;
        }
    }
    parse_answer(&buf).with_context(|| {
        format!(
            "Kea's answer to {command} on {}: {:?}",
            socket.display(),
            String::from_utf8_lossy(&buf)
        )
    })
}

/// Kea's answer, from the kea-dhcp4 socket (an object) or the Control Agent (a list of one).
fn parse_answer(bytes: &[u8]) -> Result<Answer> {
    let v: Value = serde_json::from_slice(bytes).context("not JSON")?;
    let v = match v {
        Value::Array(mut list) if !list.is_empty() => list.swap_remove(0),
        other => other,
    };
    let Some(result) = v.get("result").and_then(Value::as_i64) else {
        bail!("no result in it");
    };
    let text = v
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(Answer { result, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_from_kea_and_from_its_control_agent() {
        assert_eq!(
            parse_answer(br#"{ "result": 0, "text": "Configuration successful." }"#).unwrap(),
            Answer {
                result: 0,
                text: "Configuration successful.".into()
            }
        );
        let a = parse_answer(br#"[ { "result": 1, "text": "failed to parse" } ]"#).unwrap();
        assert_eq!((a.result, a.text.as_str()), (1, "failed to parse"));
        assert!(parse_answer(b"{}").is_err());
        assert!(parse_answer(b"{ \"result\": 0").is_err());
    }
}
