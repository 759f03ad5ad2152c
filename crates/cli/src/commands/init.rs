//! `cairn init`.

use crate::cli::{InitArgs, ObjectLockModeArg};
use crate::context::{Context, Location};
use crate::output;
use anyhow::{Context as _, Result, bail};
use cairn_repository::config::{ObjectLock, ObjectLockMode};
use cairn_repository::{ChunkerConfig, Compression, GearSource, InitOptions, KdfCost, Repository};

fn u32_arg(name: &str, v: u64) -> Result<u32> {
    u32::try_from(v).with_context(|| format!("--{name} {v} is too large"))
}

/// Create a repository.
pub fn run(ctx: &Context, args: &InitArgs) -> Result<u8> {
    let Location::Explicit(loc) = &ctx.location else {
        bail!(
            "give the repository to create with --repo or CAIRN_REPOSITORY (the default repository is created by `cairn backup`)"
        );
    };
    let opts = InitOptions {
        chunker: ChunkerConfig {
            min_size: u32_arg("chunk-min", args.chunk_min)?,
            avg_size: u32_arg("chunk-avg", args.chunk_avg)?,
            max_size: u32_arg("chunk-max", args.chunk_max)?,
            normalization: 1,
            gear: GearSource::Keyed,
        },
        compression: Compression {
            level: args.compression,
            skip_incompressible: true,
        },
        pack_size: u32_arg("pack-size", args.pack_size)?,
        kdf: KdfCost {
            memory_kib: args.kdf_memory_kib,
            iterations: args.kdf_iterations,
            parallelism: 1,
        },
        object_lock: args.object_lock.map(|period| ObjectLock {
            mode: match args.object_lock_mode {
                ObjectLockModeArg::Governance => ObjectLockMode::Governance,
                ObjectLockModeArg::Compliance => ObjectLockMode::Compliance,
            },
            period_secs: period.as_secs(),
        }),
    };
    if let Some(lock) = &opts.object_lock {
        if !loc.starts_with("s3://") {
            bail!("--object-lock is an S3 feature (s3://bucket/prefix), not for {loc}");
        }
        lock.validate()?;
    }
    // Validate everything before asking for a password or touching storage.
    opts.chunker.params()?;
    opts.compression.validate()?;
    opts.kdf.validate()?;
    cairn_repository::RepoConfig::new(opts.chunker, opts.compression, opts.pack_size)?;
    if args.create_bucket {
        if !loc.starts_with("s3://") {
            bail!("--create-bucket is for repositories on S3 (s3://bucket/prefix), not {loc}");
        }
        use cairn_repository::s3::BucketCreated;
        match cairn_repository::s3::create_bucket(
            loc,
            &ctx.s3_options(),
            opts.object_lock.is_some(),
        )
        .map_err(cairn_repository::Error::from)?
        {
            BucketCreated::Created => ctx.say(&format!("created the bucket of {loc}")),
            BucketCreated::Existed => ctx.say(&format!("the bucket of {loc} exists already")),
        }
    }
    let (password, store) = match &args.generate_password_file {
        Some(path) => {
            if ctx.global.password_command.is_some() {
                bail!("--generate-password-file and a password command: give one of them");
            }
            if let Some(other) = &ctx.global.password_file
                && std::path::absolute(other).ok() != std::path::absolute(path).ok()
            {
                bail!(
                    "--generate-password-file {} but the password file is {} (--password-file or CAIRN_PASSWORD_FILE): give one file",
                    path.display(),
                    other.display()
                );
            }
            // Refuse before a password file exists for nothing.
            let store = ctx.store(true)?;
            if store.has_config()? {
                bail!(cairn_repository::Error::AlreadyInitialized(loc.clone()));
            }
            let password = crate::context::generate_password_file(path)?;
            ctx.note(&format!(
                "wrote a random password to {} (mode 0600); keep a copy somewhere safe",
                path.display()
            ));
            (password, store)
        }
        None => {
            let password = ctx.password(true)?;
            (password, ctx.store(true)?)
        }
    };
    let repo = Repository::init(store, &password, &opts, ctx.cache()?)?;
    if ctx.global.json {
        output::json(&serde_json::json!({
            "id": repo.config().id,
            "location": repo.store().location(),
            "object_lock": repo.config().object_lock,
        }))?;
    } else {
        ctx.say(&format!(
            "created cairn repository {} at {}\n\
             Keep the password safe: without it the repository cannot be read.",
            repo.config().id.short(),
            repo.store().location()
        ));
    }
    Ok(crate::exit::OK)
}
