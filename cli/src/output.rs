//! What the command prints: text for people, or one JSON object for scripts (`--json`); and
//! its failures, with the exit code of their category.

use std::process::ExitCode;

use bucketsync::{Category, Error};
use serde_json::{json, Value};

/// A command's failure.
#[derive(Debug)]
pub enum Failure {
    /// The core's error, with its category.
    Core(Error),
    /// A key the command was asked about is not in the vault.
    NoSuchKey(String),
    /// Stopped by Ctrl-C (what was done is kept).
    Interrupted(String),
    /// Checks that failed, shown in the command's result already: only the exit code of their
    /// category is left to give.
    Reported(Category),
    /// Done, except for some paths (each shown as a warning).
    Incomplete(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Core(e)
    }
}

impl Failure {
    fn category(&self) -> &'static str {
        match self {
            Failure::Core(e) => e.category().as_str(),
            Failure::NoSuchKey(_) => Category::NotFound.as_str(),
            Failure::Interrupted(_) => "interrupted",
            Failure::Reported(category) => category.as_str(),
            Failure::Incomplete(_) => "incomplete",
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::Core(e) => e.to_string(),
            Failure::NoSuchKey(key) => format!("no key {key:?} in the vault"),
            Failure::Interrupted(what) => format!("interrupted: {what}"),
            Failure::Reported(category) => format!("checks failed ({category})"),
            Failure::Incomplete(what) => format!("incomplete: {what}"),
        }
    }

    /// The exit code: one per group of categories (the help lists them).
    pub fn exit_code(&self) -> ExitCode {
        let code = match self {
            Failure::NoSuchKey(_) => 5,
            Failure::Interrupted(_) => 130,
            Failure::Incomplete(_) => 1,
            Failure::Core(e) => category_code(e.category()),
            Failure::Reported(category) => category_code(*category),
        };
        ExitCode::from(code)
    }
}

/// The exit code of a category's group.
fn category_code(category: Category) -> u8 {
    match category {
        Category::Config => 3,
        Category::Auth => 4,
        Category::NotFound => 5,
        Category::Throttled | Category::Timeout | Category::Network | Category::Server => 6,
        Category::Corrupt | Category::WrongVault | Category::Rollback => 7,
        Category::Conflict | Category::Locked => 8,
        Category::Clock => 9,
        Category::Access => 10,
        _ => 1,
    }
}

/// Where results go.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    pub json: bool,
    /// `--cost`: the requests and bytes of the command, and what they would cost.
    pub cost: bool,
}

impl Output {
    /// Prints the result: `text` for people, `value` with `--json`.
    pub fn result(&self, text: impl FnOnce() -> String, value: impl FnOnce() -> Value) {
        if self.json {
            let mut value = value();
            if let (true, Some(object)) = (self.cost, value.as_object_mut()) {
                object.insert("cost".into(), crate::cost::bill().json());
            }
            println!("{value}");
        } else {
            let text = text();
            if !text.is_empty() {
                println!("{}", text.trim_end());
            }
        }
    }

    /// A warning on stderr (text mode only; JSON results carry their errors).
    pub fn warn(&self, text: &str) {
        if !self.json {
            eprintln!("warning: {text}");
        }
    }

    /// The failure: on stderr as text, or as `{"error": {...}}` on stdout with `--json`.
    pub fn failure(&self, failure: &Failure) {
        if let Failure::Reported(_) = failure {
            return;
        }
        if self.json {
            if let Failure::Incomplete(_) = failure {
                // The result printed already lists each path's error.
                return;
            }
            let mut value =
                json!({"error": {"category": failure.category(), "message": failure.message()}});
            if self.cost {
                value["cost"] = crate::cost::bill().json();
            }
            println!("{value}");
        } else {
            eprintln!("error: {}", failure.message());
        }
    }
}
