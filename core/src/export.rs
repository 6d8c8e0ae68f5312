//! The JSON Lines format records are exported as and imported from: one record a line, each
//! line one JSON object. This module encodes and parses single lines; reading and writing
//! streams, and merging what is read into a vault, is `Session::export_records` and
//! `Session::import_records` (feature `driver`).
//!
//! ```text
//! {"key":"notes/a","value":"hello","deleted":false,"time":1767225600000,"counter":0,"device":"0a1b2c3d4e5f60718293a4b5c6d7e8f9"}
//! {"key_base64":"AP8=","value_base64":"AAEC/w==","deleted":false,"time":1767225600000,"counter":1,"device":"0a1b2c3d4e5f60718293a4b5c6d7e8f9"}
//! {"key":"notes/old","deleted":true,"time":1767225600123,"counter":0,"device":"0a1b2c3d4e5f60718293a4b5c6d7e8f9"}
//! {"key":"notes/a","value":"hi","deleted":false,"time":1767139200000,"counter":0,"device":"f0e1d2c3b4a5968778695a4b3c2d1e0f","history":true}
//! ```
//!
//! The fields:
//! - `key` (the key as text, when it is UTF-8) or `key_base64` (its bytes in standard
//!   base64, when it is not): exactly one of them.
//! - `value` or `value_base64`: the value, in the same way; exactly one of them, except on a
//!   deletion, which has neither.
//! - `deleted`: `true` for a deletion; `false` (or absent) for a value.
//! - `time`: when the version was written, in milliseconds since 1970 by the writer's hybrid
//!   logical clock; `counter` orders versions written within the same millisecond (0 when
//!   absent); `device`: the writer's id, 32 hex digits, which breaks ties. All three may be
//!   absent (a line written by another tool): the line is then a write made now.
//! - `history`: `true` on an earlier version of the key (overwritten, or a concurrent write
//!   that lost), which an export adds only when asked to and an import never writes.
//!
//! `null` counts as absent; other fields are ignored. Blank lines are skipped. Anything else
//! is a [`LineError`] saying what is wrong, never quoting the line (it may hold secrets).

use base64::engine::general_purpose::STANDARD_PAD_INDIFFERENT as BASE64;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::{Hlc, Stamp};
use crate::ids::DeviceId;
use crate::record::Record;

/// One line of an export: a version of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordLine {
    /// The record's key.
    pub key: Vec<u8>,
    /// Its value; `None` for a deletion.
    pub value: Option<Vec<u8>>,
    /// When it was written, by the writer's hybrid logical clock; `None` when the line does
    /// not say (a line from another tool).
    pub time: Option<Hlc>,
    /// Who wrote it, when the line says.
    pub device: Option<DeviceId>,
    /// Whether this is an earlier version of the key rather than its current one.
    pub history: bool,
}

impl RecordLine {
    /// The line of `key`'s version `record`; `history` marks an earlier version.
    pub fn of(key: &[u8], record: &Record, history: bool) -> RecordLine {
        RecordLine {
            key: key.to_vec(),
            value: record.value.clone(),
            time: Some(record.stamp.hlc),
            device: Some(record.stamp.device),
            history,
        }
    }

    /// The version stamp the line gives, compared as the vault compares writes; `None` when
    /// it gives no time. A line with a time but no device sorts before any device's write of
    /// the same time.
    pub fn stamp(&self) -> Option<Stamp> {
        self.time.map(|hlc| Stamp {
            hlc,
            device: self.device.unwrap_or_default(),
        })
    }

    /// The line as one JSON object, without the line break. Keys and values that are UTF-8
    /// text are written as text, others as base64.
    pub fn to_json(&self) -> String {
        let (key, key_base64) = text_or_base64(&self.key);
        let (value, value_base64) = match &self.value {
            Some(value) => text_or_base64(value),
            None => (None, None),
        };
        let fields = Fields {
            key,
            key_base64,
            value,
            value_base64,
            deleted: self.value.is_none(),
            time: self.time.map(|t| t.wall_ms),
            counter: self.time.map(|t| t.counter),
            device: self.device.map(|d| d.to_string()),
            history: self.history,
        };
        serde_json::to_string(&fields).expect("text, numbers and booleans always encode")
    }

    /// Reads one line (its line break may be left on). `Ok(None)` for a blank line.
    ///
    /// # Errors
    /// A [`LineError`] saying what is wrong with the line.
    pub fn parse(line: &[u8]) -> Result<Option<RecordLine>, LineError> {
        // A byte order mark, which some editors put at the start of a file.
        let line = line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(|_| LineError::NotUtf8)?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        // Positions in errors count from the line's start.
        let text = text.strip_suffix('\n').unwrap_or(text);
        let Value::Object(mut fields) =
            serde_json::from_str::<Value>(text).map_err(|e| LineError::NotJson {
                // serde_json's message names no content; its position is said apart.
                reason: e
                    .to_string()
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
                column: e.column(),
            })?
        else {
            return Err(LineError::NotAnObject);
        };
        let key = take_bytes(&mut fields, "key", "key_base64")?.ok_or(LineError::NoKey)?;
        let value = take_bytes(&mut fields, "value", "value_base64")?;
        let value = match (take_bool(&mut fields, "deleted")?, value) {
            (false, None) => return Err(LineError::NoValue),
            (true, Some(_)) => return Err(LineError::ValueOfDeletion),
            (_, value) => value,
        };
        let wall_ms = match take(&mut fields, "time") {
            None => None,
            Some(time) => Some(time.as_u64().ok_or(LineError::Invalid {
                field: "time",
                expected: "a whole number of milliseconds since 1970",
            })?),
        };
        let counter = match take(&mut fields, "counter") {
            None => None,
            Some(counter) => Some(counter.as_u64().and_then(|c| u32::try_from(c).ok()).ok_or(
                LineError::Invalid {
                    field: "counter",
                    expected: "a whole number from 0 to 4294967295",
                },
            )?),
        };
        let time = match (wall_ms, counter) {
            (Some(wall_ms), counter) => Some(Hlc {
                wall_ms,
                counter: counter.unwrap_or(0),
            }),
            (None, Some(_)) => return Err(LineError::CounterWithoutTime),
            (None, None) => None,
        };
        let bad_device = LineError::Invalid {
            field: "device",
            expected: "32 hex digits",
        };
        let device = match take(&mut fields, "device") {
            None => None,
            Some(Value::String(text)) => Some(DeviceId::parse(&text).map_err(|_| bad_device)?),
            Some(_) => return Err(bad_device),
        };
        Ok(Some(RecordLine {
            key,
            value,
            time,
            device,
            history: take_bool(&mut fields, "history")?,
        }))
    }
}

/// What is wrong with a line that does not parse. Its text names fields, never their
/// contents; it reads after "line N " (`line 3 is not valid JSON …`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineError {
    /// The line is not UTF-8.
    NotUtf8,
    /// The line is not JSON.
    NotJson {
        /// What the JSON parser found wrong.
        reason: String,
        /// Where, in bytes from the line's start (1 for the first).
        column: usize,
    },
    /// The line is JSON, but not an object.
    NotAnObject,
    /// A field holds something it cannot hold.
    Invalid {
        /// The field.
        field: &'static str,
        /// What it must hold.
        expected: &'static str,
    },
    /// A field is given both as text and as base64 (`key` and `key_base64`).
    Both {
        /// `"key"` or `"value"`.
        field: &'static str,
    },
    /// Neither `key` nor `key_base64`.
    NoKey,
    /// Neither `value` nor `value_base64`, on a line that is not a deletion.
    NoValue,
    /// A value on a line that says `"deleted": true`.
    ValueOfDeletion,
    /// A `counter` without a `time`.
    CounterWithoutTime,
}

impl core::fmt::Display for LineError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LineError::NotUtf8 => f.write_str("is not UTF-8 text"),
            LineError::NotJson { reason, column } => {
                write!(f, "is not valid JSON ({reason}, column {column})")
            }
            LineError::NotAnObject => f.write_str("is not a JSON object ({...})"),
            LineError::Invalid { field, expected } => {
                write!(f, "has a \"{field}\" that is not {expected}")
            }
            LineError::Both { field } => {
                write!(
                    f,
                    "has both \"{field}\" and \"{field}_base64\": give one of them"
                )
            }
            LineError::NoKey => f.write_str("has no \"key\" (or \"key_base64\")"),
            LineError::NoValue => f.write_str(
                "has no \"value\" (or \"value_base64\") and does not say \"deleted\": true",
            ),
            LineError::ValueOfDeletion => f.write_str("says \"deleted\": true but has a value"),
            LineError::CounterWithoutTime => f.write_str("has a \"counter\" but no \"time\""),
        }
    }
}

impl std::error::Error for LineError {}

/// What [`RecordLine::to_json`] writes, in this order.
#[derive(Serialize)]
struct Fields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_base64: Option<String>,
    deleted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counter: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    #[serde(skip_serializing_if = "core::ops::Not::not")]
    history: bool,
}

/// `bytes` as text when they are UTF-8, else as base64.
fn text_or_base64(bytes: &[u8]) -> (Option<&str>, Option<String>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (Some(text), None),
        Err(_) => (None, Some(BASE64.encode(bytes))),
    }
}

/// The field `name`, unless absent or null.
fn take(fields: &mut Map<String, Value>, name: &str) -> Option<Value> {
    fields.remove(name).filter(|v| !v.is_null())
}

fn take_bool(fields: &mut Map<String, Value>, name: &'static str) -> Result<bool, LineError> {
    match take(fields, name) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(_) => Err(LineError::Invalid {
            field: name,
            expected: "true or false",
        }),
    }
}

/// The bytes of `text` (a JSON string) or of `base64` (a JSON string in base64): at most one
/// of the two may be given.
fn take_bytes(
    fields: &mut Map<String, Value>,
    text: &'static str,
    base64: &'static str,
) -> Result<Option<Vec<u8>>, LineError> {
    match (take(fields, text), take(fields, base64)) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(LineError::Both { field: text }),
        (Some(Value::String(s)), None) => Ok(Some(s.into_bytes())),
        (Some(_), None) => Err(LineError::Invalid {
            field: text,
            expected: "a string (bytes that are not text go in base64, in the _base64 field)",
        }),
        (None, Some(Value::String(s))) => {
            BASE64
                .decode(s.as_bytes())
                .map(Some)
                .map_err(|_| LineError::Invalid {
                    field: base64,
                    expected: "standard base64",
                })
        }
        (None, Some(_)) => Err(LineError::Invalid {
            field: base64,
            expected: "a string of standard base64",
        }),
    }
}

/// What an export wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportReport {
    /// Lines written: one per key (deleted ones included) and, when asked for, one per
    /// earlier version.
    pub lines: u64,
    /// Of them, keys whose current version is a deletion.
    pub deleted: u64,
    /// Of them, earlier versions (`"history": true`).
    pub history: u64,
    /// Files (stored with `put_file`) left out: their records point at chunks that only this
    /// vault can read. Copy them with `get_file` and `put_file`, or back them up.
    pub files: u64,
    /// A home's shared-vault records (`.bucketsync/shared/…`) left out: they hold the keys of
    /// those vaults, which an export file must not spread.
    pub shared: u64,
}

/// What an import did, line by line (blank lines not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Lines read.
    pub lines: u64,
    /// Keys set to the line's value.
    pub imported: u64,
    /// Keys deleted by a line that is a deletion.
    pub deleted: u64,
    /// Lines that needed no change: the key holds that value already (or, for a deletion, is
    /// absent or deleted already).
    pub unchanged: u64,
    /// Lines left out because a version of the key at least as new is in the vault already,
    /// or further on in the input.
    pub older: u64,
    /// Earlier versions (`"history": true`), which an import never writes.
    pub history: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(byte: u8) -> DeviceId {
        DeviceId([byte; 16])
    }

    fn line(key: &[u8], value: Option<&[u8]>) -> RecordLine {
        RecordLine {
            key: key.to_vec(),
            value: value.map(<[u8]>::to_vec),
            time: Some(Hlc {
                wall_ms: 1_767_225_600_000,
                counter: 3,
            }),
            device: Some(device(0xab)),
            history: false,
        }
    }

    fn round_trip(original: &RecordLine) -> String {
        let json = original.to_json();
        assert!(!json.contains('\n'), "one line: {json}");
        assert_eq!(
            RecordLine::parse(json.as_bytes()).unwrap().as_ref(),
            Some(original)
        );
        json
    }

    fn error(text: &str) -> LineError {
        RecordLine::parse(text.as_bytes()).unwrap_err()
    }

    #[test]
    fn text_keys_and_values_are_written_as_text() {
        let json = round_trip(&line(
            "notes/é\n".as_bytes(),
            Some("hello \"world\"".as_bytes()),
        ));
        assert_eq!(
            json,
            format!(
                r#"{{"key":"notes/é\n","value":"hello \"world\"","deleted":false,"time":1767225600000,"counter":3,"device":"{}"}}"#,
                device(0xab)
            )
        );
    }

    #[test]
    fn bytes_that_are_not_text_are_written_as_base64() {
        let json = round_trip(&line(b"\x00\xff", Some(b"\x00\x01\x02\xff")));
        assert!(
            json.starts_with(r#"{"key_base64":"AP8=","value_base64":"AAEC/w==","#),
            "{json}"
        );
        // An empty key and value are text.
        round_trip(&line(b"", Some(b"")));
    }

    #[test]
    fn a_deletion_has_no_value_and_a_history_line_says_so() {
        let json = round_trip(&line(b"gone", None));
        assert!(
            json.contains(r#""deleted":true"#) && !json.contains("value"),
            "{json}"
        );
        let earlier = RecordLine {
            history: true,
            ..line(b"k", Some(b"old"))
        };
        assert!(round_trip(&earlier).ends_with(r#","history":true}"#));
    }

    #[test]
    fn a_line_from_another_tool_needs_only_a_key_and_a_value() {
        let parsed = RecordLine::parse(b"{\"key\": \"a\", \"value\": \"b\", \"note\": 1}\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            parsed,
            RecordLine {
                key: b"a".to_vec(),
                value: Some(b"b".to_vec()),
                time: None,
                device: None,
                history: false,
            }
        );
        assert_eq!(parsed.stamp(), None);
        // Unpadded base64, nulls, a byte order mark, a time without counter or device.
        let parsed = RecordLine::parse(
            b"\xef\xbb\xbf{\"key_base64\":\"AP8\",\"key\":null,\"value\":\"v\",\"time\":5}",
        )
        .unwrap()
        .unwrap();
        assert_eq!(parsed.key, b"\x00\xff");
        assert_eq!(
            parsed.stamp(),
            Some(Stamp {
                hlc: Hlc {
                    wall_ms: 5,
                    counter: 0
                },
                device: DeviceId::default(),
            })
        );
        assert_eq!(RecordLine::parse(b"  \r\n").unwrap(), None);
        assert_eq!(RecordLine::parse(b"").unwrap(), None);
    }

    #[test]
    fn a_malformed_line_says_what_is_wrong_without_quoting_it() {
        let cases: &[(&str, LineError, &str)] = &[
            (
                r#"{"key":"secret-key","value":"secret-value""#,
                LineError::NotJson {
                    reason: "EOF while parsing an object".into(),
                    column: 42,
                },
                "is not valid JSON (EOF while parsing an object, column 42)",
            ),
            (
                r#"["a","b"]"#,
                LineError::NotAnObject,
                "is not a JSON object",
            ),
            (r#"{"value":"v"}"#, LineError::NoKey, "has no \"key\""),
            (r#"{"key":"k"}"#, LineError::NoValue, "has no \"value\""),
            (
                r#"{"key":"k","value":"v","deleted":true}"#,
                LineError::ValueOfDeletion,
                "says \"deleted\": true but has a value",
            ),
            (
                r#"{"key":"k","key_base64":"AA==","value":"v"}"#,
                LineError::Both { field: "key" },
                "has both \"key\" and \"key_base64\"",
            ),
            (
                r#"{"key":"k","value":{"secret":1}}"#,
                LineError::Invalid {
                    field: "value",
                    expected:
                        "a string (bytes that are not text go in base64, in the _base64 field)",
                },
                "has a \"value\" that is not a string",
            ),
            (
                r#"{"key":"k","value_base64":"secret!"}"#,
                LineError::Invalid {
                    field: "value_base64",
                    expected: "standard base64",
                },
                "has a \"value_base64\" that is not standard base64",
            ),
            (
                r#"{"key":"k","value":"v","deleted":"no"}"#,
                LineError::Invalid {
                    field: "deleted",
                    expected: "true or false",
                },
                "\"deleted\" that is not true or false",
            ),
            (
                r#"{"key":"k","value":"v","time":-1}"#,
                LineError::Invalid {
                    field: "time",
                    expected: "a whole number of milliseconds since 1970",
                },
                "\"time\" that is not a whole number",
            ),
            (
                r#"{"key":"k","value":"v","time":1.5}"#,
                LineError::Invalid {
                    field: "time",
                    expected: "a whole number of milliseconds since 1970",
                },
                "\"time\"",
            ),
            (
                r#"{"key":"k","value":"v","time":1,"counter":4294967296}"#,
                LineError::Invalid {
                    field: "counter",
                    expected: "a whole number from 0 to 4294967295",
                },
                "\"counter\"",
            ),
            (
                r#"{"key":"k","value":"v","counter":1}"#,
                LineError::CounterWithoutTime,
                "has a \"counter\" but no \"time\"",
            ),
            (
                r#"{"key":"k","value":"v","time":1,"device":"secret"}"#,
                LineError::Invalid {
                    field: "device",
                    expected: "32 hex digits",
                },
                "\"device\" that is not 32 hex digits",
            ),
            (
                r#"{"key":"k","value":"v","history":1}"#,
                LineError::Invalid {
                    field: "history",
                    expected: "true or false",
                },
                "\"history\"",
            ),
        ];
        for (text, expected, message) in cases {
            let found = error(text);
            assert_eq!(&found, expected, "{text}");
            let shown = found.to_string();
            assert!(shown.contains(message), "{text}: {shown}");
            assert!(!shown.contains("secret"), "{text}: {shown}");
        }
        assert_eq!(
            RecordLine::parse(b"{\"key\":\"\xff\",\"value\":\"v\"}"),
            Err(LineError::NotUtf8)
        );
    }
}
