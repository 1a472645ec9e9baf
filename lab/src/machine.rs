//! Facts about the machine a benchmark ran on, recorded beside its figures.

use serde::Serialize;

/// The machine description embedded in every benchmark's JSON.
#[derive(Debug, Serialize)]
pub struct Machine {
    /// CPU model name from /proc/cpuinfo.
    pub cpu: String,
    /// Online logical CPUs.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// `uname -m`.
    pub arch: &'static str,
}

impl Machine {
    /// Reads the current machine's description.
    pub fn current() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                matches!(key.trim(), "model name" | "Model" | "CPU part")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned());
        Machine {
            cpu,
            cores: online_cpus(),
            kernel,
            arch: std::env::consts::ARCH,
        }
    }
}

/// Online CPUs of the machine (not of this thread's affinity mask, which pinning narrows).
fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1).max(1)
}
