//! The on-disk format version of a node's data directory.
//!
//! A data directory holds the sled database (`meta/`: Raft votes, committed and purged ids,
//! state-machine state, all bincode) and one segment log per group (`control/`,
//! `shards/{group:020}/`). Neither carries a version of its own, so the whole directory is
//! versioned once: the key [`FORMAT_KEY`] in the database's default tree holds
//! [`DATA_FORMAT_VERSION`] as a big-endian u32. [`check_or_init`] runs right after the database
//! is opened and before any segment log is, and refuses a directory written in another format.
//!
//! # Segment files
//!
//! Segment files have no file header, and the frame header (`magic | len | crc | index |
//! timestamp_ms`, see `braid_storage`'s frame module) has no spare byte or flags field. The
//! magic (`BRDF`) or the unused high bits of `len` could tell frames of a later encoding apart,
//! but only to a reader that knows about them: an older reader's recovery takes a frame it
//! cannot parse for a torn tail and cuts it off the last segment (and refuses to open a log
//! where it sits in an earlier segment). So a segment encoding is never detected per file;
//! segment logs are opened only by a node that passed [`check_or_init`], and
//! [`DATA_FORMAT_VERSION`] covers the segment encoding as well as the sled contents. Any change
//! to either (frame layout, file naming, the `purged` file, the bincode of entries or metadata)
//! must bump it.

use std::path::Path;

use anyhow::{bail, Context};

/// The format version this build reads and writes. Bump it on any change to the encoding of the
/// sled contents or of the segment logs (see the module docs).
///
/// - 1: shard entries carry their records as a bincode list of (key, data) pairs.
/// - 2: shard entries carry a `RecordBatch` (count, then chunks of length-prefixed records), so
///   that merged writes, replication and apply move records without re-encoding them.
pub const DATA_FORMAT_VERSION: u32 = 2;

/// Key of the format version in the database's default tree (value: u32 big-endian).
pub const FORMAT_KEY: &[u8] = b"braid/format";

/// Subdirectories of the data directory that hold segment logs.
const SEGMENT_DIRS: [&str; 2] = ["control", "shards"];

/// Checks the format of the data directory `data_dir` whose database `db` was just opened, or
/// marks a fresh one as [`DATA_FORMAT_VERSION`].
///
/// - Fresh (no key in any tree of `db`, and no non-empty segment directory under `data_dir`):
///   writes [`FORMAT_KEY`] and flushes the database.
/// - Holding [`FORMAT_KEY`]: it must be exactly [`DATA_FORMAT_VERSION`].
/// - Holding data but no [`FORMAT_KEY`]: written by a build from before format versioning, an
///   error.
pub fn check_or_init(db: &sled::Db, data_dir: &Path) -> anyhow::Result<()> {
    let dir = data_dir.display();
    let stored = db
        .get(FORMAT_KEY)
        .with_context(|| format!("reading the format version of data directory {dir}"))?;
    if let Some(v) = stored {
        let bytes: [u8; 4] = v.as_ref().try_into().map_err(|_| {
            anyhow::anyhow!(
                "data directory {dir} has a damaged format version ({} bytes under {}, expected \
                 a 4-byte big-endian u32)",
                v.len(),
                String::from_utf8_lossy(FORMAT_KEY)
            )
        })?;
        let found = u32::from_be_bytes(bytes);
        if found != DATA_FORMAT_VERSION {
            bail!(
                "data directory {dir} has on-disk format version {found}; this braid reads \
                 version {DATA_FORMAT_VERSION} (use the braid release that wrote it, or start \
                 with an empty data directory)"
            );
        }
        return Ok(());
    }

    for name in db.tree_names() {
        let tree = db
            .open_tree(&name)
            .with_context(|| format!("opening a tree of the database in {dir}"))?;
        if !tree.is_empty() {
            bail!(
                "data directory {dir} was written by a Braid build from before on-disk format \
                 versioning (its database holds data but no {} key); this braid reads format \
                 version {DATA_FORMAT_VERSION} (use the braid release that wrote it, or start \
                 with an empty data directory)",
                String::from_utf8_lossy(FORMAT_KEY)
            );
        }
    }
    for sub in SEGMENT_DIRS {
        let path = data_dir.join(sub);
        let non_empty = match std::fs::read_dir(&path) {
            Ok(mut entries) => entries.next().is_some(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(e).with_context(|| format!("listing {}", path.display())),
        };
        if non_empty {
            bail!(
                "data directory {dir} holds segment logs ({}) but its database is empty and has \
                 no {} key: it was written by a Braid build from before on-disk format \
                 versioning, or its database was lost; this braid reads format version \
                 {DATA_FORMAT_VERSION} (use the braid release that wrote it, or start with an \
                 empty data directory)",
                path.display(),
                String::from_utf8_lossy(FORMAT_KEY)
            );
        }
    }

    db.insert(FORMAT_KEY, &DATA_FORMAT_VERSION.to_be_bytes())
        .with_context(|| format!("writing the format version of data directory {dir}"))?;
    db.flush()
        .with_context(|| format!("flushing the format version of data directory {dir}"))?;
    tracing::info!(
        data_dir = %dir,
        version = DATA_FORMAT_VERSION,
        "initialised a fresh data directory"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens the test database. A database dropped just before may still hold its file lock
    /// for a moment (sled's flusher thread lets go of it asynchronously; under load the reopen
    /// can come first), so a lock conflict is retried for a while.
    fn open_db(data_dir: &Path) -> sled::Db {
        let mut tries = 0;
        loop {
            match sled::Config::new().path(data_dir.join("meta")).open() {
                Ok(db) => return db,
                Err(sled::Error::Io(e)) if e.to_string().contains("lock") && tries < 200 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                Err(e) => panic!("open sled: {e:?}"),
            }
        }
    }

    #[test]
    fn fresh_dir_is_initialised_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = open_db(dir.path());
            check_or_init(&db, dir.path()).unwrap();
            assert_eq!(
                db.get(FORMAT_KEY).unwrap().as_deref(),
                Some(&DATA_FORMAT_VERSION.to_be_bytes()[..])
            );
            // The node then writes its own data next to the key.
            db.open_tree("raft").unwrap().insert(b"k", b"v").unwrap();
            db.flush().unwrap();
            std::fs::create_dir_all(dir.path().join("control")).unwrap();
            std::fs::write(dir.path().join("control").join("x.seg"), b"x").unwrap();
        }
        let db = open_db(dir.path());
        check_or_init(&db, dir.path()).unwrap();
        check_or_init(&db, dir.path()).unwrap();
        assert_eq!(
            db.get(FORMAT_KEY).unwrap().as_deref(),
            Some(&DATA_FORMAT_VERSION.to_be_bytes()[..])
        );
    }

    #[test]
    fn other_version_is_refused_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let other = DATA_FORMAT_VERSION + 6;
        {
            let db = open_db(dir.path());
            db.insert(FORMAT_KEY, &other.to_be_bytes()).unwrap();
            db.flush().unwrap();
        }
        let db = open_db(dir.path());
        let err = check_or_init(&db, dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&format!("format version {other}")),
            "names the found version: {err}"
        );
        assert!(
            err.contains(&format!("reads version {DATA_FORMAT_VERSION}")),
            "names this build's version: {err}"
        );
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        // Refusing leaves the key alone.
        assert_eq!(
            db.get(FORMAT_KEY).unwrap().as_deref(),
            Some(&other.to_be_bytes()[..])
        );
    }

    #[test]
    fn damaged_version_value_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = open_db(dir.path());
        db.insert(FORMAT_KEY, &[0u8, 1]).unwrap();
        let err = check_or_init(&db, dir.path()).unwrap_err().to_string();
        assert!(err.contains("damaged format version"), "{err}");
    }

    #[test]
    fn data_without_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            // What a build from before format versioning leaves: Raft metadata, no key.
            let db = open_db(dir.path());
            db.open_tree("raft")
                .unwrap()
                .insert(b"control/00000000000000000000/vote", b"v")
                .unwrap();
            db.flush().unwrap();
        }
        let db = open_db(dir.path());
        let err = check_or_init(&db, dir.path()).unwrap_err().to_string();
        assert!(err.contains("before on-disk format versioning"), "{err}");
        assert!(db.get(FORMAT_KEY).unwrap().is_none(), "nothing written");
    }

    #[test]
    fn segment_logs_without_database_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let group = dir.path().join("shards").join(format!("{:020}", 7));
        std::fs::create_dir_all(&group).unwrap();
        std::fs::write(group.join(format!("{:020}.seg", 1)), b"BRDF").unwrap();
        let db = open_db(dir.path());
        let err = check_or_init(&db, dir.path()).unwrap_err().to_string();
        assert!(err.contains("before on-disk format versioning"), "{err}");
        assert!(db.get(FORMAT_KEY).unwrap().is_none(), "nothing written");
    }

    #[test]
    fn empty_segment_directories_count_as_fresh() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("control")).unwrap();
        std::fs::create_dir_all(dir.path().join("shards")).unwrap();
        let db = open_db(dir.path());
        check_or_init(&db, dir.path()).unwrap();
        assert!(db.get(FORMAT_KEY).unwrap().is_some());
    }
}
