//! `cairn init`.

use crate::cli::InitArgs;
use crate::context::{Context, Location};
use crate::output;
use anyhow::{Context as _, Result, bail};
use cairn_repository::{ChunkerConfig, Compression, GearSource, InitOptions, KdfCost, Repository};

fn u32_arg(name: &str, v: u64) -> Result<u32> {
    u32::try_from(v).with_context(|| format!("--{name} {v} is too large"))
}

/// Create a repository.
pub fn run(ctx: &Context, args: &InitArgs) -> Result<u8> {
    if let Location::Default { .. } = ctx.location {
        bail!(
            "give the repository to create with --repo or CAIRN_REPOSITORY (the default repository is created by `cairn backup`)"
        );
    }
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
    };
    // Validate everything before asking for a password or touching storage.
    opts.chunker.params()?;
    opts.compression.validate()?;
    opts.kdf.validate()?;
    cairn_repository::RepoConfig::new(opts.chunker, opts.compression, opts.pack_size)?;
    let password = ctx.password(true)?;
    let store = ctx.store(true)?;
    let repo = Repository::init(store, &password, &opts, ctx.cache()?)?;
    if ctx.global.json {
        output::json(&serde_json::json!({
            "id": repo.config().id,
            "location": repo.store().location(),
        }))?;
    } else {
        ctx.note(&format!(
            "created cairn repository {} at {}\n\
             Keep the password safe: without it the repository cannot be read.",
            repo.config().id.short(),
            repo.store().location()
        ));
    }
    Ok(crate::exit::OK)
}
