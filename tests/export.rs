//! Export and import of records as JSON Lines: what one vault exports, a new vault imports as
//! the same key → value map (and pushes it); importing again changes nothing; a malformed line
//! is an error naming it and imports nothing; a version newer than the line's stays.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bucketsync::driver::DEFAULT_CONCURRENCY;
use bucketsync::export::{ImportReport, RecordLine};
use bucketsync::files::ReadSource;
use bucketsync::folder::FolderBucket;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::{Category, Timestamp, VaultKey};
use futures::executor::block_on;

/// One wall clock for every vault of a test, moved by hand.
struct Clock(Arc<AtomicU64>);

impl Clock {
    fn at(ms: u64) -> Self {
        Clock(Arc::new(AtomicU64::new(ms)))
    }

    fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    fn open(&self, store: &str, key: &VaultKey) -> Session {
        let now = self.0.clone();
        Session::open(SessionOptions {
            clock: Arc::new(move || Timestamp(now.load(Ordering::SeqCst))),
            ..SessionOptions::new(store, key, StateLocation::Memory)
        })
        .unwrap()
    }
}

fn store_url(dir: &std::path::Path) -> String {
    format!("file://{}", dir.join("bucket").display())
}

/// Every live key's value.
fn map(session: &Session) -> BTreeMap<Vec<u8>, Vec<u8>> {
    session
        .keys(b"")
        .unwrap()
        .into_iter()
        .map(|k| {
            let v = session.get(&k).unwrap().unwrap();
            (k, v)
        })
        .collect()
}

fn export(session: &Session, history: bool) -> String {
    let mut out = Vec::new();
    session.export_records(&mut out, history).unwrap();
    String::from_utf8(out).unwrap()
}

fn import(session: &Session, text: &str) -> ImportReport {
    session.import_records(text.as_bytes()).unwrap()
}

#[test]
fn what_one_vault_exports_a_new_vault_imports_as_the_same_map() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(dir.path());
    let clock = Clock::at(1_767_225_600_000);
    let a = clock.open(&store, &VaultKey::generate().unwrap());
    a.put("notes/a", "hello").unwrap();
    a.put("notes/é", "déjà vu ✓\nsecond line").unwrap();
    a.put(b"bin\x00\xff".to_vec(), b"\x00\x01\xfe\xff".to_vec())
        .unwrap();
    a.put("settings/theme", "dark").unwrap();
    clock.advance(10);
    a.put("settings/theme", "light").unwrap();
    a.put("gone", "soon deleted").unwrap();
    clock.advance(10);
    a.delete("gone").unwrap();
    // A file's record points at chunks only vault a can read: it stays out.
    let mut source = ReadSource::new(&b"a small file"[..], Some(12));
    block_on(a.put_file(
        "files/small.txt",
        &mut source,
        &FolderBucket,
        None,
        DEFAULT_CONCURRENCY,
        |_| {},
    ))
    .unwrap();

    let mut out = Vec::new();
    let report = a.export_records(&mut out, false).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(
        (report.lines, report.deleted, report.history, report.files),
        (5, 1, 0, 1)
    );
    let lines: Vec<RecordLine> = text
        .lines()
        .map(|l| RecordLine::parse(l.as_bytes()).unwrap().unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "{text}");
    assert!(text
        .contains(r#"{"key_base64":"YmluAP8=","value_base64":"AAH+/w==","deleted":false,"time":"#));
    assert!(text.contains(r#"{"key":"gone","deleted":true,"time":"#));
    let a_device = a.device().unwrap();
    assert!(lines
        .iter()
        .all(|l| l.device == Some(a_device) && !l.history));

    // With history: the earlier versions of the theme and of the deleted key follow them.
    let mut with_history = Vec::new();
    let report = a.export_records(&mut with_history, true).unwrap();
    assert_eq!((report.lines, report.history), (7, 2));
    let with_history = String::from_utf8(with_history).unwrap();
    let earlier: Vec<String> = with_history
        .lines()
        .map(|l| RecordLine::parse(l.as_bytes()).unwrap().unwrap())
        .filter(|l| l.history)
        .map(|l| String::from_utf8(l.value.unwrap()).unwrap())
        .collect();
    assert_eq!(earlier, ["soon deleted", "dark"]);

    // A new vault, in the same bucket under another key.
    clock.advance(60_000);
    let b = clock.open(&store, &VaultKey::generate().unwrap());
    let report = import(&b, &with_history);
    assert_eq!(
        report,
        ImportReport {
            lines: 7,
            imported: 4,
            deleted: 0,
            unchanged: 1,
            older: 0,
            history: 2,
        }
    );
    let mut expected = map(&a);
    expected.remove(b"files/small.txt".as_slice());
    assert_eq!(map(&b), expected);
    assert_eq!(b.get(b"gone").unwrap(), None, "a deleted key stays absent");
    assert_eq!(
        b.read(|e| e.history(b"settings/theme").len()).unwrap(),
        1,
        "the earlier version was not written"
    );

    // Importing again changes nothing: no write, no stamp moved.
    let before = export(&b, true);
    let unpushed = b.read(|e| e.unpushed()).unwrap();
    clock.advance(1_000);
    let again = import(&b, &with_history);
    assert_eq!((again.imported, again.deleted, again.unchanged), (0, 0, 5));
    assert_eq!(export(&b, true), before);
    assert_eq!(b.read(|e| e.unpushed()).unwrap(), unpushed);
}

#[test]
fn imported_records_reach_the_other_devices_of_the_new_vault() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(dir.path());
    let clock = Clock::at(1_767_225_600_000);
    let a = clock.open(&store, &VaultKey::generate().unwrap());
    a.put("k1", "v1").unwrap();
    a.put(b"k2".to_vec(), b"\xff".to_vec()).unwrap();
    let text = export(&a, false);

    let key = VaultKey::generate().unwrap();
    let b = clock.open(&store, &key);
    import(&b, &text);
    block_on(b.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();
    let other = clock.open(&store, &key);
    block_on(other.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();
    assert_eq!(map(&other), map(&a));
}

#[test]
fn a_malformed_line_is_an_error_naming_it_and_nothing_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::at(1_767_225_600_000);
    let b = clock.open(&store_url(dir.path()), &VaultKey::generate().unwrap());
    b.put("kept", "as it was").unwrap();
    let before = export(&b, true);
    let text = "{\"key\":\"x1\",\"value\":\"one\"}\n\
                {\"key\":\"kept\",\"value\":\"replaced\"}\n\
                {\"key\":\"x3\",\"value\":\"secret value\"\n\
                {\"key\":\"x4\",\"value\":\"four\"}\n";
    let error = b.import_records(text.as_bytes()).unwrap_err();
    assert_eq!(error.category(), Category::Config);
    let message = error.to_string();
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("not valid JSON"), "{message}");
    assert!(message.contains("nothing was imported"), "{message}");
    assert!(!message.contains("secret"), "{message}");
    assert_eq!(export(&b, true), before, "nothing was imported");

    // A line that parses but is not a record, and one that is not UTF-8.
    let error = b
        .import_records(&b"{\"key\":\"x\",\"value\":\"v\"}\n\n[1]\n"[..])
        .unwrap_err();
    assert!(error
        .to_string()
        .contains("line 3 of the import is not a JSON object"));
    let error = b
        .import_records(&b"{\"key\":\"x\",\"value\":\"\xff\"}\n"[..])
        .unwrap_err();
    assert!(error
        .to_string()
        .contains("line 1 of the import is not UTF-8"));
    assert_eq!(export(&b, true), before);
}

#[test]
fn a_version_newer_than_the_line_stays_and_an_older_one_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_url(dir.path());
    let clock = Clock::at(1_767_225_600_000);
    let a = clock.open(&store, &VaultKey::generate().unwrap());
    let b = clock.open(&store, &VaultKey::generate().unwrap());
    b.put("early", "b wrote this first").unwrap();
    b.put("doomed", "b wrote this first").unwrap();
    clock.advance(1_000);
    a.put("early", "a wrote this later").unwrap();
    a.put("late", "a wrote this first").unwrap();
    a.put("doomed", "x").unwrap();
    a.delete("doomed").unwrap();
    clock.advance(1_000);
    b.put("late", "b wrote this later").unwrap();

    let report = import(&b, &export(&a, false));
    assert_eq!(
        (report.imported, report.deleted, report.older),
        (1, 1, 1),
        "{report:?}"
    );
    assert_eq!(b.get(b"early").unwrap().unwrap(), b"a wrote this later");
    assert_eq!(b.get(b"late").unwrap().unwrap(), b"b wrote this later");
    assert_eq!(b.get(b"doomed").unwrap(), None);
}

#[test]
fn lines_from_another_tool_are_writes_made_now_and_the_newest_line_of_a_key_wins() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::at(1_767_225_600_000);
    let b = clock.open(&store_url(dir.path()), &VaultKey::generate().unwrap());
    b.put("existing", "old").unwrap();
    clock.advance(1_000);
    let text = "{\"key\":\"existing\",\"value\":\"from the tool\"}\n\
                {\"key\":\"dup\",\"value\":\"newest\",\"time\":5000}\n\
                {\"key\":\"dup\",\"value\":\"older\",\"time\":4000}\n\
                {\"key_base64\":\"AP8\",\"value_base64\":\"AAE=\"}\n";
    let report = import(&b, text);
    assert_eq!(
        (report.lines, report.imported, report.older),
        (4, 3, 1),
        "{report:?}"
    );
    assert_eq!(b.get(b"existing").unwrap().unwrap(), b"from the tool");
    assert_eq!(b.get(b"dup").unwrap().unwrap(), b"newest");
    assert_eq!(b.get(b"\x00\xff").unwrap().unwrap(), b"\x00\x01");
    let again = import(&b, text);
    assert_eq!((again.imported, again.unchanged), (0, 3), "{again:?}");
}
