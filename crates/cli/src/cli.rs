//! Command-line syntax. Parsing and validation only: values arrive typed
//! (sizes, times, percentages) and the commands build the real objects.

pub use crate::parse::{GroupBy, GroupField};
use crate::parse::{
    parse_duration, parse_group_by, parse_percent_or_zero, parse_size, parse_snapshot_path,
    parse_subset, parse_time,
};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit status:
  0   success
  1   fatal error (including check or restore finding problems)
  2   usage error
  3   backup finished, but some files could not be read
  10  no repository at the given location
  11  the repository is locked by another process
  12  wrong password, no usable key file, or credentials that may not do
      this (a command that deletes, on a host that may not)
  130 interrupted (SIGINT or SIGTERM); nothing half-written is kept

Without --repo or CAIRN_REPOSITORY, cairn uses a default local repository in
your data directory (~/.local/share/cairn/default-repo), protected by a
random password kept in ~/.local/share/cairn/default-repo.password (mode
0600); `cairn backup` creates both on first use.";

/// cairn: deduplicating, compressed, encrypted backups of directory trees.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    /// Options for every command.
    #[command(flatten, next_help_heading = "Global options")]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Args)]
pub struct Global {
    /// Repository location: a local directory, or s3://bucket/prefix.
    #[arg(
        short = 'r',
        long = "repo",
        env = "CAIRN_REPOSITORY",
        global = true,
        value_name = "LOCATION"
    )]
    pub repo: Option<String>,
    /// Read the repository location from this file (first line).
    #[arg(
        long,
        env = "CAIRN_REPOSITORY_FILE",
        global = true,
        value_name = "FILE",
        conflicts_with = "repo"
    )]
    pub repository_file: Option<PathBuf>,
    /// Read the password from this file (first line).
    #[arg(
        long,
        env = "CAIRN_PASSWORD_FILE",
        global = true,
        value_name = "FILE",
        conflicts_with = "password_command"
    )]
    pub password_file: Option<PathBuf>,
    /// Run this shell command and use its output as the password.
    #[arg(
        long,
        env = "CAIRN_PASSWORD_COMMAND",
        global = true,
        value_name = "COMMAND"
    )]
    pub password_command: Option<String>,
    /// Directory for the local index cache (default: the user's cache directory).
    #[arg(long, env = "CAIRN_CACHE_DIR", global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Keep the index cache in memory only (rebuilt by every run).
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Print machine-readable JSON on standard output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only warnings and errors (no progress, no results in words).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More output: `backup -v` lists new and modified files on stdout,
    /// `-vv` unchanged ones too; logs at info (-v) or debug (-vv) level.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// S3: endpoint URL of a compatible server (`http://127.0.0.1:9000`).
    #[arg(long, env = "CAIRN_S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,
    /// S3: region (default from AWS_REGION, the profile, or us-east-1).
    #[arg(long, env = "CAIRN_S3_REGION", global = true)]
    pub s3_region: Option<String>,
    /// S3: path-style requests (endpoint/bucket/key), as self-hosted servers need.
    #[arg(long, env = "CAIRN_S3_PATH_STYLE", global = true)]
    pub s3_path_style: bool,
    /// S3: allow plain HTTP (loopback servers).
    #[arg(long, env = "CAIRN_S3_ALLOW_HTTP", global = true)]
    pub s3_allow_http: bool,
    /// S3: retries of a failed request (server errors, throttling, timeouts).
    #[arg(long, env = "CAIRN_S3_RETRIES", global = true)]
    pub s3_retries: Option<usize>,
    /// S3: profile in ~/.aws/credentials and ~/.aws/config.
    #[arg(long, env = "CAIRN_S3_PROFILE", global = true)]
    pub s3_profile: Option<String>,
    /// Wait up to this long for a lock held by another process (`30s`, `5m`).
    #[arg(long, global = true, value_parser = parse_duration, value_name = "DURATION")]
    pub retry_lock: Option<std::time::Duration>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a repository.
    Init(InitArgs),
    /// Back up files and directories into a new snapshot.
    Backup(BackupArgs),
    /// List snapshots.
    Snapshots(SnapshotsArgs),
    /// List the entries of a snapshot.
    Ls(LsArgs),
    /// Find which snapshots hold paths matching a pattern.
    Find(FindArgs),
    /// Restore a snapshot, a folder or a single file.
    Restore(RestoreArgs),
    /// Verify a snapshot: authenticate every blob it references and,
    /// with --command, run a check against a restored copy; record the
    /// outcome (`verified` or `failed`).
    Verify(VerifyArgs),
    /// Show what changed between two snapshots.
    Diff(DiffArgs),
    /// Check the repository for damage.
    Check(CheckArgs),
    /// Show repository size, deduplication and compression, or what
    /// some snapshots hold.
    Stats(StatsArgs),
    /// Copy the repository to another location (S3 or a directory), pull it
    /// back, or verify a copy.
    Sync(SyncArgs),
    /// Transaction-log streams: push, list, get, verify.
    #[command(subcommand)]
    Log(LogCommand),
    /// Export an archival backup: a snapshot and the log segments since the previous one.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Apply a retention policy: decide, explain, remove snapshots.
    Forget(ForgetArgs),
    /// Delete data no snapshot uses; repack sparse packs.
    Prune(PruneArgs),
    /// Account lifecycle: list, show, disable, enable.
    #[command(subcommand)]
    Account(AccountCommand),
    /// Manage the key files that protect the repository.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Remove stale locks.
    Unlock(UnlockArgs),
    /// The local index cache: rebuild it, or remove old caches.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// The old name of `cache rebuild` (kept as an alias).
    #[command(subcommand, hide = true)]
    Index(IndexCommand),
    /// Print the version, the commit it was built from and the format
    /// versions it reads.
    Version,
    /// Repair the repository.
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Print a decrypted repository object (for debugging).
    Cat(CatArgs),
    /// The backup service: scheduled backups, verification, retention,
    /// offsite sync and notifications (docs/SERVICE.md).
    #[command(subcommand)]
    Service(ServiceCommand),
    /// The service's operation queue: list, cancel, clear.
    #[command(subcommand)]
    Queue(QueueCommand),
}

/// The service config file.
#[derive(Debug, Args)]
pub struct ServiceConfigArg {
    /// The service's config file (docs/SERVICE.md).
    #[arg(long, short = 'c', env = "CAIRN_SERVICE_CONFIG")]
    pub config: PathBuf,
}

/// `service ...`.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Run the service in the foreground until SIGTERM or Ctrl-C (run it
    /// from systemd; docs/SERVICE.md has a unit).
    Run(ServiceConfigArg),
    /// Each job's schedule: last run, its outcome, the newest snapshot and
    /// verified snapshot, and when it is next due.
    Status(ServiceConfigArg),
    /// Queue a job now.
    RunNow {
        /// The job's name in the config.
        job: String,
        #[command(flatten)]
        config: ServiceConfigArg,
    },
}

/// `queue ...`.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Running and pending operations with their progress, and recent ones.
    List {
        #[command(flatten)]
        config: ServiceConfigArg,
        /// Also show finished operations (the last 50).
        #[arg(long, short = 'a')]
        all: bool,
    },
    /// Cancel a pending operation, or stop the running one at a safe point.
    Cancel {
        /// The operation's id (from `queue list`).
        id: u64,
        #[command(flatten)]
        config: ServiceConfigArg,
    },
    /// Cancel every pending operation and stop the running one at a safe
    /// point.
    Clear(ServiceConfigArg),
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Minimum chunk size.
    #[arg(long, value_parser = parse_size, default_value = "512KiB", value_name = "SIZE")]
    pub chunk_min: u64,
    /// Average chunk size (a power of two).
    #[arg(long, value_parser = parse_size, default_value = "1MiB", value_name = "SIZE")]
    pub chunk_avg: u64,
    /// Maximum chunk size.
    #[arg(long, value_parser = parse_size, default_value = "8MiB", value_name = "SIZE")]
    pub chunk_max: u64,
    /// zstd level 1-22, or 0 to store everything uncompressed.
    #[arg(long, default_value_t = 3)]
    pub compression: i32,
    /// Target pack size.
    #[arg(long, value_parser = parse_size, default_value = "16MiB", value_name = "SIZE")]
    pub pack_size: u64,
    /// Memory cost of the password derivation (argon2id), in KiB.
    #[arg(long, default_value_t = 65536)]
    pub kdf_memory_kib: u32,
    /// Time cost of the password derivation (argon2id passes).
    #[arg(long, default_value_t = 3)]
    pub kdf_iterations: u32,
    /// On S3: create the bucket first (it is not an error if it exists and
    /// is yours).
    #[arg(long)]
    pub create_bucket: bool,
    /// On S3: write every object that holds backups under S3 object lock,
    /// retained for this long (a number of days, or 90d, 2w...); prune
    /// extends the retention of what is still in use. The bucket must have
    /// object lock enabled (--create-bucket creates it so).
    #[arg(long, value_name = "DAYS", value_parser = crate::parse::parse_lock_period)]
    pub object_lock: Option<std::time::Duration>,
    /// The object-lock mode: governance (users with the bypass right may
    /// still delete) or compliance (nobody may, before the date).
    #[arg(
        long,
        value_name = "MODE",
        default_value = "governance",
        requires = "object_lock"
    )]
    pub object_lock_mode: ObjectLockModeArg,
    /// Generate a random password into this new file (mode 0600) and
    /// protect the repository's key with it; the file must not exist.
    /// (`--password-file`/CAIRN_PASSWORD_FILE may name the same file.)
    #[arg(long, value_name = "FILE")]
    pub generate_password_file: Option<PathBuf>,
}

/// The object-lock modes `init --object-lock-mode` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ObjectLockModeArg {
    /// Users with s3:BypassGovernanceRetention may still delete.
    Governance,
    /// Nobody may delete before the retention date.
    Compliance,
}

/// `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Files and directories to back up, in the order they are read.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Account the snapshot belongs to.
    #[arg(long, default_value = "default")]
    pub account: String,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's).
    #[arg(long)]
    pub host: Option<String>,
    /// Record the snapshot under this time (RFC 3339, or local `YYYY-MM-DD[ HH:MM[:SS]]`).
    /// More than a day ahead of the clock is refused (retention would take
    /// it for the newest snapshot) unless --allow-future-time.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub time: Option<jiff::Timestamp>,
    /// Accept a --time more than a day ahead of the clock (for tests).
    #[arg(long, requires = "time")]
    pub allow_future_time: bool,
    /// Exclude entries matching a glob (repeatable; see README for the rules).
    #[arg(long = "exclude", value_name = "PATTERN")]
    pub excludes: Vec<String>,
    /// As --exclude, without regard to case (repeatable).
    #[arg(long = "iexclude", value_name = "PATTERN")]
    pub iexcludes: Vec<String>,
    /// Read exclude globs from a file, one per line (repeatable).
    #[arg(long = "exclude-file", value_name = "FILE")]
    pub exclude_files: Vec<PathBuf>,
    /// Skip the contents of directories tagged with CACHEDIR.TAG.
    #[arg(long)]
    pub exclude_caches: bool,
    /// Compare with this snapshot instead of the newest matching one.
    #[arg(long, conflicts_with = "force")]
    pub parent: Option<String>,
    /// Read every file, ignoring earlier snapshots.
    #[arg(long)]
    pub force: bool,
}

/// Filters shared by snapshot listings.
#[derive(Debug, Args, Clone, Default)]
pub struct SnapshotFilter {
    /// Only snapshots of this account.
    #[arg(long)]
    pub account: Option<String>,
    /// Only snapshots from this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Only snapshots with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only snapshots of this path (repeatable: snapshots holding all of them).
    #[arg(long = "path", value_name = "PATH", value_parser = parse_snapshot_path)]
    pub paths: Vec<String>,
}

/// `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only these snapshots (`latest`, ids or prefixes); with none and no
    /// --mode, figures for the whole repository.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// What to count for the snapshots: `restore-size` (what restoring
    /// them writes) or `raw-data` (the distinct blobs they need, before
    /// and after compression). Without SNAPSHOT, every snapshot.
    #[arg(long, value_enum)]
    pub mode: Option<StatsMode>,
    /// Filters (for `latest`, and for every snapshot with --mode).
    #[command(flatten)]
    pub filter: SnapshotFilter,
}

/// `stats --mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StatsMode {
    /// The bytes restoring the snapshots would write.
    RestoreSize,
    /// The distinct blobs the snapshots need.
    RawData,
}

/// `snapshots`.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Filters.
    #[command(flatten)]
    pub filter: SnapshotFilter,
    /// Show each snapshot's log range since the previous snapshot of its account.
    #[arg(long)]
    pub logs: bool,
    /// Only the N newest snapshots (of each group with --group-by).
    #[arg(long, value_name = "N")]
    pub latest: Option<usize>,
    /// Group by any of host, account, paths and tags (comma-separated).
    #[arg(long, value_name = "FIELDS", value_parser = parse_group_by)]
    pub group_by: Option<GroupBy>,
}

/// `ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Snapshot id (or prefix), or `latest`.
    pub snapshot: String,
    /// Only entries under this path.
    pub path: Option<String>,
    /// Show mode, size and modification time.
    #[arg(short, long)]
    pub long: bool,
    /// Filters for `latest`.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}

/// `find`.
#[derive(Debug, Args)]
pub struct FindArgs {
    /// Glob; without `/` it matches names, with `/` whole paths.
    pub pattern: String,
    /// Only entries modified at or before this time (`2026-11-20 10:00`,
    /// RFC 3339).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub newest: Option<jiff::Timestamp>,
    /// Only entries modified at or after this time.
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub oldest: Option<jiff::Timestamp>,
    /// Only in this snapshot (`latest`, an id or prefix; repeatable).
    #[arg(long = "snapshot", short = 's', value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Filters.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The snapshot: `latest`, an id or a unique prefix.
    pub snapshot: String,
    /// Restore the snapshot into a scratch directory and run this shell
    /// command there (`csdb verify .`, `sqlite3 db 'PRAGMA integrity_check'`);
    /// a non-zero exit fails the verification. The directory is the
    /// contents of the snapshot's path when it has one, and is in
    /// CAIRN_VERIFY_DIR; the snapshot id is in CAIRN_SNAPSHOT.
    #[arg(long)]
    pub command: Option<String>,
    /// Where to create the scratch directory (default: the system's
    /// temporary directory). It is removed afterwards.
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// Check only; write no verification record.
    #[arg(long)]
    pub no_record: bool,
    /// Which snapshots `latest` may mean.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}

/// `restore`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["snapshot", "until", "latest"])))]
pub struct RestoreArgs {
    /// `SNAPSHOT` or `SNAPSHOT:PATH` (a folder or a single file inside it).
    pub snapshot: Option<String>,
    /// Point in time: the newest good snapshot of --account taken at or
    /// before TIME (a snapshot whose verification failed is passed over;
    /// --host and --tag narrow the choice), plus the log segments pushed
    /// after it up to TIME.
    #[arg(long, value_parser = parse_time, conflicts_with_all = ["snapshot", "latest"], requires = "account")]
    pub until: Option<jiff::Timestamp>,
    /// Point in time: the newest good snapshot of --account plus every log
    /// segment after it.
    #[arg(long, conflicts_with = "snapshot", requires = "account")]
    pub latest: bool,
    /// With --until or --latest: start from this snapshot (id or prefix),
    /// even one whose verification failed.
    #[arg(long = "snapshot", id = "from_snapshot", value_name = "ID")]
    pub from_snapshot: Option<String>,
    /// Only this log stream (default: every stream of the account).
    #[arg(long)]
    pub stream: Option<String>,
    /// Where the log segments go, inside the target.
    #[arg(long, default_value = "cairn-logs")]
    pub logs_dir: PathBuf,
    /// Run this shell command once per segment, in order (hot backup);
    /// CAIRN_SEGMENT, CAIRN_SEGMENT_NAME, CAIRN_SEGMENT_SEQ, CAIRN_STREAM and
    /// CAIRN_TARGET describe it; stops at the first failure.
    #[arg(long)]
    pub apply_command: Option<String>,
    /// Directory to restore into.
    #[arg(long, short = 't')]
    pub target: PathBuf,
    /// Restore only entries matching a glob, and what is under them (repeatable).
    #[arg(long = "include", value_name = "PATTERN")]
    pub include: Vec<String>,
    /// As --include, without regard to case (repeatable).
    #[arg(long = "iinclude", value_name = "PATTERN")]
    pub iinclude: Vec<String>,
    /// Leave out entries matching a glob (backup's --exclude rules; a
    /// directory takes what is under it along; repeatable).
    #[arg(long = "exclude", value_name = "PATTERN")]
    pub exclude: Vec<String>,
    /// As --exclude, without regard to case (repeatable).
    #[arg(long = "iexclude", value_name = "PATTERN")]
    pub iexclude: Vec<String>,
    /// Read every restored file back and compare it with the snapshot.
    #[arg(long)]
    pub verify: bool,
    /// Filters for `latest`.
    #[command(flatten)]
    pub filter: SnapshotFilter,
}

/// `sync`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("direction").required(true).args(["to", "from"])))]
pub struct SyncArgs {
    /// Copy this repository to URL (s3://bucket/prefix or a directory).
    #[arg(long)]
    pub to: Option<String>,
    /// Copy the repository at URL into this one (after a disaster).
    #[arg(long)]
    pub from: Option<String>,
    /// Delete from the destination what the source no longer has (needs
    /// the password: the source is locked and its index read; copying
    /// alone needs none).
    #[arg(long)]
    pub delete: bool,
    /// With --delete: keep such objects this long first (`7d`, `12h`).
    #[arg(long, value_parser = parse_duration, requires = "delete", value_name = "DURATION")]
    pub delete_after: Option<std::time::Duration>,
    /// Compare both sides (missing, extra, corrupt objects); copy nothing.
    /// Needs no password.
    #[arg(long, conflicts_with_all = ["delete", "dry_run"])]
    pub verify: bool,
    /// Verify (as --verify), then send again every object found missing or
    /// corrupt on the destination. Needs no password.
    #[arg(long, conflicts_with_all = ["delete", "dry_run"])]
    pub repair: bool,
    /// Show what would be copied and deleted.
    #[arg(long)]
    pub dry_run: bool,
    /// Packs in flight at once (each is held in memory, up to a pack's
    /// size); small objects go four times as wide.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Objects larger than this are sent as multipart uploads.
    #[arg(long, value_parser = parse_size, default_value = "32MiB", value_name = "SIZE")]
    pub multipart_threshold: u64,
    /// Part size of multipart uploads (at least 5 MiB on S3).
    #[arg(long, value_parser = parse_size, default_value = "8MiB", value_name = "SIZE")]
    pub part_size: u64,
}

/// `log ...`.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Store log segments (files, or standard input with `-`).
    Push {
        /// The account.
        #[arg(long)]
        account: String,
        /// The stream (one database's log).
        #[arg(long)]
        stream: String,
        /// The source's position of the segment (a PostgreSQL LSN), recorded as given.
        #[arg(long)]
        position: Option<String>,
        /// The segment name for standard input (default: each file's name).
        #[arg(long)]
        name: Option<String>,
        /// Segment files, or `-` for standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List segments.
    List {
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
    },
    /// Write one segment to a file; exit status 1 when it does not exist.
    Get {
        /// The account.
        #[arg(long)]
        account: String,
        /// The stream.
        #[arg(long)]
        stream: String,
        /// The segment name.
        name: String,
        /// Where to write it.
        dest: PathBuf,
    },
    /// Check chain continuity and that every chunk is there.
    Verify {
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
        /// Only this stream.
        #[arg(long)]
        stream: Option<String>,
        /// Also read and verify every segment's content.
        #[arg(long)]
        read_data: bool,
    },
}

/// `export ...`.
#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// A snapshot's files and the log segments pushed since the previous snapshot.
    Archival {
        /// Snapshot id (or prefix), or `latest` with --account.
        snapshot: String,
        /// Directory to write into.
        #[arg(long, short = 't')]
        target: PathBuf,
        /// Where the log segments go, inside the target.
        #[arg(long, default_value = "cairn-logs")]
        logs_dir: PathBuf,
        /// Export the segments that exist even when the range has a gap or
        /// an unreadable segment, saying what is missing (by default that
        /// fails the export: an archival backup holds every log since the
        /// previous snapshot).
        #[arg(long)]
        allow_gaps: bool,
        /// Filters for `latest`.
        #[command(flatten)]
        filter: SnapshotFilter,
    },
}

/// `diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Older snapshot.
    pub first: String,
    /// Newer snapshot.
    pub second: String,
}

/// `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Download every pack and verify every blob.
    #[arg(long)]
    pub read_data: bool,
    /// Read only some packs: `10%` (at random; a bare number is a
    /// percentage too), `2/5` (the second of five fixed groups: five runs
    /// read every pack once) or a size, `5GiB` (random packs up to it).
    #[arg(long, value_parser = parse_subset, value_name = "SUBSET")]
    pub read_data_subset: Option<cairn_repository::Subset>,
}

/// `forget`.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Remove these snapshots (ids, prefixes or `latest`) instead of
    /// applying a policy; the newest good snapshot of an account stays
    /// unless --force.
    #[arg(value_name = "SNAPSHOT", conflicts_with = "policy")]
    pub snapshots: Vec<String>,
    /// The policy file (TOML; see docs/RETENTION.md).
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Remove even the newest good snapshot of an account (with SNAPSHOT…).
    #[arg(long)]
    pub force: bool,
    /// Without a policy file: the policy's rules as flags (the same
    /// planner and reasons; times in this machine's time zone).
    #[command(flatten)]
    pub keep: KeepFlags,
    /// Only accounts matching this glob.
    #[arg(long)]
    pub account: Option<String>,
    /// Show the decisions; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Prune afterwards, under the same lock.
    #[arg(long)]
    pub prune: bool,
    /// Evaluate as of this time instead of now (what-if; purge-after counts
    /// from the clock).
    #[arg(long, value_parser = parse_time, value_name = "TIME")]
    pub now: Option<jiff::Timestamp>,
    /// Prune settings (with --prune).
    #[command(flatten)]
    pub prune_opts: PruneSettings,
}

/// `forget --keep-*`: a policy's `[default]` section as flags.
#[derive(Debug, Args, Default)]
pub struct KeepFlags {
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N", conflicts_with = "policy")]
    pub keep_last: Option<u32>,
    /// Keep the last snapshot of each of the N newest hours.
    #[arg(long, value_name = "N", conflicts_with = "policy")]
    pub keep_hourly: Option<u32>,
    /// Keep the last snapshot of each of the N newest days.
    #[arg(long, value_name = "N", conflicts_with = "policy")]
    pub keep_daily: Option<u32>,
    /// Keep the last snapshot of each of the N newest weeks.
    #[arg(long, value_name = "N", conflicts_with = "policy")]
    pub keep_weekly: Option<u32>,
    /// Keep the last snapshot of each of the N newest months.
    #[arg(long, value_name = "N", conflicts_with = "policy")]
    pub keep_monthly: Option<u32>,
    /// Keep the last snapshot of each of the N newest quarters.
    #[arg(long, value_name = "N", conflicts_with = "policy")]
    pub keep_quarterly: Option<u32>,
    /// Keep the last snapshot of each of the N newest years.
    #[arg(long, value_name = "N", conflicts_with = "policy")]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot within this duration of the account's newest
    /// (`7d`, `3mo`, `1y6mo`).
    #[arg(long, value_name = "DURATION", conflicts_with = "policy")]
    pub keep_within: Option<String>,
    /// Keep snapshots with this tag (repeatable).
    #[arg(long, value_name = "TAG", conflicts_with = "policy")]
    pub keep_tag: Vec<String>,
}

impl KeepFlags {
    /// The flags as a policy file's text, or `None` when none is given.
    pub fn policy_text(&self) -> Option<String> {
        let mut lines = Vec::new();
        for (key, v) in [
            ("keep-last", self.keep_last),
            ("keep-hourly", self.keep_hourly),
            ("keep-daily", self.keep_daily),
            ("keep-weekly", self.keep_weekly),
            ("keep-monthly", self.keep_monthly),
            ("keep-quarterly", self.keep_quarterly),
            ("keep-yearly", self.keep_yearly),
        ] {
            if let Some(n) = v {
                lines.push(format!("{key} = {n}"));
            }
        }
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
        if let Some(w) = &self.keep_within {
            lines.push(format!("keep-within = {}", quote(w)));
        }
        if !self.keep_tag.is_empty() {
            let tags: Vec<String> = self.keep_tag.iter().map(|t| quote(t)).collect();
            lines.push(format!("keep-tag = [{}]", tags.join(", ")));
        }
        if lines.is_empty() {
            return None;
        }
        let tz = jiff::tz::TimeZone::system()
            .iana_name()
            .map(|n| format!("timezone = {}\n", quote(n)))
            .unwrap_or_default();
        Some(format!("{tz}[default]\n{}\n", lines.join("\n")))
    }
}

/// Prune tuning shared by `prune` and `forget --prune`.
#[derive(Debug, Args)]
pub struct PruneSettings {
    /// Repack until unused space is at most this share of what stays (`5%`).
    #[arg(long, value_parser = parse_percent_or_zero, default_value = "5%", value_name = "PERCENT")]
    pub max_unused: f64,
    /// Repack at most this much pack data per run.
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub max_repack_size: Option<u64>,
    /// Packs that leave the index wait this long before a later prune
    /// deletes them, so restores, verifications and syncs running now
    /// finish first (`24h`, `7d`; `0` deletes at once).
    #[arg(long, value_parser = parse_duration, default_value = "24h", value_name = "DURATION")]
    pub delete_after: std::time::Duration,
}

/// `prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Show what would be deleted and repacked; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Tuning.
    #[command(flatten)]
    pub settings: PruneSettings,
}

/// `account ...`.
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Every account with snapshots or lifecycle events.
    List {
        /// Show purge dates according to this policy file.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// One account's state, history and snapshots.
    Show {
        /// The account.
        name: String,
        /// Show the purge date according to this policy file.
        #[arg(long)]
        policy: Option<PathBuf>,
    },
    /// Stop taking backups of an account; purge it after `purge-after`.
    Disable {
        /// The account.
        name: String,
        /// Record the change under this time instead of now.
        #[arg(long, value_parser = parse_time, value_name = "TIME")]
        time: Option<jiff::Timestamp>,
    },
    /// Back up an account normally again.
    Enable {
        /// The account.
        name: String,
        /// Record the change under this time instead of now.
        #[arg(long, value_parser = parse_time, value_name = "TIME")]
        time: Option<jiff::Timestamp>,
    },
}

/// `key ...`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List key files.
    List,
    /// Add a key file for another password.
    Add(KeyAddArgs),
    /// Remove a key file.
    Remove {
        /// Key id or prefix.
        id: String,
    },
    /// Replace the key in use with one for a new password.
    Passwd(NewPassword),
}

/// Where a new password comes from.
#[derive(Debug, Args)]
pub struct NewPassword {
    /// Read the new password from this file (otherwise it is asked for on
    /// the terminal).
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
}

/// `key add`.
#[derive(Debug, Args)]
pub struct KeyAddArgs {
    /// The new password.
    #[command(flatten)]
    pub password: NewPassword,
    /// User name recorded in the key file (default: yours).
    #[arg(long)]
    pub user: Option<String>,
    /// Host name recorded in the key file (default: this machine's).
    #[arg(long)]
    pub host: Option<String>,
    /// A put-only key: it backs up and pushes logs for the accounts named
    /// with --account, and cannot read, restore, forget or prune anything,
    /// not even what it stored itself.
    #[arg(long, requires = "account")]
    pub put_only: bool,
    /// An account a put-only key may write (repeat for more).
    #[arg(long, requires = "put_only")]
    pub account: Vec<String>,
}

/// `unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Remove every lock, not only stale ones.
    #[arg(long)]
    pub remove_all: bool,
}

/// `index ...`.
#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Now `cairn cache rebuild`.
    Rebuild,
}

/// `cache ...`.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Throw this repository's local cache away and rebuild it from the
    /// index objects.
    Rebuild,
    /// Remove the caches of repositories not opened for a while (from the
    /// cache directory; nothing in any repository changes).
    Cleanup {
        /// Remove caches unused for longer than this.
        #[arg(long, value_parser = parse_duration, default_value = "30d", value_name = "DURATION")]
        max_age: std::time::Duration,
        /// Say what would be removed, remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `repair ...`.
#[derive(Debug, Subcommand)]
pub enum RepairCommand {
    /// Rebuild the index objects from the packs that exist (forgets lost blobs).
    Index,
}

/// `cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// config, key, snapshot, index, pack, tree, blob or lock.
    pub kind: String,
    /// The object's id (not needed for config).
    pub id: Option<String>,
}
