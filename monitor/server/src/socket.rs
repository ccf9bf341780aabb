//! The daemon's Unix socket: bound owner-only from the first instant, replacing a stale socket that a killed daemon
//! left (never a live one), and removed when the daemon stops.

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// A bound socket and its path; dropping it removes the socket file if it is still this one.
#[derive(Debug)]
pub struct UnixSocket {
    pub(crate) listener: Option<UnixListener>,
    path: PathBuf,
    inode: u64,
}

impl UnixSocket {
    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        // Only our own socket: a newer daemon may have replaced it after we were declared dead.
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Binds the socket at `path`, readable and writable by its owner only.
///
/// The socket is bound under a temporary name in the same directory, given mode 0600, and renamed into place, so
/// there is no moment where another user could connect. A socket already at `path` is replaced when nothing
/// answers on it (a daemon that was killed); one that answers is an error of kind `AddrInUse` (the caller holds the
/// store's lock, so this means a daemon of an older htsr or a foreign process).
pub fn bind_unix(path: &Path) -> io::Result<UnixSocket> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if dir == htsr_api::local::runtime_dir() {
        private_dir(dir)?;
    }
    if path.exists() {
        // Refused (a dead daemon's socket) or not a socket at all: it is replaced by the rename below.
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{}: another process is listening there", path.display()),
            ));
        }
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "htsr.sock".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let inode = std::fs::symlink_metadata(path)?.ino();
    listener.set_nonblocking(true)?;
    Ok(UnixSocket {
        listener: Some(listener),
        path: path.to_path_buf(),
        inode,
    })
}

/// Creates `dir` with mode 0700, or checks that an existing one is this user's and closed to others.
fn private_dir(dir: &Path) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let m = std::fs::symlink_metadata(dir)?;
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    if !m.is_dir() || m.uid() != uid || m.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a private directory of this user (owner {}, mode {:o}): refusing to put the socket there",
                dir.display(),
                m.uid(),
                m.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_is_owner_only_replaces_a_dead_one_and_refuses_a_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".htsr.sock");
        // A dead daemon's socket: bound, then its listener dropped without removing the file.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let sock = bind_unix(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Nothing but the socket is left in the directory (no temporary name).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let e = bind_unix(&path).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        drop(sock);
        assert!(!path.exists(), "removed on drop");
    }

    #[test]
    fn a_socket_that_was_replaced_is_not_removed_by_its_old_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let old = bind_unix(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let new = bind_unix(&path).unwrap();
        drop(old);
        assert!(path.exists(), "the new socket stays");
        drop(new);
        assert!(!path.exists());
    }
}
