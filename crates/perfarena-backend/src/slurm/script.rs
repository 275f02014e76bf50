//! Batch scripts for the `slurm` backend: the `#SBATCH` header from the suite's `[slurm]` table,
//! the attempt script (server, readiness, client, teardown, status file) and the image-build
//! script (one build, or a job array of builds).
//!
//! Everything here is a pure function from settings to text, so the scripts for launchers and
//! hardware that cannot run here (GPUs, pyxis, apptainer) are snapshot-tested. The scripts need
//! only a POSIX shell on the node, and curl, python3 or wget for an HTTP readiness probe.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use perfarena_core::suite::{ReadinessKind, SlurmLauncher, SlurmSection};

/// Quotes `text` as one word for a POSIX shell (plain words stay bare).
pub use perfarena_core::template::shell_word as sh_quote;

/// An image ref as pyxis (enroot) wants it: `registry#repo:tag` when the first component names a
/// registry; paths to squashfs files stay as they are.
pub fn pyxis_image(image: &str) -> String {
    if image.starts_with('/') || image.starts_with("./") || image.contains('#') {
        return image.to_string();
    }
    match image.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            format!("{first}#{rest}")
        }
        _ => image.to_string(),
    }
}

/// An image ref as apptainer wants it: `docker://ref`, unless it is a path (`.sif`) or already
/// names a transport (`oras://`, `library://`…).
pub fn apptainer_image(image: &str) -> String {
    if image.contains("://")
        || image.starts_with('/')
        || image.starts_with("./")
        || image.ends_with(".sif")
    {
        return image.to_string();
    }
    format!("docker://{image}")
}

/// `--time` for sbatch: minutes as `H:MM:SS`, rounded up, at least one minute.
pub fn time_limit(limit: Duration) -> String {
    let minutes = limit.as_secs().div_ceil(60).max(1);
    format!("{}:{:02}:00", minutes / 60, minutes % 60)
}

/// Checks a `slurm.time_limit` value the way sbatch reads it: `M`, `M:S`, `H:M:S`, `D-H`,
/// `D-H:M`, `D-H:M:S` (or empty).
pub fn valid_time_limit(text: &str) -> bool {
    if text.is_empty() || matches!(text, "infinite" | "UNLIMITED") {
        return true;
    }
    let numbers = |part: &str, max_fields: usize| {
        let fields: Vec<&str> = part.split(':').collect();
        fields.len() <= max_fields
            && fields
                .iter()
                .all(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
    };
    match text.split_once('-') {
        Some((days, rest)) => numbers(days, 1) && numbers(rest, 3),
        None => numbers(text, 3),
    }
}

/// The `#SBATCH` options of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobHeader {
    pub job_name: String,
    /// Slurm's own output file (`%j` is the job id; `%A_%a` for arrays).
    pub output: PathBuf,
    pub partition: String,
    pub account: String,
    pub qos: String,
    /// `--gres` value, e.g. `gpu:h100:2`.
    pub gres: Option<String>,
    pub cpus: u32,
    pub mem: String,
    pub time: String,
    /// `--array=0-N%cap`.
    pub array: Option<String>,
    pub extra: Vec<String>,
}

impl JobHeader {
    /// The header of one job with the suite's resources; `time` is the suite's `time_limit`
    /// when set, else `default_time`.
    pub fn from_settings(
        settings: &SlurmSection,
        job_name: String,
        output: PathBuf,
        default_time: Duration,
    ) -> JobHeader {
        let gres = (settings.gpus > 0).then(|| match settings.gpu_type.trim() {
            "" => format!("gpu:{}", settings.gpus),
            kind => format!("gpu:{kind}:{}", settings.gpus),
        });
        let time = if settings.time_limit.trim().is_empty() {
            time_limit(default_time)
        } else {
            settings.time_limit.trim().to_string()
        };
        JobHeader {
            job_name,
            output,
            partition: settings.partition.trim().to_string(),
            account: settings.account.trim().to_string(),
            qos: settings.qos.trim().to_string(),
            gres,
            cpus: settings.cpus.max(1),
            mem: settings.mem.trim().to_string(),
            time,
            array: None,
            extra: settings.sbatch_args.clone(),
        }
    }

    fn render(&self, out: &mut String) {
        let mut line = |option: &str| {
            let _ = writeln!(out, "#SBATCH {option}");
        };
        line(&format!("--job-name={}", self.job_name));
        line(&format!("--output={}", self.output.display()));
        line("--nodes=1");
        line("--ntasks=1");
        line(&format!("--cpus-per-task={}", self.cpus));
        if let Some(array) = &self.array {
            line(&format!("--array={array}"));
        }
        for (option, value) in [
            ("partition", &self.partition),
            ("account", &self.account),
            ("qos", &self.qos),
            ("mem", &self.mem),
        ] {
            if !value.is_empty() {
                line(&format!("--{option}={value}"));
            }
        }
        if let Some(gres) = &self.gres {
            line(&format!("--gres={gres}"));
        }
        line(&format!("--time={}", self.time));
        for extra in &self.extra {
            line(extra);
        }
    }
}

/// Where the commands of an attempt run on the node.
#[derive(Debug, Clone, PartialEq)]
pub enum LaunchTarget {
    /// In a checkout on the shared filesystem.
    Plain { workdir: PathBuf },
    /// In a container of `image`; `mount` is `(checkout, path in the container)` when the
    /// variant's checkout is mounted into one shared image.
    Container {
        launcher: SlurmLauncher,
        image: String,
        mount: Option<(PathBuf, String)>,
        workdir: String,
    },
}

/// Everything one attempt's script needs.
#[derive(Debug, Clone)]
pub struct AttemptScript {
    pub header: JobHeader,
    /// Comment lines at the top (what the job is).
    pub about: Vec<String>,
    pub target: LaunchTarget,
    /// Shared directory of this attempt; the job writes into `job-$SLURM_JOB_ID` under it.
    pub job_root: PathBuf,
    pub server: Option<String>,
    pub client: String,
    pub readiness: ReadinessKind,
    pub readiness_url: String,
    pub readiness_interval: Duration,
    pub readiness_timeout: Duration,
    pub port: u16,
    pub timeout: Duration,
    pub kill_grace: Duration,
    pub env: Vec<(String, String)>,
    /// Labels for containers (`perfarena.run`, `perfarena.task`, `perfarena.variant`).
    pub labels: Vec<(String, String)>,
    pub gpus: u32,
    pub mounts: Vec<String>,
    pub launcher_args: Vec<String>,
    pub prologue: String,
    /// Secrets this attempt gets: names of variables the job inherits from sbatch's environment
    /// (never their values: the script is kept and readable); passed on into containers.
    pub secrets: Vec<String>,
    /// Secrets this variant must not see (`secrets.allow`): unset before anything runs.
    pub withheld: Vec<String>,
}

/// The shell helpers every attempt script shares (status file, start/stop of a role, probes).
const ATTEMPT_HELPERS: &str = r#"pa_now() { t=$(date +%s.%N 2>/dev/null); case $t in ''|*[!0-9.]*) t=$(date +%s) ;; esac; echo "$t"; }
pa_status() { for kv in "$@"; do printf '%s\n' "$kv" >>"$PA_OUT/status"; done; }
pa_sleep() { sleep "$1" 2>/dev/null || sleep 1; }
pa_elapsed() { echo $(( $(date +%s) - PA_T0 )); }
# Starts role $1 (server|client) running command $2 in the background, in its own process group
# (setsid); its pid goes to $1.pid, its exit code to $1.rc when it ends, its output to $1.log.
# Its start and end times go to the status file ($1_started, $1_ended) and, where the launcher's
# processes are this shell's children (PA_TIMES=1), the CPU time of what it waited for ($1_user,
# $1_sys: the second line of `times`, read without a subshell, which would count nothing).
pa_start() {
  rm -f "$PA_OUT/$1.rc" "$PA_OUT/$1.pid"
  (
    pa_status "$1_started=$(pa_now)"
    pa_launch "$1" "$2" >>"$PA_OUT/$1.log" 2>&1 </dev/null
    rc=$?
    if [ "${PA_TIMES:-0}" = 1 ] && times >"$PA_OUT/$1.times" 2>/dev/null; then
      { read -r _ _; read -r u s; } <"$PA_OUT/$1.times" && pa_status "$1_user=$u" "$1_sys=$s"
      rm -f "$PA_OUT/$1.times"
    fi
    pa_status "$1_ended=$(pa_now)"
    echo $rc >"$PA_OUT/$1.rc.tmp" && mv "$PA_OUT/$1.rc.tmp" "$PA_OUT/$1.rc"
  ) &
}
# Runs "$@" as the leader of a new process group whose pid is written to $PA_OUT/$role.pid.
pa_group() { role=$1; shift; $PA_SETSID sh -c 'echo $$ >"$0"; exec "$@"' "$PA_OUT/$role.pid" "$@"; }
# Stops role $1: SIGTERM to its process group, SIGKILL after the grace period.
pa_stop() {
  [ -s "$PA_OUT/$1.pid" ] || return 0
  pid=$(cat "$PA_OUT/$1.pid")
  if [ ! -e "$PA_OUT/$1.rc" ]; then
    kill -TERM "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    n=0
    while [ ! -e "$PA_OUT/$1.rc" ] && kill -0 "-$pid" 2>/dev/null && [ "$n" -lt $((PA_KILL_GRACE * 5)) ]; do
      pa_sleep 0.2; n=$((n + 1))
    done
  fi
  kill -KILL "-$pid" 2>/dev/null
  pa_cleanup "$1"
  return 0
}
pa_probe() {
  case $PA_READY_KIND in
    none) return 0 ;;
    http)
      if command -v curl >/dev/null 2>&1; then
        curl -fsS -o /dev/null --max-time 2 "$PA_READY_URL" >/dev/null 2>&1
      elif command -v python3 >/dev/null 2>&1; then
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$PA_READY_URL" >/dev/null 2>&1
      else
        wget -q -T 2 -O /dev/null "$PA_READY_URL" >/dev/null 2>&1
      fi ;;
    tcp)
      if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2).close()' "$PA_PORT" >/dev/null 2>&1
      else
        curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PA_PORT/" >/dev/null 2>&1
        case $? in 7|28) return 1 ;; *) return 0 ;; esac
      fi ;;
  esac
}
pa_have_probe() {
  [ "$PA_READY_KIND" = none ] || command -v python3 >/dev/null 2>&1 || command -v curl >/dev/null 2>&1 ||
    { [ "$PA_READY_KIND" = http ] && command -v wget >/dev/null 2>&1; }
}
# Ends the attempt: stops both roles, records the result and exits with $2.
pa_finish() {
  trap '' TERM INT
  pa_stop client
  pa_stop server
  pa_status "result=$1" "ended=$(pa_now)"
  exit "$2"
}
# Slurm's time limit or scancel: SIGTERM (then SIGKILL after KillWait).
pa_terminated() {
  trap '' TERM INT
  pa_status "signal=TERM"
  pa_stop client
  pa_stop server
  pa_status "result=terminated" "ended=$(pa_now)"
  exit 143
}
"#;

/// The attempt's main sequence: server, readiness, client, teardown.
const ATTEMPT_MAIN: &str = r#"trap pa_terminated TERM INT
PA_T0=$(date +%s)
pa_status "job_id=${SLURM_JOB_ID:-}" "node=${SLURMD_NODENAME:-$(hostname)}" "started=$(pa_now)"
pa_have_probe || { pa_status "message=the node has neither curl, python3 nor wget for the readiness probe"; pa_finish no_probe 70; }
pa_prepare || pa_finish missing_image 4
if [ -n "$PA_SERVER_CMD" ]; then
  pa_start server "$PA_SERVER_CMD"
  while :; do
    if [ -e "$PA_OUT/server.rc" ]; then
      pa_status "server_exit=$(cat "$PA_OUT/server.rc")"
      pa_finish server_exited 3
    fi
    if pa_probe; then pa_status "ready=$(pa_now)"; break; fi
    e=$(pa_elapsed)
    if [ "$e" -ge "$PA_READY_TIMEOUT" ] || [ "$e" -ge "$PA_TIMEOUT" ]; then pa_finish not_ready 124; fi
    pa_sleep "$PA_READY_INTERVAL"
  done
fi
pa_start client "$PA_CLIENT_CMD"
while [ ! -e "$PA_OUT/client.rc" ]; do
  if [ "$(pa_elapsed)" -ge "$PA_TIMEOUT" ]; then pa_finish timeout 124; fi
  pa_sleep 0.2
done
rc=$(cat "$PA_OUT/client.rc")
pa_status "client_exit=$rc"
if [ -n "$PA_SERVER_CMD" ] && [ -e "$PA_OUT/server.rc" ]; then pa_status "server_exit=$(cat "$PA_OUT/server.rc")"; fi
[ "$rc" = 0 ] && pa_finish ok 0
case $rc in ''|*[!0-9]*) rc=1 ;; esac
[ "$rc" -gt 0 ] && [ "$rc" -lt 256 ] || rc=1
pa_finish client_failed "$rc"
"#;

fn seconds(duration: Duration) -> String {
    let millis = duration.as_millis();
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

impl AttemptScript {
    /// The batch script's text.
    pub fn render(&self) -> String {
        let mut out = String::from("#!/bin/sh\n");
        for line in &self.about {
            let _ = writeln!(out, "# {line}");
        }
        self.header.render(&mut out);
        out.push_str("set -u\n");
        let var = |out: &mut String, name: &str, value: &str| {
            let _ = writeln!(out, "{name}={}", sh_quote(value));
        };
        var(&mut out, "PA_ROOT", &self.job_root.display().to_string());
        // A round job (or a job array of rounds) runs several attempt scripts; it sets
        // PA_JOB_TAG (the job id, or `<array id>_<index>`) so that each writes under it.
        out.push_str("PA_TAG=\"${PA_JOB_TAG:-${SLURM_JOB_ID:-manual-$$}}\"\n");
        out.push_str("PA_OUT=\"$PA_ROOT/job-$PA_TAG\"\n");
        out.push_str("mkdir -p \"$PA_OUT\" || exit 70\n");
        out.push_str(": >\"$PA_OUT/status\"\n");
        var(
            &mut out,
            "PA_SERVER_CMD",
            self.server.as_deref().unwrap_or(""),
        );
        var(&mut out, "PA_CLIENT_CMD", &self.client);
        var(
            &mut out,
            "PA_READY_KIND",
            match self.readiness {
                ReadinessKind::Http => "http",
                ReadinessKind::Tcp => "tcp",
                ReadinessKind::None => "none",
            },
        );
        var(&mut out, "PA_READY_URL", &self.readiness_url);
        var(
            &mut out,
            "PA_READY_INTERVAL",
            &seconds(self.readiness_interval),
        );
        var(
            &mut out,
            "PA_READY_TIMEOUT",
            &self.readiness_timeout.as_secs().to_string(),
        );
        var(&mut out, "PA_PORT", &self.port.to_string());
        var(
            &mut out,
            "PA_TIMEOUT",
            &self.timeout.as_secs().max(1).to_string(),
        );
        var(
            &mut out,
            "PA_KILL_GRACE",
            &self.kill_grace.as_secs().to_string(),
        );
        out.push_str("PA_SETSID=; command -v setsid >/dev/null 2>&1 && PA_SETSID=setsid\n");
        out.push_str("export PYTHONUNBUFFERED=1\n");
        for (key, value) in &self.env {
            let _ = writeln!(out, "export {key}={}", sh_quote(value));
        }
        if !self.withheld.is_empty() {
            let _ = writeln!(
                out,
                "# secrets.allow: not for this variant\nunset {}",
                self.withheld.join(" ")
            );
        }
        if !self.prologue.trim().is_empty() {
            out.push_str("# slurm.prologue\n");
            out.push_str(self.prologue.trim_end());
            out.push('\n');
        }
        out.push_str(ATTEMPT_HELPERS);
        self.render_launcher(&mut out);
        out.push_str(ATTEMPT_MAIN);
        out
    }

    /// `pa_prepare` (image present?), `pa_launch ROLE COMMAND` and `pa_cleanup ROLE` for the
    /// launcher.
    fn render_launcher(&self, out: &mut String) {
        let extra: String = self
            .launcher_args
            .iter()
            .map(|a| format!(" {}", sh_quote(a)))
            .collect();
        match &self.target {
            LaunchTarget::Plain { workdir } => {
                let _ = writeln!(
                    out,
                    "# launcher: plain (the variant's checkout)\nPA_WORKDIR={}",
                    sh_quote(&workdir.display().to_string())
                );
                out.push_str(
                    "pa_prepare() { [ -d \"$PA_WORKDIR\" ] || { pa_status \"message=checkout $PA_WORKDIR is not visible on this node\"; return 1; }; }\n",
                );
                out.push_str(
                    "pa_launch() { cd \"$PA_WORKDIR\" && pa_group \"$1\" sh -c \"$2\"; }\n",
                );
                // The command's processes are this script's descendants: `times` counts them.
                out.push_str("PA_TIMES=1\n");
                out.push_str("pa_cleanup() { :; }\n");
            }
            LaunchTarget::Container {
                launcher,
                image,
                mount,
                workdir,
            } => {
                let mut mounts: Vec<(String, String)> = Vec::new();
                if let Some((host, container)) = mount {
                    mounts.push((host.display().to_string(), container.clone()));
                }
                for spec in &self.mounts {
                    let (host, container) = spec
                        .split_once(':')
                        .unwrap_or((spec.as_str(), spec.as_str()));
                    mounts.push((host.to_string(), container.to_string()));
                }
                match launcher {
                    SlurmLauncher::Docker | SlurmLauncher::Plain => {
                        let _ = writeln!(
                            out,
                            "# launcher: docker run on the node\nPA_IMAGE={}",
                            sh_quote(image)
                        );
                        out.push_str("PA_CONTAINER=\"perfarena-$PA_TAG-$$\"\n");
                        out.push_str("pa_prepare() {\n  docker image inspect \"$PA_IMAGE\" >/dev/null 2>&1 || docker pull \"$PA_IMAGE\" >>\"$PA_OUT/server.log\" 2>&1 ||\n    { pa_status \"message=image $PA_IMAGE is not on the node and cannot be pulled\"; return 1; }\n}\n");
                        let mut run = String::from(
                            "docker run --rm --init --network host --name \"$PA_CONTAINER-$1\"",
                        );
                        for (key, value) in &self.labels {
                            let _ = write!(run, " --label {}", sh_quote(&format!("{key}={value}")));
                        }
                        if self.gpus > 0 {
                            run.push_str(" --gpus \"\\\"device=${SLURM_JOB_GPUS:-${CUDA_VISIBLE_DEVICES:-all}}\\\"\"");
                        }
                        for (host, container) in &mounts {
                            let _ = write!(run, " -v {}", sh_quote(&format!("{host}:{container}")));
                        }
                        let _ = write!(run, " -w {} -e PYTHONUNBUFFERED=1", sh_quote(workdir));
                        for key in self.env.iter().map(|(k, _)| k).chain(&self.secrets) {
                            let _ = write!(run, " -e {key}");
                        }
                        let _ = writeln!(
                            out,
                            "pa_launch() {{ pa_group \"$1\" {run}{extra} \"$PA_IMAGE\" sh -c \"$2\"; }}"
                        );
                        out.push_str("pa_cleanup() { docker rm -f \"$PA_CONTAINER-$1\" >/dev/null 2>&1; return 0; }\n");
                    }
                    SlurmLauncher::Pyxis => {
                        let _ = writeln!(
                            out,
                            "# launcher: pyxis/enroot (srun --container-image)\nPA_IMAGE={}",
                            sh_quote(&pyxis_image(image))
                        );
                        out.push_str("PA_CONTAINER=\"perfarena-$PA_TAG-$$\"\n");
                        let mut srun = String::from(
                            "srun --overlap --nodes=1 --ntasks=1 --container-image=\"$PA_IMAGE\" --container-name=\"$PA_CONTAINER\" --no-container-mount-home",
                        );
                        if !mounts.is_empty() {
                            let list: Vec<String> =
                                mounts.iter().map(|(h, c)| format!("{h}:{c}")).collect();
                            let _ =
                                write!(srun, " --container-mounts={}", sh_quote(&list.join(",")));
                        }
                        let _ = write!(srun, " --container-workdir={}", sh_quote(workdir));
                        srun.push_str(&extra);
                        // Importing the image once, before the server starts, tells a missing image
                        // apart from a crash and lets the server and client share one container.
                        let _ = writeln!(
                            out,
                            "pa_prepare() {{ {srun} true >>\"$PA_OUT/server.log\" 2>&1 || {{ pa_status \"message=pyxis cannot start image $PA_IMAGE\"; return 1; }}; }}"
                        );
                        let _ = writeln!(
                            out,
                            "pa_launch() {{ pa_group \"$1\" {srun} sh -c \"$2\"; }}"
                        );
                        out.push_str("pa_cleanup() { :; }\n");
                    }
                    SlurmLauncher::Apptainer => {
                        let _ = writeln!(
                            out,
                            "# launcher: apptainer exec\nPA_IMAGE={}",
                            sh_quote(&apptainer_image(image))
                        );
                        let mut exec = String::from("apptainer exec");
                        if self.gpus > 0 {
                            exec.push_str(" --nv");
                        }
                        for (host, container) in &mounts {
                            let _ = write!(
                                exec,
                                " --bind {}",
                                sh_quote(&format!("{host}:{container}"))
                            );
                        }
                        let _ = write!(exec, " --pwd {}", sh_quote(workdir));
                        exec.push_str(&extra);
                        let _ = writeln!(
                            out,
                            "pa_prepare() {{ {exec} \"$PA_IMAGE\" true >>\"$PA_OUT/server.log\" 2>&1 || {{ pa_status \"message=apptainer cannot start image $PA_IMAGE\"; return 1; }}; }}"
                        );
                        let _ = writeln!(
                            out,
                            "pa_launch() {{ pa_group \"$1\" {exec} \"$PA_IMAGE\" sh -c \"$2\"; }}"
                        );
                        out.push_str("pa_cleanup() { :; }\n");
                    }
                }
            }
        }
    }
}

/// The script of one round: each attempt's own script (see [`AttemptScript`]), one after the
/// other on this node in the round's order. `attempts` are `(label, script path)`. Run alone it
/// is a job; in a job array ([`round_array_script`]) each array task execs one of them, and the
/// attempts write under `job-<array id>_<index>`. A SIGTERM (time limit, scancel) is passed to
/// the attempt in flight and no later attempt starts.
pub fn round_script(
    header: &JobHeader,
    about: &[String],
    attempts: &[(String, PathBuf)],
) -> String {
    let mut out = String::from("#!/bin/sh\n");
    for line in about {
        let _ = writeln!(out, "# {line}");
    }
    for (idx, (label, script)) in attempts.iter().enumerate() {
        let _ = writeln!(out, "#   {}: {label} ({})", idx + 1, script.display());
    }
    header.render(&mut out);
    out.push_str(ROUND_HELPERS);
    for (label, script) in attempts {
        let _ = writeln!(
            out,
            "pa_attempt {} {}",
            sh_quote(label),
            sh_quote(&script.display().to_string())
        );
    }
    out.push_str("[ \"$pa_stopped\" = 0 ] || exit 143\nexit 0\n");
    out
}

const ROUND_HELPERS: &str = r#"set -u
if [ -n "${SLURM_ARRAY_JOB_ID:-}" ] && [ -n "${SLURM_ARRAY_TASK_ID:-}" ]; then
  PA_JOB_TAG="${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
else
  PA_JOB_TAG="${SLURM_JOB_ID:-manual-$$}"
fi
export PA_JOB_TAG
pa_child=
pa_stopped=0
pa_round_stop() { pa_stopped=1; [ -z "$pa_child" ] || kill -TERM "$pa_child" 2>/dev/null; }
trap pa_round_stop TERM INT
# Runs attempt $1 (its script $2) and waits for it, also when a signal interrupts the wait.
pa_attempt() {
  [ "$pa_stopped" = 0 ] || return 0
  echo "perfarena: attempt $1 starts at $(date +%s) on ${SLURMD_NODENAME:-$(hostname)}"
  sh "$2" &
  pa_child=$!
  while :; do
    wait "$pa_child"; rc=$?
    kill -0 "$pa_child" 2>/dev/null || break
  done
  pa_child=
  echo "perfarena: attempt $1 ended with $rc"
}
"#;

/// A job array whose task `i` runs `rounds[i]`'s round script.
pub fn round_array_script(header: &JobHeader, about: &[String], rounds: &[PathBuf]) -> String {
    let mut out = String::from("#!/bin/sh\n");
    for line in about {
        let _ = writeln!(out, "# {line}");
    }
    header.render(&mut out);
    out.push_str("set -u\ncase \"${SLURM_ARRAY_TASK_ID:-}\" in\n");
    for (idx, script) in rounds.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {idx}) exec sh {} ;;",
            sh_quote(&script.display().to_string())
        );
    }
    out.push_str("  *) echo \"perfarena: no round for array task ${SLURM_ARRAY_TASK_ID:-?}\" >&2; exit 70 ;;\nesac\n");
    out
}

/// One image build: a program with its arguments, run in `workdir`.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildCommand {
    /// What is built (an image ref), for messages and the script's comments.
    pub name: String,
    pub program: String,
    pub args: Vec<String>,
    pub workdir: PathBuf,
    pub env: Vec<(String, String)>,
}

/// The script of one build, or of a job array of builds (`header.array` set): each array task
/// runs its build, writing `build-<index>.log` and `build-<index>.rc` under `dir`.
pub fn build_script(
    header: &JobHeader,
    dir: &Path,
    builds: &[BuildCommand],
    prologue: &str,
) -> String {
    let mut out = String::from("#!/bin/sh\n");
    let _ = writeln!(
        out,
        "# perfarena image build{}: {}",
        if builds.len() > 1 { "s" } else { "" },
        builds.len()
    );
    out.push_str(
        "# Written by perfarena before submission; resubmit by hand with `sbatch <this file>`.\n",
    );
    for (idx, build) in builds.iter().enumerate() {
        let _ = writeln!(out, "#   {idx}: {}", build.name);
    }
    header.render(&mut out);
    out.push_str("set -u\n");
    let _ = writeln!(out, "PA_DIR={}", sh_quote(&dir.display().to_string()));
    out.push_str("PA_IDX=${SLURM_ARRAY_TASK_ID:-0}\n");
    if !prologue.trim().is_empty() {
        out.push_str("# slurm.prologue\n");
        out.push_str(prologue.trim_end());
        out.push('\n');
    }
    out.push_str("pa_build() {\n  case $PA_IDX in\n");
    for (idx, build) in builds.iter().enumerate() {
        let mut line = format!(
            "cd {} || exit 70;",
            sh_quote(&build.workdir.display().to_string())
        );
        for (key, value) in &build.env {
            let _ = write!(line, " {key}={}", sh_quote(value));
        }
        let _ = write!(line, " exec {}", sh_quote(&build.program));
        for arg in &build.args {
            let _ = write!(line, " {}", sh_quote(arg));
        }
        let _ = writeln!(out, "    {idx}) ({line}) ;;");
    }
    out.push_str("    *) echo \"no build $PA_IDX in this script\" >&2; return 64 ;;\n  esac\n}\n");
    out.push_str("date -u +\"started %Y-%m-%dT%H:%M:%SZ on ${SLURMD_NODENAME:-$(hostname)}\" >\"$PA_DIR/build-$PA_IDX.log\"\n");
    out.push_str("pa_build >>\"$PA_DIR/build-$PA_IDX.log\" 2>&1\nrc=$?\n");
    out.push_str("echo \"$rc\" >\"$PA_DIR/build-$PA_IDX.rc.tmp\" && mv \"$PA_DIR/build-$PA_IDX.rc.tmp\" \"$PA_DIR/build-$PA_IDX.rc\"\n");
    out.push_str("exit \"$rc\"\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(sh_quote("abc/d-e.f"), "abc/d-e.f");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("it's a b"), r"'it'\''s a b'");
        assert_eq!(sh_quote("$HOME"), "'$HOME'");
    }

    #[test]
    fn image_refs_per_launcher() {
        assert_eq!(
            pyxis_image("nvcr.io/nvidia/pytorch:24.01-py3"),
            "nvcr.io#nvidia/pytorch:24.01-py3"
        );
        assert_eq!(
            pyxis_image("127.0.0.1:5000/toyllm:abc"),
            "127.0.0.1:5000#toyllm:abc"
        );
        assert_eq!(
            pyxis_image("vllm/vllm-openai:latest"),
            "vllm/vllm-openai:latest"
        );
        assert_eq!(
            pyxis_image("/shared/images/vllm.sqsh"),
            "/shared/images/vllm.sqsh"
        );
        assert_eq!(
            apptainer_image("vllm/vllm-openai:latest"),
            "docker://vllm/vllm-openai:latest"
        );
        assert_eq!(apptainer_image("/shared/vllm.sif"), "/shared/vllm.sif");
        assert_eq!(apptainer_image("oras://reg/x:1"), "oras://reg/x:1");
    }

    #[test]
    fn time_limits() {
        assert_eq!(time_limit(Duration::from_secs(1)), "0:01:00");
        assert_eq!(time_limit(Duration::from_secs(61)), "0:02:00");
        assert_eq!(time_limit(Duration::from_secs(7200)), "2:00:00");
        for ok in ["", "30", "1:30:00", "2-00:00:00", "1-12", "10:00"] {
            assert!(valid_time_limit(ok), "{ok}");
        }
        for bad in ["1h", "-1", "1:2:3:4", "a-1", "1-"] {
            assert!(!valid_time_limit(bad), "{bad}");
        }
    }
}
