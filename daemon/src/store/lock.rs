//! One daemon per state file: an advisory lock on `<state>.lock`, held for the store's life.
//!
//! Two daemons funding the same sessions from two copies of the signer state kill them (a signer
//! 400 for one, a 404 for the other), and a rolling deploy starts the second before it stops the
//! first. The lock is the operating system's (`flock` on Unix): it does not survive its holder,
//! however the holder ends (a crash, `kill -9`, a lost host releases nothing else). The file
//! holds the holder's pid, so the refusal names it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

use super::StoreError;

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock beside the state file `state` (`<state>.lock`, mode 0600, never through a
    /// symlink).
    ///
    /// # Errors
    ///
    /// [`StoreError::Locked`] when another process holds it (naming it); [`StoreError::Open`]
    /// when the file cannot be made or locked.
    pub fn take(state: &Path) -> Result<Self, StoreError> {
        let mut name = state.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let open_error = |detail: String| StoreError::Open {
            path: path.clone(),
            detail,
        };
        let mut file = open_private(&path).map_err(|e| open_error(e.to_string()))?;
        match file.try_lock() {
            Ok(()) => {
                let pid = std::process::id();
                let stamp = file
                    .set_len(0)
                    .and_then(|()| file.rewind())
                    .and_then(|()| writeln!(file, "pid {pid}"));
                stamp.map_err(|e| open_error(e.to_string()))?;
                Ok(Self { _file: file, path })
            }
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.take(64).read_to_string(&mut text);
                let holder = text.trim();
                // The holder's own stamp, shown only when it is what this code writes.
                let holder = holder
                    .strip_prefix("pid ")
                    .filter(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
                    .map(|pid| format!("pid {pid}"));
                Err(StoreError::Locked {
                    path: state.to_path_buf(),
                    holder,
                })
            }
            Err(TryLockError::Error(e)) => Err(open_error(e.to_string())),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens (creating) `path` read-write, mode 0600, refusing a symlink.
pub(super) fn open_private(path: &Path) -> std::io::Result<File> {
    refuse_symlink(path)?;
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options.open(path)
}

/// Refuses `path` when it is a symbolic link: permissions changed through one would change its
/// target's (as root, any file's).
pub(super) fn refuse_symlink(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is a symbolic link; give the file itself",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_naming_the_holder_and_the_lock_ends_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("s.db");
        let held = StateLock::take(&state).expect("the first takes it");
        let refused = StateLock::take(&state).expect_err("the second is refused");
        let StoreError::Locked { holder, .. } = &refused else {
            panic!("{refused:?}");
        };
        assert_eq!(
            holder.as_deref(),
            Some(format!("pid {}", std::process::id()).as_str())
        );
        assert!(
            refused
                .to_string()
                .contains("is in use by another livepay daemon"),
            "{refused}"
        );
        drop(held);
        StateLock::take(&state).expect("free once its holder is gone");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_lock_or_state_is_refused_without_touching_its_target() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("target");
        std::fs::write(&target, "precious\n").expect("target");
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let link = dir.path().join("s.db.lock");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = StateLock::take(&dir.path().join("s.db")).expect_err("refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let mode = std::fs::metadata(&target).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "the target's permissions are untouched");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "precious\n");

        // The state file itself, a symlink: refused before its target's mode is touched.
        let state_link = dir.path().join("t.db");
        std::os::unix::fs::symlink(&target, &state_link).expect("symlink");
        let err = crate::store::SqliteStore::open(&state_link).expect_err("refused");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let mode = std::fs::metadata(&target).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o644, "the target's permissions are untouched");
    }
}
