//! The command line: global options and one subcommand, each with examples in its help.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes: 0 done; 1 other failure; 2 bad usage; 3 config (bad store URL, key, argument);
4 auth (credentials refused); 5 not found (no vault, no such key); 6 the store could not be
reached or failed (network, timeout, throttled, server); 7 corrupt data, another vault's data,
or a rollback; 8 conflict or locked (another process holds the state); 9 a device clock too far
ahead; 10 access (a grant meant for another identity, a role that does not allow it, access
to a shared vault revoked).

Environment: BUCKETSYNC_STORE, BUCKETSYNC_KEY_FILE, BUCKETSYNC_STATE, BUCKETSYNC_DEVICE stand for
the options of the same name; AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN
are the S3 credentials.";

/// End-to-end encrypted key-value and file vaults in any S3-compatible bucket, synced between
/// devices with no server of their own.
#[derive(Debug, Parser)]
#[command(name = "bucketsync", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// The store: `s3://BUCKET/PREFIX?endpoint=URL&region=R` or `file:///DIR` (a folder that
    /// acts as a bucket). Encryption at rest by the store, on every write: `&sse=AES256`, or
    /// `&sse=aws:kms&sse_kms_key_id=KEY` (optionally `&sse_bucket_key=true`). Storage classes:
    /// `&pack_class=STANDARD_IA` for the files' packs, `&checkpoint_class=...` for checkpoints.
    #[arg(long, env = "BUCKETSYNC_STORE", global = true)]
    pub store: Option<String>,
    /// The file that holds the vault key (its recovery code): written by `init` and `join`
    /// (mode 0600), read by every other command. Without it, the key is kept in the OS keyring
    /// (service "bucketsync", the store URL as account; on Linux the kernel keyring, which
    /// forgets it at reboot: keep the recovery code).
    #[arg(long, env = "BUCKETSYNC_KEY_FILE", global = true)]
    pub key_file: Option<PathBuf>,
    /// This device's replica (default: in the platform's data directory, one per vault and
    /// store, and for a shared vault one per home too).
    #[arg(long, env = "BUCKETSYNC_STATE", global = true)]
    pub state: Option<PathBuf>,
    /// The profile of the AWS credentials file (~/.aws/credentials) to sign with, when the
    /// AWS_* environment holds no key (default: AWS_PROFILE, else "default").
    #[arg(long, global = true)]
    pub profile: Option<String>,
    /// The profile of the AWS credentials file to sign a shared vault's requests with (--vault,
    /// `accept`, `shared create`): needed when its store is on another service than the
    /// home's, whose credentials are never sent there.
    #[arg(
        long,
        env = "BUCKETSYNC_VAULT_PROFILE",
        global = true,
        value_name = "PROFILE"
    )]
    pub vault_profile: Option<String>,
    /// This device's name, shown by `devices` (kept in the state once given).
    #[arg(long, env = "BUCKETSYNC_DEVICE", global = true)]
    pub device: Option<String>,
    /// Work on the shared vault LABEL of the home (the vault of --store and --key-file)
    /// instead of the home itself (see `shared`, `share`, `accept`, `members`, `revoke`). Its
    /// replica lives beside the home's (--state names the home's).
    #[arg(long, global = true, value_name = "LABEL")]
    pub vault: Option<String>,
    /// Print one JSON object (for scripts) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Work on the local replica only: no sync before reading or after writing.
    #[arg(long, global = true)]
    pub offline: bool,
    /// Then print the command's requests and bytes, and what they would cost on AWS S3
    /// Standard, Cloudflare R2 and Backblaze B2 (list prices; on stderr, or as "cost" in the
    /// JSON).
    #[arg(long, global = true)]
    pub cost: bool,
}

/// What `shared` does besides listing.
#[derive(Debug, Subcommand)]
pub enum SharedAction {
    /// Make a new vault to share, with a key of its own, kept in this home as LABEL.
    Create {
        label: String,
        /// Its store (default: the home's).
        // An id of its own: with the field's name it was the global --store's id, and clap
        // gave the home this store.
        #[arg(long = "in", id = "shared_store", value_name = "STORE")]
        store: Option<String>,
    },
}

fn parse_role(text: &str) -> std::result::Result<bucketsync::grant::Role, String> {
    bucketsync::grant::Role::parse(text).map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new vault in the store; prints its recovery code once.
    #[command(
        after_help = "Example:\n  bucketsync --store s3://my-bucket/notes --key-file ~/.notes.key init\n\n\
        The key file must not exist yet. Keep the recovery code: it is the only way to join the\n\
        vault from another device, and anyone who has it can read the vault."
    )]
    Init,
    /// Join an existing vault with its recovery code (asked for, or read from stdin).
    #[command(
        after_help = "Examples:\n  bucketsync --store s3://my-bucket/notes --key-file ~/.notes.key join\n  \
        echo \"$CODE\" | bucketsync --store file:///mnt/usb/vaults --key-file k join\n\n\
        Fails (exit code 5) when no vault for that code exists in the store."
    )]
    Join,
    /// This device, the vault and the devices in it.
    #[command(after_help = "Example:\n  bucketsync status --json")]
    Status,
    /// List the vault's devices, or retire one.
    #[command(
        after_help = "Examples:\n  bucketsync devices\n  bucketsync devices retire 0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    )]
    Devices {
        #[command(subcommand)]
        action: Option<DevicesAction>,
    },
    /// The versions of a key this device keeps: the value, then older ones and conflict losers.
    #[command(after_help = "Example:\n  bucketsync history settings/theme")]
    History { key: String },
    /// Write a record: the value given, or stdin when it is `-` or missing.
    #[command(after_help = "Examples:\n  bucketsync put settings/theme dark\n  \
        bucketsync put notes/today - < today.md")]
    Put { key: String, value: Option<String> },
    /// Print a record's value (as stored: bytes, no newline added).
    #[command(after_help = "Example:\n  bucketsync get settings/theme")]
    Get { key: String },
    /// List the live keys, or those starting with PREFIX.
    #[command(after_help = "Examples:\n  bucketsync ls\n  bucketsync ls notes/ --json")]
    Ls { prefix: Option<String> },
    /// Delete a record (or file).
    #[command(after_help = "Example:\n  bucketsync rm notes/old")]
    Rm { key: String },
    /// Pull what other devices wrote and push what this one wrote.
    #[command(after_help = "Example:\n  bucketsync sync")]
    Sync,
    /// Sync in the background and print what changes; Ctrl-C stops. While nothing changes a
    /// poll costs one conditional GET (and a LIST every 10 minutes). The state stays locked
    /// meanwhile: other commands of this device fail as locked until it stops.
    #[command(after_help = "Example:\n  bucketsync watch --every 30s")]
    Watch {
        /// How long to wait between polls (`30s`, `5m`, `1h`).
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        every: Duration,
    },
    /// Write every record to FILE (stdout when missing or `-`) as JSON Lines, one a line.
    #[command(
        after_help = "Examples:\n  bucketsync export records.jsonl\n  bucketsync export --history | gzip > records.jsonl.gz\n\n\
        Each line is {\"key\": ..., \"value\": ..., \"deleted\": false, \"time\": MS, \"counter\": N,\n\
        \"device\": ID}: key and value as text, or as key_base64 and value_base64 when they are\n\
        not UTF-8; a deleted key has \"deleted\": true and no value. Files (put-file) are left out.\n\
        What was done is printed on stderr when the records go to stdout."
    )]
    Export {
        /// The file to write (replaced if it exists).
        file: Option<PathBuf>,
        /// Also write each key's earlier versions (overwritten, or concurrent writes that
        /// lost), marked "history": true.
        #[arg(long)]
        history: bool,
    },
    /// Read records from FILE (stdin when missing or `-`) as JSON Lines and merge them in.
    #[command(after_help = "Examples:\n  bucketsync import records.jsonl\n  \
        echo '{\"key\": \"notes/a\", \"value\": \"hello\"}' | bucketsync import\n\n\
        Lines as export writes them; only key and value are required (a line without time is a\n\
        write made now). Per key, the newest line is written unless the vault holds a version at\n\
        least as new, or that value already, so importing twice changes nothing. Earlier versions\n\
        (\"history\": true) are skipped. A malformed line fails the import with exit code 3,\n\
        naming the line; nothing is imported then.")]
    Import {
        /// The file to read.
        file: Option<PathBuf>,
    },
    /// Store a file (chunked, deduplicated, encrypted) under KEY, with a progress bar.
    #[command(
        after_help = "Example:\n  bucketsync put-file photos/cat.jpg ~/Pictures/cat.jpg\n\n\
        Ctrl-C stops cleanly: nothing is stored, and packs already sent are not sent again."
    )]
    PutFile { key: String, path: PathBuf },
    /// Read the file KEY to PATH, with a progress bar.
    #[command(
        after_help = "Example:\n  bucketsync get-file photos/cat.jpg /tmp/cat.jpg\n\n\
        Nothing appears at PATH before the whole file was read and checked. Ctrl-C stops\n\
        cleanly; the next get-file to the same path resumes where it stopped."
    )]
    GetFile { key: String, path: PathBuf },
    /// Probe the store: credentials, clock, conditional writes, listings, multipart uploads,
    /// ranged reads, CORS, speed; each failure with its fix. Needs no vault key.
    #[command(
        after_help = "Examples:\n  bucketsync --store 's3://my-bucket/notes?region=eu-west-1' doctor\n  \
        bucketsync doctor --origin https://notes.example --json\n\n\
        It writes a few objects (8 MiB at most) under a random prefix in the store and deletes\n\
        them at the end. Exits 0 when no check failed, else with the exit code of the first\n\
        failed check's category (4 when the store refuses the credentials)."
    )]
    Doctor(DoctorArgs),
    /// Back a folder up into the vault (one way; unchanged files cost no request).
    #[command(
        after_help = "Examples:\n  bucketsync backup ~/Documents --exclude '*.tmp' --exclude node_modules\n  \
        bucketsync backup ~/Documents --delete --dry-run\n\n\
        Stored under backup/<name>/ (name: the folder's, or --as NAME). Files are compared by\n\
        size, time and permissions; a changed file sends only the chunks the vault lacks.\n\
        Modification times, permissions, links (as links) and empty folders are kept."
    )]
    Backup(BackupArgs),
    /// Restore a backup into a folder; never writes outside it, never overwrites a newer
    /// local file without --force.
    #[command(
        after_help = "Examples:\n  bucketsync restore Documents --to /tmp/Documents\n  \
        bucketsync restore Documents --to /tmp/old --at 2026-11-20T12:00:00Z\n\n\
        Entries whose path climbs out (..), is absolute, holds a NUL, passes through a link on\n\
        disk or lies below a link of the backup are refused with an error naming them. Links\n\
        come back as they were, wherever they point; nothing is written through one.\n\n\
        Files show under their names only once whole. As with tar and restic, writing files of\n\
        up to 32 MiB to the disk is left to the system (run sync, or eject a drive, to wait for\n\
        it); after a power loss right after a restore, restore again into an empty folder."
    )]
    Restore(RestoreArgs),
    /// Read a backup's (or synced folder's) files back from the bucket and check every chunk,
    /// writing nothing; names the files a damaged or missing pack touches.
    #[command(after_help = "Examples:\n  bucketsync verify Documents\n  \
        bucketsync verify notes --synced-folder --sample 10\n\n\
        --sample reads a random share of the files, drawn anew each run.\n\
        Exit code 7 when something is damaged.")]
    Verify(VerifyArgs),
    /// Sync a folder both ways with the other devices that sync it under the same name.
    #[command(after_help = "Examples:\n  bucketsync folder ~/Notes\n  \
        bucketsync folder ~/Notes --as notes --exclude '*.swp' --every 30s\n\n\
        Edits and deletions go both ways. A file edited on two devices keeps both: the later\n\
        edit keeps the name, the other becomes 'name (conflict DEVICE DATE).ext' everywhere.\n\
        A missing or unreadable folder is an error and deletes nothing anywhere; a folder that\n\
        was never synced here (no .bucketsync-folder in it) only receives. Renamed files send\n\
        no content again.")]
    Folder(FolderArgs),
    /// This home's identity: the public text to send to people who share vaults with you,
    /// and its fingerprint to compare with them (by phone, in person).
    #[command(after_help = "Example:\n  bucketsync whoami\n\n\
        The vault of --store and --key-file is your home: your identity derives from its key,\n\
        so each of your devices has the same one.")]
    Whoami,
    /// List the vaults this home made to share or accepted, or make a new one.
    #[command(
        after_help = "Examples:\n  bucketsync shared\n  bucketsync shared create emma\n  \
        bucketsync shared create emma --in 's3://family-bucket/shared?region=eu-west-1'\n  \
        bucketsync --vault emma put allergies penicillin"
    )]
    Shared {
        #[command(subcommand)]
        action: Option<SharedAction>,
    },
    /// Grant a shared vault of this home to someone: prints the invitation to send them.
    #[command(
        after_help = "Example:\n  bucketsync share emma \"$(cat bob.id)\" --role write\n\n\
        PUBLIC is what `bucketsync whoami` prints on their side (bsid1...). Compare the\n\
        fingerprint printed here with theirs before you send the invitation. Only an owner\n\
        shares (exit code 10 otherwise). The invitation names no key: the vault's key is sealed\n\
        to their identity (X-Wing, post-quantum) in the bucket."
    )]
    Share {
        /// The shared vault's label in this home.
        label: String,
        /// The recipient's public identity (bsid1...), or `-` to read it from stdin.
        public: String,
        /// What they may do: read, write or owner.
        #[arg(long, default_value = "read", value_parser = parse_role)]
        role: bucketsync::grant::Role,
        /// The /sign URL of a `bucketsync signer` through which they reach the store (apps
        /// without S3 keys): the invitation names it, unsigned, so send it over a channel you
        /// trust. Give them a member token for the vault too (--member-tokens of `signer`).
        /// https:// (http:// only to this machine), no user info, query or fragment.
        #[arg(long, value_name = "URL")]
        signer: Option<String>,
    },
    /// Accept an invitation into this home; then use the vault with --vault LABEL.
    #[command(
        after_help = "Example:\n  bucketsync accept bsinv1NHMzOi8v... --from 21ZV-CDAN-2NX4-6JE3\n\n\
        Only the invitation says who sent it: give --from with the fingerprint the granter told\n\
        you out of band. Fails with exit code 10 when the invitation was made for another\n\
        identity or comes from another granter. The home's S3 credentials (AWS_*, --profile)\n\
        sign for the invitation's store only when it is on the home's own service (the same\n\
        endpoint and region); elsewhere pass its own with --vault-profile."
    )]
    Accept {
        /// The invitation (bsinv1...), or `-` to read it from stdin.
        invitation: String,
        /// The granter's fingerprint as they told it to you (by phone, in person): an
        /// invitation from anyone else is refused (exit code 10) before anything is fetched.
        #[arg(long, value_name = "FINGERPRINT")]
        from: Option<String>,
    },
    /// List the people of a shared vault (--vault LABEL): fingerprint, role (read, write,
    /// owner, or revoked), since when, and who granted it.
    #[command(after_help = "Example:\n  bucketsync --vault emma members\n\n\
        Syncs the vault first (unless --offline): who belongs is what the owners' signed\n\
        statements say, and they arrive with the other devices' manifests. With --json, an\n\
        array of {fingerprint, public, role, since (ms since the epoch), granted_by, may_write,\n\
        pins: [[DEVICE, SEGMENTS]]} (pins: how far a revoked member's devices still count).")]
    Members,
    /// Take someone out of a shared vault (--vault LABEL): what their devices write from now
    /// on counts for nobody, and a new key seals what is written after.
    #[command(
        after_help = "Example:\n  bucketsync --vault emma revoke VADH-Q15B-H5ZY-XET2\n\n\
        Only an owner revokes (exit code 10 otherwise); the founder cannot be revoked, nor can\n\
        you revoke yourself (exit code 3). It syncs first, so that what they wrote until now\n\
        counts, then revokes and syncs again: that seals the new key to every member left and\n\
        publishes the revocation (with --offline, the next sync does). They keep what they\n\
        read until now (files stored before included), nothing written or stored after; revoke\n\
        their bucket credentials or signer token too. Their own syncs of the vault fail with\n\
        exit code 10."
    )]
    Revoke {
        /// Their fingerprint, as `members` shows it (case and dashes do not matter).
        fingerprint: String,
    },
    /// Presign requests for clients that hold no S3 keys (browsers, phones): what a vault sends
    /// under the store's prefix, for holders of a bearer token. Needs no vault key.
    #[command(
        after_help = "Example:\n  bucketsync --store 's3://my-bucket/records?region=eu-west-1' signer \\\n    \
        --listen 127.0.0.1:8787 --token-file /etc/bucketsync/token --expires 5m\n\n\
        Clients POST {\"method\": \"GET\", \"url\": \"...\"} to /sign with\n\
        'Authorization: Bearer TOKEN' and get {\"url\": PRESIGNED, \"headers\": []}\n\
        (npm: remoteSigner(url, token)). It signs GET, PUT, HEAD and listings under the prefix,\n\
        DELETE of a vault's segments, checkpoints and packs (what a device collects), and a\n\
        pack's multipart requests. Anything else is refused with the reason: another method,\n\
        other DELETEs or POSTs, another bucket or endpoint, a key outside the prefix, '..',\n\
        other query parameters.\n\
        One log line per request on stderr; URLs are valid for --expires (1h at most).\n\n\
        Members of a shared vault get tokens of their own (--member-tokens FILE, one line each:\n\
        'TOKEN VAULT-ID read|write', VAULT-ID as `bucketsync --vault LABEL status` shows it):\n\
        such a token is signed for under that vault's folder only, and for GET, HEAD and\n\
        listings only with 'read'."
    )]
    Signer(SignerArgs),
}

#[derive(Debug, Subcommand)]
pub enum DevicesAction {
    /// Mark a device retired (lost, sold, reinstalled): nobody waits for it any more.
    Retire {
        /// Its id (32 hex digits, as `devices` shows it).
        id: String,
    },
}

/// The options of `doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Also check the bucket's CORS rule for a web page served from this origin
    /// (`https://notes.example`).
    #[arg(long, value_name = "URL")]
    pub origin: Option<String>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The folder to back up.
    pub dir: PathBuf,
    /// The backup's name in the vault (default: the folder's name).
    #[arg(long = "as", value_name = "NAME")]
    pub name: Option<String>,
    /// Leave out paths matching this glob (`*.tmp`, `build/**`, `node_modules`); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Back up names starting with `.` too.
    #[arg(long)]
    pub include_hidden: bool,
    /// Show what would be stored and deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete from the backup what is gone from the folder (never below a folder that could
    /// not be read).
    #[arg(long)]
    pub delete: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore (optional when the vault holds only one).
    pub name: Option<String>,
    /// Where to restore to (default: a folder named after the backup, here).
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Restore the tree as it was then (RFC 3339, e.g. 2026-11-24T18:00:00Z), as far as the
    /// history kept reaches.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<u64>,
    /// Show what would be written; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Overwrite local files newer than the backup.
    #[arg(long)]
    pub force: bool,
    /// Restore only what this glob matches (a path, a name, `*.jpg`; a folder brings what lies
    /// below it); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    /// NAME is a folder synced both ways (`bucketsync folder`), not a backup: with --at, a
    /// file deleted or overwritten there comes back as it was.
    #[arg(long, requires = "name")]
    pub synced_folder: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The backup (or, with --synced-folder, the folder) to check (optional when the vault
    /// holds only one backup).
    pub name: Option<String>,
    /// NAME is a folder synced both ways (`bucketsync folder`), not a backup.
    #[arg(long, requires = "name")]
    pub synced_folder: bool,
    /// Read this share of the files, in percent, drawn at random.
    #[arg(long, value_name = "PERCENT", default_value_t = 100,
          value_parser = clap::value_parser!(u8).range(1..=100))]
    pub sample: u8,
}

#[derive(Debug, Args)]
pub struct FolderArgs {
    /// The folder to sync.
    pub dir: PathBuf,
    /// Its name in the vault, the same on every device (default: the folder's name).
    #[arg(long = "as", value_name = "NAME")]
    pub name: Option<String>,
    /// Leave out paths matching this glob (`*.tmp`, `node_modules`); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Sync again and again, this long apart (`30s`, `5m`); Ctrl-C stops.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub every: Option<Duration>,
    /// Stop, changing nothing, when a sync would delete more than this share of the folder
    /// (on this device, or in the vault; counted in records: a file is two, a folder one),
    /// once at least 10 records would go.
    #[arg(long, value_name = "PERCENT", default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub max_delete: u8,
    /// Go on past `--max-delete` this once: the deletions were meant.
    #[arg(long)]
    pub confirm_deletions: bool,
    /// Show what the sync would change, path by path, and change nothing (the records are
    /// still pulled first).
    #[arg(long, conflicts_with = "every")]
    pub dry_run: bool,
}

/// The options of `signer`.
#[derive(Debug, Args)]
pub struct SignerArgs {
    /// Where to listen: `127.0.0.1:8787` (port 0: a free port, printed at start).
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// The file holding the bearer token clients must present (at least 16 characters;
    /// surrounding white space is ignored).
    #[arg(long, value_name = "FILE")]
    pub token_file: PathBuf,
    /// How long each presigned URL is valid (`30s`, `5m`; at most `1h`).
    #[arg(long, default_value = "5m", value_parser = parse_expiry)]
    pub expires: Duration,
    /// Tokens limited to one vault each: lines `TOKEN VAULT-ID read|write` (`#` starts a
    /// comment). Read from the file at start.
    #[arg(long, value_name = "FILE")]
    pub member_tokens: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration: {e}"))
}

fn parse_time(text: &str) -> Result<u64, String> {
    let time = humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("{text:?} is not a time like 2026-11-24T18:00:00Z: {e}"))?;
    Ok(time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64))
}

/// The longest validity handed out: a leaked URL is good for one request, and not for long.
const MAX_EXPIRY: Duration = Duration::from_secs(3600);

fn parse_expiry(text: &str) -> Result<Duration, String> {
    let expiry =
        humantime::parse_duration(text).map_err(|e| format!("{text:?} is not a duration: {e}"))?;
    if expiry < Duration::from_secs(1) || expiry > MAX_EXPIRY {
        return Err(format!("{text:?}: presigned URLs last from 1s to 1h"));
    }
    Ok(expiry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_at_most_an_hour() {
        assert_eq!(parse_expiry("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_expiry("1h"), Ok(MAX_EXPIRY));
        assert!(parse_expiry("61m").is_err());
        assert!(parse_expiry("0s").is_err());
        assert!(parse_expiry("soon").is_err());
    }
}
