//! `cairn cat KIND [ID]`: decrypted repository objects as JSON (blobs as
//! raw bytes), for debugging. Key files are shown without their salt and
//! wrapped key.

use crate::cli::CatArgs;
use crate::context::Context;
use crate::output;
use anyhow::{Context as _, Result, bail};
use cairn_repository::index::IndexFile;
use cairn_repository::{
    BlobKind, IndexId, Node, NodeData, ObjectKind, PackId, Repository, Snapshot, SnapshotId, TreeId,
};
use serde_json::{Value, json};
use std::io::Write;

fn node_json(n: &Node) -> Value {
    let name = match std::str::from_utf8(&n.name) {
        Ok(s) => json!(s),
        Err(_) => json!({ "hex": hex::encode(&n.name) }),
    };
    let mut v = json!({
        "name": name, "type": n.data.kind_name(), "mode": format!("{:o}", n.meta.mode),
        "uid": n.meta.uid, "gid": n.meta.gid, "size": n.meta.size,
        "mtime": [n.meta.mtime.sec, n.meta.mtime.nsec], "ctime": [n.meta.ctime.sec, n.meta.ctime.nsec],
        "inode": n.meta.inode, "device": n.meta.device,
    });
    match &n.data {
        NodeData::File { chunks } => v["chunks"] = json!(chunks),
        NodeData::Dir { subtree } => v["subtree"] = json!(subtree),
        NodeData::Symlink { target } | NodeData::Hardlink { target } => {
            v["target"] = json!(String::from_utf8_lossy(target))
        }
        _ => {}
    }
    v
}

fn full_id(repo: &Repository, kind: ObjectKind, prefix: &str) -> Result<String> {
    let p = prefix.to_ascii_lowercase();
    let matches: Vec<String> = repo
        .store()
        .list(kind)?
        .objects
        .into_iter()
        .map(|o| o.name)
        .filter(|n| n.starts_with(&p))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("no {} {prefix}", kind.noun()),
        _ => bail!("{} prefix {prefix} is ambiguous", kind.noun()),
    }
}

/// Print one object.
pub fn run(ctx: &Context, args: &CatArgs) -> Result<u8> {
    let repo = ctx.open(false)?;
    let need_id = || args.id.clone().context("this kind needs an id");
    let value = match args.kind.as_str() {
        "config" => serde_json::to_value(repo.config())?,
        "snapshot" => {
            let (id, snap): (SnapshotId, Snapshot) =
                repo.find_snapshot(&need_id()?, None, &|_| true)?;
            json!({ "id": id, "snapshot": snap })
        }
        "index" => {
            let name = full_id(&repo, ObjectKind::Index, &need_id()?)?;
            let id = IndexId::from_hex(&name)?;
            let bytes = repo.store().get(ObjectKind::Index, &name)?;
            let index = IndexFile::open(repo.keys(), &id, &bytes)?;
            let packs: Vec<Value> = index
                .packs
                .iter()
                .map(|p| {
                    json!({
                        "id": p.id, "size": p.size,
                        "blobs": p.blobs.iter().map(|b| json!({
                            "type": b.kind, "id": hex::encode(b.id), "offset": b.offset,
                            "length": b.length, "raw_length": b.raw_length,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({ "id": id, "packs": packs })
        }
        "pack" => {
            let name = full_id(&repo, ObjectKind::Pack, &need_id()?)?;
            let id = PackId::from_hex(&name)?;
            let size = repo.store().head(ObjectKind::Pack, &name)?.unwrap_or(0);
            let entries =
                cairn_repository::objects::read_pack_header(repo.store(), repo.keys(), &id, size)?;
            json!({ "id": id, "size": size, "blobs": entries.iter().map(|b| json!({
                "type": b.kind, "id": hex::encode(b.id), "offset": b.offset,
                "length": b.length, "raw_length": b.raw_length,
            })).collect::<Vec<_>>() })
        }
        "tree" => {
            let id = TreeId::from_hex(&need_id()?)?;
            let tree = repo.load_tree(&id)?;
            json!({ "id": id, "nodes": tree.nodes.iter().map(node_json).collect::<Vec<_>>() })
        }
        "blob" => {
            let raw = hex::decode(need_id()?).context("blob ids are 64 hex digits")?;
            let id: [u8; 32] = raw.try_into().ok().context("blob ids are 64 hex digits")?;
            let data = repo.read_blob_raw(BlobKind::Data, &id)?;
            match std::io::stdout().write_all(&data) {
                // A reader that went away (`| head -c 10`): quietly.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
                other => other?,
            }
            return Ok(crate::exit::OK);
        }
        "key" => {
            let name = full_id(&repo, ObjectKind::Key, &need_id()?)?;
            let kf = repo
                .list_keys()?
                .into_iter()
                .find(|(id, _)| id.to_hex() == name)
                .map(|(_, kf)| kf)
                .context("key vanished")?;
            match kf {
                Ok(kf) => json!({
                    "id": name, "version": kf.version, "created": kf.created, "host": kf.host,
                    "username": kf.username, "kdf": kf.kdf, "cost": kf.cost,
                }),
                Err(e) => bail!("key {name}: {e}"),
            }
        }
        "lock" => {
            let name = full_id(&repo, ObjectKind::Lock, &need_id()?)?;
            let locks = cairn_repository::lock::list_locks(repo.store(), repo.keys())?;
            match locks.into_iter().find(|(id, _)| id.to_hex() == name) {
                Some((id, Ok(info))) => json!({ "id": id, "lock": info }),
                Some((_, Err(e))) => bail!("lock {name}: {e}"),
                None => bail!("lock {name} vanished"),
            }
        }
        other => {
            bail!("unknown kind {other:?}: config, key, snapshot, index, pack, tree, blob or lock")
        }
    };
    output::json(&value)?;
    Ok(crate::exit::OK)
}
