//! Child processes in their own process group, with output to a log file, deadlines,
//! cancellation, a registry of live groups so that a later start can sweep orphans, and the
//! built-in measurements of each: wall-clock time from spawn to exit, and the CPU time and peak
//! memory `wait4` reports.
//!
//! `wait4` returns the resource usage of the child (`sh -c COMMAND`) together with that of every
//! descendant it (or a descendant) waited for: a shell waits for its foreground commands, so a
//! command's whole tree is counted. Not counted: a process that outlives the command or is never
//! waited for (a daemon that double-forks, a `&` job the shell does not `wait` for) — it is
//! killed with the group when the attempt ends. `ru_maxrss` is the largest resident set of any
//! one process of the counted tree, not their sum.

use std::fs::{self, File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use perfarena_core::builtin::{Usage, kib_to_mib};

use crate::{BackendError, CancelToken};

/// A shell command running in its own process group.
pub struct GroupChild {
    /// The leader's pid, which is also the group's id. The leader is reaped by
    /// [`GroupChild::reap`] (`wait4`, for the resource usage), never through `Child`.
    pgid: i32,
    registry_entry: Option<PathBuf>,
    spawned_at: Instant,
    /// A pidfd of the leader (Linux ≥ 5.3), to wake the moment it exits instead of polling.
    pidfd: Option<OwnedFd>,
    exited: Option<Exited>,
}

/// The leader's end, as `wait4` told it.
#[derive(Debug, Clone, Copy)]
struct Exited {
    status: ExitStatus,
    usage: Usage,
}

/// How waiting for a child ended.
#[derive(Debug)]
pub enum WaitResult {
    Exited(ExitStatus),
    TimedOut,
    Cancelled,
}

impl GroupChild {
    /// Starts `sh -c command` in `dir`, appending stdout and stderr to `log`, in a new process
    /// group recorded under `registry` (if given) with perfarena's pid and the run id.
    pub fn spawn(
        command: &str,
        dir: &Path,
        env: &[(String, String)],
        log: &Path,
        registry: Option<(&Path, &str)>,
    ) -> Result<GroupChild, BackendError> {
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| BackendError::io(format!("cannot open log {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| BackendError::io(format!("log {}", log.display()), e))?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        cmd.env("PYTHONUNBUFFERED", "1");
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd.process_group(0);
        let spawned_at = Instant::now();
        let child = cmd.spawn().map_err(|e| {
            BackendError::io(format!("cannot start `{command}` in {}", dir.display()), e)
        })?;
        let pgid = child.id() as i32;
        // `Child` neither waits nor kills when dropped: the group is ours to manage from here.
        drop(child);
        let mut group = GroupChild {
            pgid,
            registry_entry: None,
            spawned_at,
            pidfd: pidfd_open(pgid),
            exited: None,
        };
        // On an error the group is dropped, which kills it.
        if let Some((dir, run_id)) = registry {
            group.registry_entry = Some(register(dir, pgid, run_id)?);
        }
        Ok(group)
    }

    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    /// Whether the process has exited (without blocking).
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.reap(false)
    }

    /// What the leader and the descendants it waited for used, from spawn to exit; `None`
    /// while it runs. See the module's comment for what is counted.
    pub fn usage(&self) -> Option<Usage> {
        self.exited.map(|e| e.usage)
    }

    /// Reaps the leader with `wait4` (blocking or not), keeping its status and resource usage.
    fn reap(&mut self, block: bool) -> Option<ExitStatus> {
        if let Some(exited) = self.exited {
            return Some(exited.status);
        }
        let mut status: libc::c_int = 0;
        // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
        let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = if block { 0 } else { libc::WNOHANG };
        loop {
            // SAFETY: wait4 writes only into the two locals it is given.
            let pid = unsafe { libc::wait4(self.pgid, &mut status, flags, &mut rusage) };
            let wall_s = self.spawned_at.elapsed().as_secs_f64();
            if pid == self.pgid {
                let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1_000_000.0;
                self.exited = Some(Exited {
                    status: ExitStatus::from_raw(status),
                    usage: Usage {
                        wall_s,
                        user_s: Some(seconds(rusage.ru_utime)),
                        sys_s: Some(seconds(rusage.ru_stime)),
                        max_rss_mb: Some(kib_to_mib(rusage.ru_maxrss.max(0) as u64)),
                    },
                });
                self.pidfd = None;
                return Some(ExitStatus::from_raw(status));
            }
            if pid == 0 {
                return None;
            }
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                // Not our child any more (nothing else here waits for it): gone, status
                // unknown; said as exit code 255 with only the wall-clock time.
                _ => {
                    self.exited = Some(Exited {
                        status: ExitStatus::from_raw(255 << 8),
                        usage: Usage {
                            wall_s,
                            ..Usage::default()
                        },
                    });
                    self.pidfd = None;
                    return self.exited.map(|e| e.status);
                }
            }
        }
    }

    /// Sleeps up to `timeout`, waking as soon as the leader exits (with a pidfd; without one,
    /// the whole timeout).
    fn sleep_unless_exited(&self, timeout: Duration) {
        match &self.pidfd {
            Some(fd) => {
                let mut poll = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
                // SAFETY: one valid pollfd; an error (EINTR) only ends the sleep early.
                unsafe {
                    libc::poll(&mut poll, 1, millis.max(1));
                }
            }
            None => std::thread::sleep(timeout),
        }
    }

    /// Waits until the process exits, `deadline` passes or `cancel` is set.
    pub fn wait_until(&mut self, deadline: Instant, cancel: &CancelToken) -> WaitResult {
        loop {
            if let Some(status) = self.try_wait() {
                return WaitResult::Exited(status);
            }
            if cancel.is_cancelled() {
                return WaitResult::Cancelled;
            }
            let now = Instant::now();
            if now >= deadline {
                return WaitResult::TimedOut;
            }
            self.sleep_unless_exited((deadline - now).min(Duration::from_millis(25)));
        }
    }

    /// SIGTERM to the whole group, then SIGKILL after `grace`; always reaps the leader.
    pub fn kill_group(&mut self, grace: Duration) {
        if self.try_wait().is_none() || group_alive(self.pgid) {
            signal_group(self.pgid, libc::SIGTERM);
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline {
                let leader_done = self.try_wait().is_some();
                if leader_done && !group_alive(self.pgid) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if group_alive(self.pgid) {
                signal_group(self.pgid, libc::SIGKILL);
                // SIGKILL is delivered asynchronously: wait (briefly) until the group is gone,
                // so that callers can rely on nothing of it running once this returns.
                let deadline = Instant::now() + Duration::from_secs(5);
                while group_alive(self.pgid) && Instant::now() < deadline {
                    let _ = self.try_wait();
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        let _ = self.reap(true);
        if let Some(entry) = self.registry_entry.take() {
            let _ = fs::remove_file(entry);
        }
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        // Never leave a group behind, whatever path dropped us.
        if self.try_wait().is_none() || group_alive(self.pgid) {
            signal_group(self.pgid, libc::SIGKILL);
            let _ = self.reap(true);
        }
        if let Some(entry) = self.registry_entry.take() {
            let _ = fs::remove_file(entry);
        }
    }
}

/// A pidfd for `pid` (readable once it exits), or `None` where the kernel has none.
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a non-negative result is a descriptor that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is shared.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Whether any live (non-zombie) process belongs to the group. `kill(-pgid, 0)` alone also
/// counts zombies that nobody reaped (PID 1 in a container may not), so /proc is read instead.
pub fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    if unsafe { libc::kill(-pgid, 0) } != 0 {
        return false;
    }
    let Ok(entries) = fs::read_dir("/proc") else {
        return true;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name: state ppid pgrp ...
        let Some(rest) = stat.rsplit(')').next() else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let pgrp: i32 = fields.nth(1).and_then(|f| f.parse().ok()).unwrap_or(0);
        if pgrp == pgid && state != "Z" && state != "X" {
            return true;
        }
    }
    false
}

/// Whether a process with this pid exists (and is not a zombie).
pub fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .map(|rest| !rest.trim_start().starts_with('Z'))
            .unwrap_or(true),
        Err(_) => true,
    }
}

/// Records a live process group: `<registry>/<pgid>` holding `<perfarena pid> <run id>`.
fn register(registry: &Path, pgid: i32, run_id: &str) -> Result<PathBuf, BackendError> {
    crate::create_dir(registry)?;
    let entry = registry.join(pgid.to_string());
    fs::write(&entry, format!("{} {}\n", std::process::id(), run_id))
        .map_err(|e| BackendError::io(format!("cannot write {}", entry.display()), e))?;
    Ok(entry)
}

/// Kills the process groups in `registry` whose perfarena process is gone (and whose run is
/// not in `live_runs`); returns how many groups were killed.
pub fn sweep_registry(registry: &Path, live_runs: &[String]) -> usize {
    let Ok(entries) = fs::read_dir(registry) else {
        return 0;
    };
    let mut killed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(pgid) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let text = fs::read_to_string(&path).unwrap_or_default();
        let mut words = text.split_whitespace();
        let owner: i32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
        let run_id = words.next().unwrap_or("");
        if owner == std::process::id() as i32
            || (owner > 0 && pid_alive(owner))
            || live_runs.iter().any(|r| r == run_id)
        {
            continue;
        }
        if group_alive(pgid) {
            signal_group(pgid, libc::SIGKILL);
            killed += 1;
        }
        let _ = fs::remove_file(&path);
    }
    killed
}

/// The last `n` non-empty lines of a log file (for error messages).
pub fn tail_lines(path: &Path, n: usize) -> String {
    let text = match File::open(path) {
        Ok(_) => fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
        Err(_) => return String::new(),
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_logs_and_exits() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let mut child = GroupChild::spawn(
            "echo hello; echo oops >&2; exit 3",
            dir.path(),
            &[],
            &log,
            None,
        )
        .unwrap();
        let result = child.wait_until(
            Instant::now() + Duration::from_secs(10),
            &CancelToken::new(),
        );
        assert!(matches!(result, WaitResult::Exited(s) if s.code() == Some(3)));
        let text = fs::read_to_string(&log).unwrap();
        assert!(text.contains("hello") && text.contains("oops"));
    }

    /// A process tree that sleeps 0.4 s, then burns 0.5 s of CPU and touches 200 MiB, two
    /// levels below the measured shell: wait4 counts the grandchild's CPU and its peak memory.
    #[test]
    fn usage_counts_the_waited_for_tree() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("load.py");
        fs::write(
            &script,
            "import time\ntime.sleep(0.4)\nt = time.process_time()\nwhile time.process_time() - t < 0.5:\n    for _ in range(20000):\n        pass\nx = b'a' * (200 << 20)\n",
        )
        .unwrap();
        let started = Instant::now();
        let mut child = GroupChild::spawn(
            "sh -c 'python3 load.py'; echo done",
            dir.path(),
            &[],
            &dir.path().join("log"),
            None,
        )
        .unwrap();
        assert!(
            child.usage().is_none(),
            "nothing is measured before the exit"
        );
        let waited = child.wait_until(
            Instant::now() + Duration::from_secs(60),
            &CancelToken::new(),
        );
        let outside = started.elapsed().as_secs_f64();
        assert!(matches!(waited, WaitResult::Exited(s) if s.success()));
        let usage = child.usage().unwrap();
        // Wall: at least the sleep and the burn, and never more than what the test saw.
        assert!(
            usage.wall_s >= 0.9 && usage.wall_s <= outside,
            "{usage:?} / {outside}"
        );
        let user = usage.user_s.unwrap();
        let sys = usage.sys_s.unwrap();
        assert!(user >= 0.4, "{usage:?}");
        assert!(user + sys >= 0.5 && user + sys < 1.0, "{usage:?}");
        let rss = usage.max_rss_mb.unwrap();
        assert!((200.0..260.0).contains(&rss), "{usage:?}");
        child.kill_group(Duration::from_millis(100));
        assert_eq!(child.usage(), Some(usage), "kept after the teardown");
    }

    /// The exit is seen as it happens (pidfd), not at the next poll: a command of a few
    /// milliseconds measures a few milliseconds.
    #[test]
    fn a_short_command_measures_short() {
        let dir = tempfile::tempdir().unwrap();
        let mut walls = Vec::new();
        for _ in 0..5 {
            let mut child =
                GroupChild::spawn("true", dir.path(), &[], &dir.path().join("log"), None).unwrap();
            let _ = child.wait_until(
                Instant::now() + Duration::from_secs(10),
                &CancelToken::new(),
            );
            walls.push(child.usage().unwrap().wall_s);
        }
        walls.sort_by(f64::total_cmp);
        assert!(walls[0] < 0.02, "{walls:?}");
    }

    #[test]
    fn kills_the_whole_group_even_when_sigterm_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        let registry = dir.path().join("pids");
        let mut child = GroupChild::spawn(
            "trap '' TERM; sleep 30 & sleep 30; wait",
            dir.path(),
            &[],
            &log,
            Some((&registry, "r1")),
        )
        .unwrap();
        let pgid = child.pgid();
        assert!(registry.join(pgid.to_string()).exists());
        let result = child.wait_until(
            Instant::now() + Duration::from_millis(200),
            &CancelToken::new(),
        );
        assert!(matches!(result, WaitResult::TimedOut));
        child.kill_group(Duration::from_millis(300));
        assert!(!group_alive(pgid));
        assert!(!registry.join(pgid.to_string()).exists());
    }

    #[test]
    fn cancellation_is_seen_while_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let mut child =
            GroupChild::spawn("sleep 30", dir.path(), &[], &dir.path().join("l"), None).unwrap();
        let cancel = CancelToken::new();
        cancel.cancel();
        assert!(matches!(
            child.wait_until(Instant::now() + Duration::from_secs(30), &cancel),
            WaitResult::Cancelled
        ));
        child.kill_group(Duration::from_millis(100));
    }

    #[test]
    fn sweep_kills_groups_of_dead_owners_only() {
        let dir = tempfile::tempdir().unwrap();
        let registry = dir.path().join("pids");
        fs::create_dir_all(&registry).unwrap();
        // An orphan: a group whose recorded owner pid does not exist.
        let orphan = Command::new("sh")
            .arg("-c")
            .arg("sleep 30")
            .process_group(0)
            .spawn()
            .unwrap();
        let orphan_pgid = orphan.id() as i32;
        fs::write(
            registry.join(orphan_pgid.to_string()),
            "999999999 old-run\n",
        )
        .unwrap();
        // A group owned by a live process (ourselves).
        let mine = GroupChild::spawn(
            "sleep 30",
            dir.path(),
            &[],
            &dir.path().join("l"),
            Some((&registry, "r2")),
        )
        .unwrap();
        assert_eq!(sweep_registry(&registry, &[]), 1);
        std::thread::sleep(Duration::from_millis(100));
        let mut orphan = orphan;
        let _ = orphan.wait();
        assert!(!group_alive(orphan_pgid));
        assert!(group_alive(mine.pgid()));
        drop(mine);
    }
}
