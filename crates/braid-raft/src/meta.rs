//! Small, hot Raft metadata in the node's sled database: one key space per group.
//!
//! Keys are `kind/group/name`. The vote is flushed before `save_vote` returns; the committed
//! log id and the state-machine state are written without a flush (losing them only makes the
//! node re-apply committed entries, which is deterministic).

use std::io;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec;

#[derive(Clone)]
pub struct MetaStore {
    db: sled::Db,
    tree: sled::Tree,
    prefix: Vec<u8>,
}

/// Any error as an `io::Error` (openraft's storage traits speak `io::Error`).
pub(crate) fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl MetaStore {
    pub fn new(db: &sled::Db, kind: &str, group: u64) -> io::Result<MetaStore> {
        let tree = db.open_tree("raft").map_err(io_err)?;
        let prefix = format!("{kind}/{group:020}/").into_bytes();
        Ok(MetaStore {
            db: db.clone(),
            tree,
            prefix,
        })
    }

    fn key(&self, name: &str) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.extend_from_slice(name.as_bytes());
        k
    }

    pub fn get<T: DeserializeOwned>(&self, name: &str) -> io::Result<Option<T>> {
        match self.tree.get(self.key(name)).map_err(io_err)? {
            None => Ok(None),
            Some(v) => codec::decode(&v).map(Some).map_err(io_err),
        }
    }

    pub fn put<T: Serialize>(&self, name: &str, v: &T) -> io::Result<()> {
        self.tree
            .insert(self.key(name), codec::encode(v))
            .map_err(io_err)?;
        Ok(())
    }

    /// Makes every write so far durable (one sled flush covers all trees and groups).
    ///
    /// Runs on tokio's blocking pool: sled's own `flush_async` may run the flush inline on the
    /// calling thread when its pool is busy, which would stall a runtime worker (and with it
    /// every Raft group on the node) for the length of an fsync.
    pub async fn flush(&self) -> io::Result<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(io_err)?
            .map_err(io_err)?;
        Ok(())
    }

    /// Removes every key of this group (when the group is deleted from this node).
    pub fn clear(&self) -> io::Result<()> {
        for k in self.tree.scan_prefix(&self.prefix).keys() {
            self.tree.remove(k.map_err(io_err)?).map_err(io_err)?;
        }
        Ok(())
    }
}
