//! `perfarena images build` against the real Docker daemon and the registry on 127.0.0.1:5000,
//! on the toy repository: full builds and pushes, candidates (thin layer, rebuild, a patch that
//! does not apply), the out-of-memory ladder, a broken build fixed by a pre_build_patch, a human
//! image without its built module, human_image_missing, permanently_failed, timeout, low disk,
//! dry run, Ctrl-C then a rerun that continues; BuildKit builds (cache and stage mounts, a
//! failing step, `.git` in the context, the heredoc check of old engines).

mod images_support;

use std::time::{Duration, Instant};

use images_support::*;

const PREFIX_CACHE: &str = "perf: prefix cache";
const FUSED_DECODE: &str = "perf: fused decode kernel";
const TILED_PREFILL: &str = "perf: tiled prefill kernel";

#[test]
fn builds_humans_baselines_and_candidates_then_pushes_and_skips_what_exists() {
    if !services() {
        return;
    }
    let toy = Toy::new("full", "", "", &[]);
    let task = toy.commit(PREFIX_CACHE);
    // A candidate that deletes a file (README.md as of the parent).
    let readme = std::process::Command::new("git")
        .arg("-C")
        .arg(toy.dir.join("repo"))
        .args(["show", &format!("{}:README.md", toy.parent(PREFIX_CACHE))])
        .output()
        .unwrap();
    let readme = String::from_utf8(readme.stdout).unwrap();
    let removed: String = readme.lines().map(|l| format!("-{l}\n")).collect();
    let patch = format!(
        "diff --git a/README.md b/README.md\ndeleted file mode 100644\n--- a/README.md\n+++ /dev/null\n@@ -1,{} +0,0 @@\n{removed}",
        readme.lines().count()
    );
    let drop_patch = toy.dir.join("dropreadme.patch");
    std::fs::write(&drop_patch, patch).unwrap();
    let drop_arg = format!("dropreadme={}", drop_patch.display());
    let args = [
        "images",
        "build",
        "--all",
        "--candidates",
        &toy.candidate_patch("fast"),
        &toy.candidate_patch("kernel"),
        &toy.candidate_patch("stale"),
        &drop_arg,
    ];
    let out = toy.perfarena(&args);
    // The stale patch does not apply: the command fails, every other image is built.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let builds = toy.builds();
    let status_of = |needle: &str| {
        builds
            .iter()
            .rev()
            .find(|b| b.0.contains(needle))
            .map(|b| b.1.clone())
            .unwrap_or_else(|| panic!("no build of {needle}: {builds:?}"))
    };
    let human = toy.human_image(PREFIX_CACHE);
    let baseline = toy.baseline_image(PREFIX_CACHE);
    assert_eq!(status_of(&human), "success");
    assert_eq!(status_of(&baseline), "success");
    assert_eq!(status_of("-fast-"), "success");
    assert_eq!(status_of("-kernel-"), "success");
    assert_eq!(status_of("-stale-"), "patch_failed");
    assert_eq!(status_of("-dropreadme-"), "success");
    let stale = builds.iter().find(|b| b.0.contains("-stale-")).unwrap();
    assert!(
        stale
            .4
            .as_deref()
            .unwrap_or("")
            .contains("patch does not apply"),
        "git's message: {stale:?}"
    );

    // Order: human, then baseline, then candidates.
    let order: Vec<&str> = builds.iter().map(|b| b.0.as_str()).collect();
    assert_eq!(order[0], human);
    assert_eq!(order[1], baseline);

    // Pushed, and the registry serves the digest recorded.
    let conn = rusqlite::Connection::open(toy.dir.join(".perfarena/perfarena.db")).unwrap();
    let recorded: String = conn
        .query_row(
            "SELECT digest FROM builds WHERE image_ref = ?1 AND status = 'success'",
            [&human],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        registry_digest(&toy.repo, &task).as_deref(),
        Some(recorded.as_str())
    );

    // Labels on every image.
    let fast = toy
        .local_images()
        .into_iter()
        .find(|i| i.contains("-fast-"))
        .expect("fast image");
    let labels = inspect(&fast, "{{json .Config.Labels}}").unwrap();
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["perfarena.image.task"], task.as_str());
    assert_eq!(labels["perfarena.image.variant"], "candidate:fast");
    assert_eq!(
        labels["perfarena.image.commit"],
        toy.parent(PREFIX_CACHE).as_str()
    );
    assert_eq!(
        labels["perfarena.image.parent"],
        toy.parent(PREFIX_CACHE).as_str()
    );
    assert_eq!(
        labels["perfarena.image.patch_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );
    assert_eq!(labels["perfarena.image.recipe"].as_str().unwrap().len(), 64);
    let human_labels: serde_json::Value =
        serde_json::from_str(&inspect(&human, "{{json .Config.Labels}}").unwrap()).unwrap();
    assert_eq!(human_labels["perfarena.image.variant"], "human");
    assert_eq!(human_labels["perfarena.image.commit"], task.as_str());

    // A Python-only candidate is one thin layer on the baseline; the kernel one reran the build.
    let layers = |image: &str| {
        inspect(image, "{{len .RootFS.Layers}}")
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    assert_eq!(
        layers(&fast),
        layers(&baseline) + 1,
        "one layer over the baseline"
    );
    let (ok, engine) = run_in(
        &fast,
        &[
            "sh",
            "-c",
            "grep -c lru_cache /workspace/src/toyllm/engine.py",
        ],
    );
    assert!(
        ok && engine.trim() == "1",
        "the patched file is in the image: {engine}"
    );
    let kernel = toy
        .local_images()
        .into_iter()
        .find(|i| i.contains("-kernel-"))
        .expect("kernel image");
    let (ok, value) = run_in(
        &kernel,
        &[
            "python3",
            "-c",
            "import sys; sys.path.insert(0, '/workspace/src'); from toyllm import _C; print(_C.DECODE_MS_PER_TOKEN)",
        ],
    );
    assert!(
        ok && value.trim() == "1.4",
        "the rebuild regenerated toyllm/_C.py: {value}"
    );
    let dropped = toy
        .local_images()
        .into_iter()
        .find(|i| i.contains("-dropreadme-"))
        .expect("dropreadme image");
    let (ok, listing) = run_in(&dropped, &["sh", "-c", "ls /workspace/src"]);
    assert!(
        ok && !listing.contains("README.md") && listing.contains("toyllm"),
        "README.md deleted: {listing}"
    );
    let (ok, listing) = run_in(&baseline, &["sh", "-c", "ls /workspace/src"]);
    assert!(
        ok && listing.contains("README.md"),
        "the baseline keeps it: {listing}"
    );
    let (_, base_value) = run_in(
        &fast,
        &[
            "python3",
            "-c",
            "import sys; sys.path.insert(0, '/workspace/src'); from toyllm import _C; print(_C.DECODE_MS_PER_TOKEN)",
        ],
    );
    assert_eq!(base_value.trim(), "2.0");

    // Logs under .perfarena/builds/.
    let log: String = conn
        .query_row(
            "SELECT log_path FROM builds WHERE image_ref = ?1",
            [&baseline],
            |r| r.get(0),
        )
        .unwrap();
    assert!(log.contains(".perfarena/builds/"), "{log}");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("wrote toyllm/_C.py")
    );

    // A rerun builds nothing: what exists is already_exists, the stale patch still fails.
    let before = toy.builds().len();
    let again = toy.perfarena(&args);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    let rerun: Vec<String> = toy.builds()[before..].iter().map(|b| b.1.clone()).collect();
    assert_eq!(
        rerun,
        [
            "already_exists",
            "already_exists",
            "already_exists",
            "already_exists",
            "patch_failed",
            "already_exists"
        ]
    );
}

#[test]
fn out_of_memory_builds_retry_with_half_the_jobs_down_to_the_floor() {
    if !services() {
        return;
    }
    // fused decode: its compile is "killed" with MAX_JOBS above 2.
    let toy = Toy::new("ladder", "", "", &[FUSED_DECODE]);
    let human = toy.human_image(FUSED_DECODE);
    let out = toy.perfarena(&[
        "images",
        "build",
        "--commit",
        &toy.commit(FUSED_DECODE)[..10],
        "--variant",
        "human",
        "--no-push",
        "--max-jobs",
        "8",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let tries: Vec<(String, i64, Option<i64>)> = toy
        .builds()
        .into_iter()
        .filter(|b| b.0 == human)
        .map(|b| (b.1, b.2, b.3))
        .collect();
    assert_eq!(
        tries,
        [
            ("build_failed".into(), 0, Some(8)),
            ("build_failed".into(), 1, Some(4)),
            ("success".into(), 2, Some(2))
        ]
    );
    let first = toy.builds().into_iter().find(|b| b.0 == human).unwrap();
    assert!(
        first
            .4
            .as_deref()
            .unwrap()
            .contains("out of memory with max_jobs=8"),
        "{first:?}"
    );
    assert!(
        first
            .4
            .as_deref()
            .unwrap()
            .contains("Killed signal terminated program"),
        "{first:?}"
    );
    assert!(toy.local_images().contains(&human));

    // With the floor at 4 the ladder stops there: the image is build_failed.
    let floor = Toy::new("floor", "min_max_jobs = 4", "", &[FUSED_DECODE]);
    let out = floor.perfarena(&[
        "images",
        "build",
        "--commit",
        &floor.commit(FUSED_DECODE)[..10],
        "--variant",
        "human",
        "--no-push",
        "--max-jobs",
        "8",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let statuses: Vec<(String, Option<i64>)> =
        floor.builds().into_iter().map(|b| (b.1, b.3)).collect();
    assert_eq!(
        statuses,
        [
            ("build_failed".into(), Some(8)),
            ("build_failed".into(), Some(4))
        ]
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("out of memory with max_jobs=4"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_broken_build_fails_once_and_a_pre_build_patch_fixes_it() {
    if !services() {
        return;
    }
    let toy = Toy::new("broken", "", "", &[TILED_PREFILL]);
    let commit = toy.commit(TILED_PREFILL);
    let human = toy.human_image(TILED_PREFILL);
    let build = |toy: &Toy| {
        toy.perfarena(&[
            "images",
            "build",
            "--commit",
            &commit[..10],
            "--variant",
            "human",
            "--no-push",
            "--max-jobs",
            "2",
        ])
    };
    let out = build(&toy);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rows = toy.builds();
    assert_eq!(rows.len(), 1, "not out of memory: no retry: {rows:?}");
    assert_eq!(rows[0].1, "build_failed");
    assert_eq!(
        rows[0].4.as_deref(),
        Some("ValueError: could not convert string to float: '64x'")
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not convert string to float"),
        "excerpt in the output: {}",
        text(&out)
    );

    let fixed = Toy::new(
        "prebuild",
        "",
        &format!(
            "[build.overrides.\"{}\"]\npre_build_patch = \"sed -i 's/= 64x/= 64/' csrc/kernels.txt\"\n",
            &commit[..12]
        ),
        &[TILED_PREFILL],
    );
    let out = build(&fixed);
    assert!(out.status.success(), "{}", text(&out));
    let human = human.replace(&toy.repo, &fixed.repo);
    let (ok, tile) = run_in(
        &human,
        &[
            "python3",
            "-c",
            "import sys; sys.path.insert(0, '/workspace/src'); from toyllm import _C; print(_C.PREFILL_TILE)",
        ],
    );
    assert!(ok && tile.trim() == "64.0", "{tile}");
    // The repository itself is untouched: the step ran on the export.
    let kernels = std::fs::read_to_string(fixed.dir.join("repo/csrc/kernels.txt")).unwrap();
    assert!(kernels.contains("64x"));
}

#[test]
fn a_human_image_built_without_its_module_fails_at_server_start() {
    if !services() {
        return;
    }
    // skip_build: the image has the source but no toyllm._C (like a skipped extension build).
    let commit_of = |toy: &Toy| toy.commit(FUSED_DECODE);
    let probe = Toy::new("nomodule-probe", "", "", &[]);
    let commit = commit_of(&probe);
    drop(probe);
    let toy = Toy::new(
        "nomodule",
        "",
        &format!(
            "[build.overrides.\"{}\"]\nargs = {{ skip_build = \"1\" }}\n",
            &commit[..12]
        ),
        &[FUSED_DECODE],
    );
    let out = toy.perfarena(&[
        "images",
        "build",
        "--commit",
        &commit[..10],
        "--variant",
        "human",
        "--no-push",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let human = toy.human_image(FUSED_DECODE);
    let (ok, output) = run_in(
        &human,
        &[
            "sh",
            "-c",
            "cd /workspace/src && python3 -m toyllm.server --port 18999",
        ],
    );
    assert!(!ok);
    assert!(output.contains("No module named 'toyllm._C'"), "{output}");
}

#[test]
fn baselines_need_the_human_image_and_permanent_failures_are_skipped() {
    if !services() {
        return;
    }
    let probe = Toy::new("perm-probe", "", "", &[]);
    let tiled = probe.commit(TILED_PREFILL);
    drop(probe);
    let toy = Toy::new(
        "perm",
        "",
        &format!(
            "[build.overrides.\"{}\"]\npermanently_failed = \"needs a CUDA 11 toolchain\"\n",
            &tiled[..12]
        ),
        &[FUSED_DECODE, TILED_PREFILL],
    );
    let out = toy.perfarena(&[
        "images",
        "build",
        "--commit",
        &toy.commit(FUSED_DECODE)[..10],
        &tiled[..10],
        "--variant",
        "baseline",
        "--no-push",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rows = toy.builds();
    let fused_baseline = toy.baseline_image(FUSED_DECODE);
    let row = rows
        .iter()
        .find(|b| b.0 == fused_baseline)
        .expect("baseline row");
    assert_eq!(row.1, "human_image_missing");
    assert!(
        row.4
            .as_deref()
            .unwrap()
            .contains(&toy.human_image(FUSED_DECODE))
    );
    // Tiled prefill's human image is permanently failed; its baseline (fused decode's commit)
    // is a different override: it too waits for its human image.
    let out = toy.perfarena(&[
        "images",
        "build",
        "--commit",
        &tiled[..10],
        "--variant",
        "human",
        "--no-push",
    ]);
    assert!(
        out.status.success(),
        "permanently failed is not a failure of this command: {}",
        text(&out)
    );
    let last = toy.builds().pop().unwrap();
    assert_eq!(
        (last.1.as_str(), last.4.as_deref()),
        ("permanently_failed", Some("needs a CUDA 11 toolchain"))
    );
    assert!(toy.local_images().is_empty(), "nothing built");
}

#[test]
fn the_whole_ladder_is_bounded_by_the_timeout() {
    if !services() {
        return;
    }
    let probe = Toy::new("timeout-probe", "", "", &[]);
    let fused = probe.commit(FUSED_DECODE);
    drop(probe);
    let toy = Toy::new(
        "timeout",
        "timeout_s = 4",
        &format!(
            "[build.overrides.\"{}\"]\nargs = {{ compile_seconds = \"60\" }}\n",
            &fused[..12]
        ),
        &[FUSED_DECODE],
    );
    let started = Instant::now();
    let out = toy.perfarena(&[
        "images",
        "build",
        "--commit",
        &fused[..10],
        "--variant",
        "human",
        "--no-push",
        "--max-jobs",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "stopped at the timeout: {:?}",
        started.elapsed()
    );
    let rows = toy.builds();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "timeout");
    assert!(toy.local_images().is_empty());
}

#[test]
fn low_disk_stops_before_building() {
    if !services() {
        return;
    }
    let toy = Toy::new("disk", "", "", &[]);
    let suite = toy.dir.join("perfarena.toml");
    let text_before = std::fs::read_to_string(&suite).unwrap();
    std::fs::write(
        &suite,
        text_before.replace("min_free_disk_gib = 0.5", "min_free_disk_gib = 1000000.0"),
    )
    .unwrap();
    let out = toy.perfarena(&["images", "build", "--all", "--no-push"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GiB free") && err.contains("build.min_free_disk_gib"),
        "{err}"
    );
    assert!(
        toy.builds().is_empty(),
        "nothing recorded for images not started"
    );
    assert!(toy.local_images().is_empty());
}

#[test]
fn a_dry_run_prints_the_plan_and_changes_nothing() {
    if !services() {
        return;
    }
    let toy = Toy::new("dry", "", "", &[FUSED_DECODE]);
    let db = toy.dir.join(".perfarena/perfarena.db");
    let out = toy.perfarena(&[
        "images",
        "build",
        "--all",
        "--dry-run",
        "--candidates",
        &toy.candidate_patch("fast"),
        &toy.candidate_patch("kernel"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains("plan: 8 image(s)"),
        "the patches apply to both tasks: {plan}"
    );
    let human = plan.find(&toy.human_image(PREFIX_CACHE)).unwrap();
    let baseline = plan.find(&toy.baseline_image(PREFIX_CACHE)).unwrap();
    let candidate = plan.find("candidate:fast").unwrap();
    assert!(
        human < baseline && baseline < candidate,
        "order: humans, baselines, candidates:\n{plan}"
    );
    assert!(plan.contains("one thin layer"), "{plan}");
    assert!(
        plan.contains("rebuild (csrc/kernels.txt): MAX_JOBS=${max_jobs} python3 build.py"),
        "{plan}"
    );
    assert!(plan.contains("args: max_jobs=4"), "{plan}");
    assert!(!toy.dir.join(".perfarena/builds").exists());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM builds", [], |r| r.get(0))
        .unwrap();
    let patches: i64 = conn
        .query_row("SELECT COUNT(*) FROM patches", [], |r| r.get(0))
        .unwrap();
    assert_eq!((n, patches), (0, 0));
    assert!(toy.local_images().is_empty());
}

#[test]
fn ctrl_c_stops_the_build_cleanly_and_a_rerun_continues() {
    if !services() {
        return;
    }
    let probe = Toy::new("cancel-probe", "", "", &[]);
    let fused = probe.commit(FUSED_DECODE);
    drop(probe);
    // A compile long enough to interrupt; its seconds are unique so that its build container can
    // be recognised among others.
    let marker = format!("9.{}", std::process::id() % 1000 + 1000);
    let toy = Toy::new(
        "cancel",
        "",
        &format!(
            "[build.overrides.\"{}\"]\nargs = {{ compile_seconds = \"{marker}\" }}\n",
            &fused[..12]
        ),
        &[FUSED_DECODE],
    );
    let progress = toy.dir.join("progress.json");
    let args = [
        "images",
        "build",
        "--all",
        "--variant",
        "human",
        "--no-push",
        "--max-jobs",
        "2",
        "--progress-json",
        progress.to_str().unwrap(),
    ];
    let mut child = bin()
        .arg("-C")
        .arg(&toy.dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the fused-decode image is compiling (the prefix-cache one builds first).
    let fused_human = toy.human_image(FUSED_DECODE);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "the build never started compiling"
        );
        let compiling = std::fs::read_dir(toy.dir.join(".perfarena/builds"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|d| {
                d.file_name()
                    .to_string_lossy()
                    .contains(&toy.commit(FUSED_DECODE))
            })
            .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
            .any(|f| {
                std::fs::read_to_string(f.path())
                    .unwrap_or_default()
                    .contains("compiling kernels")
            });
        if compiling {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: signalling the child we spawned, by its pid.
    unsafe { libc_kill(child.id() as i32, 2) };
    let status = wait_with_timeout(&mut child, Duration::from_secs(30));
    assert_eq!(status, Some(130), "exit code 130 after Ctrl-C");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&progress).unwrap()).unwrap();
    assert_eq!(state["state"], "interrupted");
    let entry = state["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["image"] == fused_human.as_str())
        .unwrap();
    assert_eq!(entry["state"], "interrupted");
    // Recorded: the first image only; nothing for the interrupted one.
    let rows = toy.builds();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, toy.human_image(PREFIX_CACHE));
    // No build container is left behind (the engine removes the interrupted step's container).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ids = std::process::Command::new("docker")
            .args(["ps", "-aq"])
            .output()
            .unwrap();
        let mut left = Vec::new();
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let env = std::process::Command::new("docker")
                .args(["inspect", "-f", "{{json .Config.Env}}", id])
                .output()
                .unwrap();
            if String::from_utf8_lossy(&env.stdout).contains(&format!("compile_seconds={marker}")) {
                left.push(id.to_string());
            }
        }
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "build containers left: {left:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // A rerun continues: the first image exists, the interrupted one is built now.
    let out = toy.perfarena(&args);
    assert!(out.status.success(), "{}", text(&out));
    let rerun: Vec<(String, String)> = toy.builds()[1..]
        .iter()
        .map(|b| (b.0.clone(), b.1.clone()))
        .collect();
    assert_eq!(
        rerun,
        [
            (toy.human_image(PREFIX_CACHE), "already_exists".to_string()),
            (fused_human, "success".to_string())
        ]
    );
}

fn wait_with_timeout(child: &mut std::process::Child, timeout: Duration) -> Option<i32> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, signal: i32) -> i32;
}

/// The build log (`-try0.log`) and the prepare log of the one image `image` of `toy`.
fn logs_of(toy: &Toy, image: &str) -> (String, String) {
    let dir = toy
        .dir
        .join(".perfarena/builds")
        .join(perfarena_backend::images::builder::slug(image));
    let read = |suffix: &str| {
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .find(|f| f.file_name().to_string_lossy().ends_with(suffix))
            .map(|f| std::fs::read_to_string(f.path()).unwrap())
            .unwrap_or_default()
    };
    (read("-try0.log"), read("-prepare.log"))
}

/// A multi-stage Dockerfile only BuildKit builds: a cache mount in the first stage, a bind mount
/// of the first stage's output in the second; the build arg `max_jobs` ends up in the image.
const MOUNTS_DOCKERFILE: &str = "FROM perfarena/toy-base:bookworm AS build
ARG max_jobs=1
RUN --mount=type=cache,target=/var/cache/pa-test \\
    mkdir -p /out && echo \"jobs=${max_jobs}\" > /out/artifact && date >> /var/cache/pa-test/runs
FROM perfarena/toy-base:bookworm
WORKDIR /workspace/src
COPY . .
RUN --mount=type=bind,from=build,source=/out,target=/from-build cp /from-build/artifact /artifact
";

#[test]
fn buildkit_builds_cache_and_stage_mounts_under_auto_and_buildkit() {
    if !services() {
        return;
    }
    for builder in ["auto", "buildkit"] {
        let toy = Toy::new(
            &format!("bk-{builder}"),
            &format!("dockerfile = \"mounts.Dockerfile\"\nbuilder = \"{builder}\""),
            "",
            &[],
        );
        std::fs::write(toy.dir.join("mounts.Dockerfile"), MOUNTS_DOCKERFILE).unwrap();
        let task = toy.commit(PREFIX_CACHE);
        let human = toy.human_image(PREFIX_CACHE);
        // "buildkit" also pushes: the registry must serve what BuildKit built.
        let mut args = vec![
            "images",
            "build",
            "--commit",
            &task[..10],
            "--variant",
            "human",
        ];
        if builder == "auto" {
            args.push("--no-push");
        }
        let out = toy.perfarena(&args);
        assert!(out.status.success(), "{builder}: {}", text(&out));
        let rows = toy.builds();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (rows[0].0.as_str(), rows[0].1.as_str()),
            (human.as_str(), "success")
        );
        if builder == "buildkit" {
            assert!(registry_digest(&toy.repo, &task).is_some(), "pushed");
        }
        // The build arg reached the first stage; the second stage read its output.
        let (ok, artifact) = run_in(&human, &["cat", "/artifact"]);
        assert!(ok && artifact.trim() == "jobs=4", "{builder}: {artifact}");
        let (ok, listing) = run_in(&human, &["ls", "/workspace/src"]);
        assert!(ok && listing.contains("toyllm"), "{listing}");
        let labels: serde_json::Value =
            serde_json::from_str(&inspect(&human, "{{json .Config.Labels}}").unwrap()).unwrap();
        assert_eq!(labels["perfarena.image.variant"], "human");
        assert_eq!(labels["perfarena.image.task"], task.as_str());
        assert_eq!(labels["perfarena.image.commit"], task.as_str());
        assert_eq!(labels["perfarena.image.recipe"].as_str().unwrap().len(), 64);

        let (log, prepare) = logs_of(&toy, &human);
        let why = if builder == "auto" {
            "builder: BuildKit (build.builder = \"auto\": line 3 uses RUN --mount)"
        } else {
            "builder: BuildKit (build.builder = \"buildkit\")"
        };
        assert!(prepare.contains(why), "{prepare}");
        // Readable steps, as `docker build --progress=plain` prints them; no encoded trace.
        let step = |needle: &str| {
            log.lines()
                .find(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("no {needle:?} in the log:\n{log}"))
                .to_string()
        };
        let cache_step = step("RUN --mount=type=cache,target=/var/cache/pa-test");
        assert!(
            cache_step.starts_with('#') && cache_step.contains("[build "),
            "{cache_step}"
        );
        let number = cache_step.split_whitespace().next().unwrap().to_string();
        assert!(
            log.lines().any(|l| l == format!("{number} CACHED")
                || (l.starts_with(&format!("{number} DONE ")) && l.ends_with('s'))),
            "the step's end:\n{log}"
        );
        assert!(step("RUN --mount=type=bind,from=build").starts_with('#'));
        assert!(
            !log.contains("moby.buildkit.trace") && !log.contains("\"aux\""),
            "{log}"
        );
        assert!(
            log.lines().all(|l| l.len() < 400),
            "no base64 blobs:\n{log}"
        );
    }
}

#[test]
fn a_failing_buildkit_step_is_build_failed_with_its_exit_code() {
    if !services() {
        return;
    }
    let toy = Toy::new("bk-fail", "dockerfile = \"fail.Dockerfile\"", "", &[]);
    std::fs::write(
        toy.dir.join("fail.Dockerfile"),
        "FROM perfarena/toy-base:bookworm\nRUN --mount=type=cache,target=/tmp/c echo about to fail && exit 3\n",
    )
    .unwrap();
    let task = toy.commit(PREFIX_CACHE);
    let out = toy.perfarena(&[
        "images",
        "build",
        "--commit",
        &task[..10],
        "--variant",
        "human",
        "--no-push",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rows = toy.builds();
    assert_eq!(rows.len(), 1, "not out of memory: no retry: {rows:?}");
    assert_eq!(rows[0].1, "build_failed");
    let excerpt = rows[0].4.clone().unwrap_or_default();
    assert!(excerpt.contains("exit code: 3"), "{excerpt}");
    let (log, _) = logs_of(&toy, &toy.human_image(PREFIX_CACHE));
    assert!(
        log.lines()
            .any(|l| l.starts_with('#') && l.ends_with(" about to fail")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.starts_with('#') && l.contains(" ERROR: ") && l.contains("exit code: 3")),
        "{log}"
    );
    assert!(toy.local_images().is_empty());
}

#[test]
fn context_git_puts_the_commit_in_a_bind_mounted_git_dir() {
    if !services() {
        return;
    }
    // toy-base has no git: the commit is read from .git/HEAD (detached at the commit).
    let toy = Toy::new(
        "bk-git",
        "dockerfile = \"git.Dockerfile\"\ncontext_git = true",
        "",
        &[],
    );
    std::fs::write(
        toy.dir.join("git.Dockerfile"),
        "FROM perfarena/toy-base:bookworm\nRUN --mount=type=bind,source=.git,target=/src/.git cat /src/.git/HEAD > /sha && cat /src/.git/shallow > /shallow\n",
    )
    .unwrap();
    let task = toy.commit(PREFIX_CACHE);
    let out = toy.perfarena(&[
        "images",
        "build",
        "--commit",
        &task[..10],
        "--variant",
        "human",
        "--no-push",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let human = toy.human_image(PREFIX_CACHE);
    let (ok, sha) = run_in(&human, &["cat", "/sha", "/shallow"]);
    assert!(ok, "{sha}");
    assert_eq!(
        sha,
        format!("{task}\n{task}\n"),
        "HEAD and the one shallow commit"
    );
    let (_, prepare) = logs_of(&toy, &human);
    assert!(prepare.contains("build.context_git"), "{prepare}");
}

#[test]
fn a_heredoc_on_an_engine_before_23_fails_before_the_build() {
    if !services() {
        return;
    }
    let version = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let major: u32 = version.split('.').next().unwrap().parse().unwrap();
    let toy = Toy::new("bk-heredoc", "dockerfile = \"heredoc.Dockerfile\"", "", &[]);
    std::fs::write(
        toy.dir.join("heredoc.Dockerfile"),
        "FROM perfarena/toy-base:bookworm\n\nRUN <<EOF\necho hi > /hi\nEOF\n",
    )
    .unwrap();
    let task = toy.commit(PREFIX_CACHE);
    let out = toy.perfarena(&[
        "images",
        "build",
        "--commit",
        &task[..10],
        "--variant",
        "human",
        "--no-push",
    ]);
    let human = toy.human_image(PREFIX_CACHE);
    if major >= 23 {
        // A newer engine's frontend reads heredocs: nothing to refuse.
        assert!(out.status.success(), "{}", text(&out));
        let (ok, hi) = run_in(&human, &["cat", "/hi"]);
        assert!(ok && hi.trim() == "hi", "{hi}");
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let rows = toy.builds();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].1, "build_failed");
    let excerpt = rows[0].4.clone().unwrap_or_default();
    assert!(
        excerpt
            .starts_with("heredoc.Dockerfile:3: a heredoc (RUN <<EOF) needs Docker Engine >= 23")
            && excerpt.contains(&format!("this engine is {version}"))
            && excerpt.contains("# syntax=docker/dockerfile:1.4"),
        "{excerpt}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs Docker Engine >= 23"),
        "{}",
        text(&out)
    );
    // Nothing was sent: no build log, no image.
    let (log, prepare) = logs_of(&toy, &human);
    assert!(log.is_empty(), "{log}");
    assert!(prepare.contains("needs Docker Engine >= 23"), "{prepare}");
    assert!(toy.local_images().is_empty());
}
