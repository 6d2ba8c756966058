//! The error type of the config module. Its `Display` is what an operator reads, so every
//! message names where the value came from (a file, `--config-body`, a flag) and the key.

use std::fmt;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file (config, key_file, core-affinity) exists but could not be read.
    /// `what` names it, e.g. `key_file /etc/keys.yaml`.
    #[error("{what}: cannot read: {}", IoMessage(.source))]
    Read {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// YAML/TOML syntax error, or a value of the wrong type. `line`/`column` are 1-based.
    #[error("{origin}: {}{message}", Position(*.line, *.column))]
    Parse {
        origin: String,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    /// The document parsed but a value is not acceptable. For config documents `message`
    /// starts with `key`; for a flag, `origin` is the flag (`--udp-port`).
    #[error("{origin}: {message}")]
    Invalid {
        origin: String,
        key: String,
        message: String,
    },
}

impl ConfigError {
    /// An `Invalid` error; `message` is written after the key, e.g. `" (0) is not a valid port"`
    /// or `": must not be empty"`.
    pub(crate) fn invalid(origin: &str, key: &str, message: impl fmt::Display) -> Self {
        ConfigError::Invalid {
            origin: origin.to_string(),
            key: key.to_string(),
            message: format!("{key}{message}"),
        }
    }

    /// An `Invalid` error about a command-line flag: `--udp-port: <message>`.
    pub(crate) fn flag(flag: &str, key: &str, message: impl fmt::Display) -> Self {
        ConfigError::Invalid {
            origin: flag.to_string(),
            key: key.to_string(),
            message: message.to_string(),
        }
    }

    /// Turns a YAML error into a `Parse` error for `origin`, moving yaml_serde's
    /// "at line L column C" to the front so every message reads `origin: line L column C: ...`.
    pub(crate) fn from_yaml(origin: &str, err: &yaml_serde::Error) -> Self {
        let mut message = err.to_string();
        let (line, column) = match err.location() {
            Some(loc) => {
                let needle = format!(" at line {} column {}", loc.line(), loc.column());
                if let Some(at) = message.find(&needle) {
                    message.replace_range(at..at + needle.len(), "");
                }
                (Some(loc.line()), Some(loc.column()))
            }
            None => (None, None),
        };
        ConfigError::Parse {
            origin: origin.to_string(),
            line,
            column,
            message,
        }
    }

    /// The key an `Invalid` error is about (`None` for read and parse errors).
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Computes the 1-based line and column of byte offset `index` in `text`.
pub(crate) fn line_column(text: &str, index: usize) -> (usize, usize) {
    let before = &text[..index.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// `io::Error` without the " (os error N)" tail: `No such file or directory`.
struct IoMessage<'a>(&'a std::io::Error);

impl fmt::Display for IoMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        let trimmed = match text.rfind(" (os error ") {
            Some(at) if text.ends_with(')') => &text[..at],
            _ => &text,
        };
        f.write_str(trimmed)
    }
}

struct Position(Option<usize>, Option<usize>);

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(line), Some(column)) => write!(f, "line {line} column {column}: "),
            (Some(line), None) => write!(f, "line {line}: "),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_error_drops_os_error_suffix() {
        let err = ConfigError::Read {
            what: "key_file /etc/x.yaml".into(),
            source: std::io::Error::from_raw_os_error(2),
        };
        assert_eq!(
            err.to_string(),
            "key_file /etc/x.yaml: cannot read: No such file or directory"
        );
    }

    #[test]
    fn line_column_is_one_based() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
    }
}
