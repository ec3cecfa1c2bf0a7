//! Reading processes from /proc (the root is a parameter, so fixtures can stand in):
//! state, parent and name of a pid, its start time, and the tree below a pid.

use super::stat::PidStat;
use std::fs;
use std::path::Path;

/// What /proc/<pid>/stat says about a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i32,
    /// The command name (as `comm`, at most 15 bytes).
    pub name: String,
    /// One-letter state: R, S, D, T (stopped), t (traced), Z (zombie), ...
    pub state: char,
    pub ppid: i32,
    /// Its session (0 when the line does not say).
    pub session: i32,
    /// The kernel is tearing it down (PF_EXITING): it is dying, not escaping.
    pub exiting: bool,
}

impl ProcInfo {
    pub fn is_stopped(&self) -> bool {
        self.state == 'T' || self.state == 't'
    }
}

impl ProcInfo {
    /// From the text of /proc/<pid>/stat; None when it has no pid, name, state or parent.
    pub fn parse(text: &str) -> Option<ProcInfo> {
        let s = PidStat::parse(text)?;
        Some(ProcInfo {
            pid: s.pid,
            name: s.comm.to_string(),
            state: s.state,
            ppid: s.ppid()?,
            session: s.session().unwrap_or(0),
            exiting: s.exiting(),
        })
    }
}

/// One process, or None if it is gone.
pub fn read(proc_root: &Path, pid: i32) -> Option<ProcInfo> {
    ProcInfo::parse(&fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?)
}

/// A process's start time in clock ticks since boot (field 22 of its stat), or None if
/// it does not exist.
pub fn start_time(proc_root: &Path, pid: u32) -> Option<u64> {
    let text = fs::read_to_string(proc_root.join(pid.to_string()).join("stat")).ok()?;
    PidStat::parse(&text)?.start_time()
}

/// Every process under `proc_root`.
pub fn all(proc_root: &Path) -> Vec<ProcInfo> {
    let Ok(entries) = fs::read_dir(proc_root) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| read(proc_root, pid))
        .collect()
}

/// `root` and all its descendants (by parent pid), from one snapshot of `procs`.
pub fn tree(procs: &[ProcInfo], root: i32) -> Vec<i32> {
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(
            procs
                .iter()
                .filter(|p| p.ppid == parent && p.pid != root)
                .map(|p| p.pid),
        );
        i += 1;
    }
    out
}

/// The command line of a process, for reports ("" if gone).
pub fn cmdline(proc_root: &Path, pid: i32) -> String {
    fs::read(proc_root.join(pid.to_string()).join("cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .split('\0')
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let p = ProcInfo::parse("42 (my (odd) name) T 7 42 42 0 -1 4194560 0 0").unwrap();
        assert!(!p.exiting);
        assert!(
            ProcInfo::parse("43 (x) R 7 42 42 0 -1 4194564 0 0")
                .unwrap()
                .exiting
        );
        assert_eq!(p.pid, 42);
        assert_eq!(p.name, "my (odd) name");
        assert!(p.is_stopped());
        assert_eq!(p.ppid, 7);
        assert!(ProcInfo::parse("garbage").is_none());
    }

    #[test]
    fn tree_follows_parents_from_a_fixture_proc() {
        let dir = std::env::temp_dir().join(format!("tb-proc-{}", std::process::id()));
        for (pid, name, state, ppid) in [
            (1, "init", 'S', 0),
            (10, "sh", 'S', 1),
            (11, "rkhunter", 'S', 10),
            (12, "sed", 'T', 11),
            (20, "other", 'R', 1),
            (13, "sh", 'S', 11),
        ] {
            let d = dir.join(pid.to_string());
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("stat"), format!("{pid} ({name}) {state} {ppid} 0 0")).unwrap();
            fs::write(d.join("cmdline"), format!("{name}\0--x\0")).unwrap();
        }
        fs::create_dir_all(dir.join("self")).unwrap();
        let procs = all(&dir);
        assert_eq!(procs.len(), 6);
        let mut t = tree(&procs, 10);
        t.sort();
        assert_eq!(t, vec![10, 11, 12, 13]);
        assert_eq!(read(&dir, 12).unwrap().state, 'T');
        assert_eq!(cmdline(&dir, 12), "sed --x");
        assert_eq!(read(&dir, 99), None);
        fs::remove_dir_all(&dir).unwrap();
    }
}
