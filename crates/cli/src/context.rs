//! From global options to an open repository: where it is, which password
//! opens it, where its cache lives, and the embedded default repository.

use crate::cli::Global;
use anyhow::{Context as _, Result, bail};
use cairn_repository::{CacheLocation, InitOptions, Repository, Store};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// A password, zeroed when dropped, never printed.
pub type Password = Zeroizing<Vec<u8>>;

/// Where the repository is.
#[derive(Debug, Clone)]
pub enum Location {
    /// Given with `--repo` or `CAIRN_REPOSITORY`.
    Explicit(String),
    /// The embedded default in the user's data directory.
    Default {
        /// The repository directory.
        repo: PathBuf,
        /// Its password file.
        password_file: PathBuf,
    },
}

/// Everything commands need from the global options.
#[derive(Debug)]
pub struct Context {
    /// The global options.
    pub global: Global,
    /// Resolved location.
    pub location: Location,
    /// Whether the command may run with a put-only key (backup, log push,
    /// key list); every other command refuses one up front.
    pub put_only_ok: bool,
}

fn default_location() -> Result<Location> {
    let data = dirs::data_dir().context(
        "no repository given (--repo or CAIRN_REPOSITORY) and no data directory to hold the default one",
    )?;
    let base = data.join("cairn");
    Ok(Location::Default {
        repo: base.join("default-repo"),
        password_file: base.join("default-repo.password"),
    })
}

/// Read the first line of a password file. One that group or others can
/// read is used, with a warning (as ssh warns of such key files).
fn read_password_file(path: &Path) -> Result<Password> {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::metadata(path)
        && md.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "cairn: warning: the password file {} can be read by other users (mode {:04o}); `chmod 600 {}` keeps it yours",
            path.display(),
            md.permissions().mode() & 0o7777,
            path.display()
        );
    }
    let bytes = Zeroizing::new(
        std::fs::read(path).with_context(|| format!("reading password file {}", path.display()))?,
    );
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        bail!("password file {} is empty", path.display());
    }
    Ok(Zeroizing::new(line.to_vec()))
}

fn run_password_command(cmd: &str) -> Result<Password> {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running the password command")?;
    let stdout = Zeroizing::new(out.stdout);
    if !out.status.success() {
        bail!("the password command failed with {}", out.status);
    }
    let line = stdout.split(|b| *b == b'\n').next().unwrap_or_default();
    if line.is_empty() {
        bail!("the password command printed nothing");
    }
    Ok(Zeroizing::new(line.to_vec()))
}

/// Ask on the terminal.
pub fn prompt_password(prompt: &str, confirm: bool) -> Result<Password> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password given: use --password-file, CAIRN_PASSWORD_FILE, --password-command or CAIRN_PASSWORD_COMMAND"
        );
    }
    let first = Zeroizing::new(rpassword::prompt_password(prompt).context("reading the password")?);
    if first.is_empty() {
        bail!("empty password");
    }
    if confirm {
        let second = Zeroizing::new(
            rpassword::prompt_password("enter it again: ").context("reading the password")?,
        );
        if *first != *second {
            bail!("the passwords do not match");
        }
    }
    Ok(Zeroizing::new(first.as_bytes().to_vec()))
}

impl Context {
    /// Resolve the location from the options.
    pub fn new(global: Global) -> Result<Self> {
        let from_file = match &global.repository_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading repository file {}", path.display()))?;
                let line = text.lines().next().unwrap_or_default().trim().to_string();
                if line.is_empty() {
                    bail!("repository file {} is empty", path.display());
                }
                Some(line)
            }
            None => None,
        };
        let location = match from_file.as_ref().or(global.repo.as_ref()) {
            Some(r) if !r.is_empty() => Location::Explicit(r.clone()),
            _ => default_location()?,
        };
        Ok(Self {
            global,
            location,
            put_only_ok: false,
        })
    }

    /// A command's result in words, on stdout unless quiet or `--json`
    /// (diagnostics go to stderr with [`Context::note`]).
    pub fn say(&self, msg: &str) {
        if !self.global.quiet && !self.global.json {
            outln!("{msg}");
        }
    }

    /// Print to stderr unless quiet.
    pub fn note(&self, msg: &str) {
        if !self.global.quiet {
            eprintln!("{msg}");
        }
    }

    /// S3 settings from the options.
    pub fn s3_options(&self) -> cairn_repository::s3::S3Options {
        cairn_repository::s3::S3Options {
            endpoint: self.global.s3_endpoint.clone(),
            region: self.global.s3_region.clone(),
            path_style: self.global.s3_path_style,
            allow_http: self.global.s3_allow_http,
            profile: self.global.s3_profile.clone(),
            credentials: None,
            max_retries: self.global.s3_retries,
        }
    }

    /// Open any location: a local directory or `s3://bucket/prefix`.
    pub fn store_at(&self, loc: &str, create: bool) -> Result<Store> {
        if loc.starts_with("s3://") {
            return cairn_repository::s3::store(loc, &self.s3_options())
                .map_err(cairn_repository::Error::from)
                .with_context(|| format!("opening {loc}"));
        }
        if loc.contains("://") && !loc.starts_with("file://") {
            bail!("{loc}: repositories are local directories or s3://bucket/prefix");
        }
        let path = loc.strip_prefix("file://").unwrap_or(loc);
        // A missing directory is "no repository" (exit status 10).
        Ok(Store::local(Path::new(path), create).map_err(cairn_repository::Error::from)?)
    }

    /// Open the object store.
    pub fn store(&self, create: bool) -> Result<Store> {
        match &self.location {
            Location::Explicit(loc) => self.store_at(loc, create),
            Location::Default { repo, .. } => {
                if create {
                    std::fs::create_dir_all(repo)
                        .with_context(|| format!("creating {}", repo.display()))?;
                }
                Ok(Store::local(repo, false).map_err(cairn_repository::Error::from)?)
            }
        }
    }

    /// The password: file, command, the default repository's file, or a prompt.
    pub fn password(&self, confirm: bool) -> Result<Password> {
        if let Some(f) = &self.global.password_file {
            return read_password_file(f);
        }
        if let Some(c) = &self.global.password_command {
            return run_password_command(c);
        }
        if let Location::Default { password_file, .. } = &self.location {
            return read_password_file(password_file);
        }
        prompt_password("repository password: ", confirm)
    }

    /// Where the index cache lives.
    pub fn cache(&self) -> Result<CacheLocation> {
        if self.global.no_cache {
            return Ok(CacheLocation::InMemory);
        }
        let dir = match &self.global.cache_dir {
            Some(d) => d.clone(),
            None => dirs::cache_dir()
                .map(|d| d.join("cairn"))
                .context("no cache directory; give --cache-dir or --no-cache")?,
        };
        Ok(CacheLocation::Directory(dir))
    }

    /// Explain the embedded default, once per run.
    fn explain_default(&self) {
        if let Location::Default {
            repo,
            password_file,
        } = &self.location
            && self.global.password_file.is_none()
            && self.global.password_command.is_none()
        {
            self.note(&format!(
                "cairn: using the default repository {} (no --repo or CAIRN_REPOSITORY given);\n\
                 cairn: its key is protected by the random password in {} (readable only by you).\n\
                 cairn: keep a copy of that file somewhere safe: without it these backups cannot be read.",
                repo.display(),
                password_file.display()
            ));
        }
    }

    /// How long to wait for a lock: `--retry-lock`, but at least `min`.
    pub fn lock_wait_at_least(&self, min: std::time::Duration) -> std::time::Duration {
        self.global.retry_lock.unwrap_or_default().max(min)
    }

    /// Open the repository in `store` with the password sources.
    pub fn open_store(&self, store: Store) -> Result<Repository> {
        if !store.has_config()? {
            let location = store.location().to_string();
            return Err(match store.missing_bucket() {
                Some(bucket) => cairn_repository::Error::NoBucket { location, bucket },
                None => cairn_repository::Error::NoRepository(location),
            }
            .into());
        }
        let password = self.password(false)?;
        let mut repo = Repository::open(store, &password, self.cache()?)?;
        if !self.put_only_ok {
            repo.require_full_key("this command")?;
        }
        if let Some(wait) = self.global.retry_lock {
            repo.set_lock_wait(wait);
        }
        Ok(repo)
    }

    /// Open the repository. With `create_default`, the default repository
    /// and its password file are created on first use.
    pub fn open(&self, create_default: bool) -> Result<Repository> {
        self.explain_default();
        if let Location::Default {
            repo,
            password_file,
        } = &self.location
            && create_default
            && !repo.join("config").exists()
            && self.global.password_file.is_none()
            && self.global.password_command.is_none()
        {
            create_default_repo(self, repo, password_file)?;
        }
        self.open_store(self.store(false)?)
    }
}

/// Write a random password (24 bytes, hex) into a new file of mode 0600;
/// an existing file is an error, never overwritten.
pub fn generate_password_file(path: &Path) -> Result<Password> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut raw = Zeroizing::new([0u8; 24]);
    getrandom::fill(raw.as_mut()).context("generating a password")?;
    let text = Zeroizing::new(format!("{}\n", hex::encode(raw.as_ref())));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    std::io::Write::write_all(&mut f, text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    read_password_file(path)
}

/// Create the default repository with a random password stored next to it.
fn create_default_repo(ctx: &Context, repo: &Path, password_file: &Path) -> Result<()> {
    if let Some(parent) = password_file.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    if !password_file.exists() {
        generate_password_file(password_file)?;
    }
    let store = ctx.store(true)?;
    let password = read_password_file(password_file)?;
    Repository::init(store, &password, &InitOptions::default(), ctx.cache()?)?;
    ctx.note(&format!(
        "cairn: created the default repository {}",
        repo.display()
    ));
    Ok(())
}
