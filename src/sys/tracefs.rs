//! tracefs: where tracepoints, kprobe_events and ftrace's function lists
//! live. A fresh system often has it unmounted; netprof then mounts it
//! where the kernel expects it, as perf does through libtraceevent.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const MOUNT_POINT: &str = "/sys/kernel/tracing";
const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

#[derive(Clone, Debug)]
pub struct Tracefs {
    root: PathBuf,
}

impl Tracefs {
    /// tracefs where it is already mounted, without mounting it.
    pub fn mounted() -> Option<Tracefs> {
        CANDIDATES
            .iter()
            .map(Path::new)
            .find(|p| p.join("events").is_dir())
            .map(|p| Tracefs {
                root: p.to_path_buf(),
            })
    }

    /// tracefs, mounting it if nothing has yet.
    pub fn get() -> Result<Tracefs> {
        if let Some(t) = Tracefs::mounted() {
            return Ok(t);
        }
        if let Err(e) = std::fs::read_dir(MOUNT_POINT) {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                return Err(Error::no_permission(format!(
                    "no permission to read tracefs ({MOUNT_POINT}); run as root"
                )));
            }
        }
        let mounted = rustix::mount::mount(
            "tracefs",
            MOUNT_POINT,
            "tracefs",
            rustix::mount::MountFlags::empty(),
            None,
        );
        let e = match mounted {
            Ok(()) => None,
            Err(e) => Some(std::io::Error::from_raw_os_error(e.raw_os_error())),
        };
        match (Tracefs::mounted(), e) {
            (Some(t), None) => Ok(t),
            (_, e) => {
                let e = e.unwrap_or_else(|| std::io::Error::from_raw_os_error(libc::ENODEV));
                Err(Error::new(
                    crate::error::ErrorKind::of_io(&e),
                    format!(
                        "tracefs is not mounted and could not be mounted ({e}); run as root or \
                         `mount -t tracefs nodev {MOUNT_POINT}`"
                    ),
                ))
            }
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of all tracepoints: `events/SYSTEM/EVENT/{id,format}`.
    pub fn events(&self) -> PathBuf {
        self.root.join("events")
    }

    /// A file at the top of tracefs (kprobe_events, error_log, ...).
    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// A top-level file's content, if readable.
    pub fn read(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.file(name)).ok()
    }

    /// The names of the subdirectories of `dir` (subsystems, events).
    pub fn subdirectories(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}
