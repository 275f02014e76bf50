//! `perfarena images status` against the real Docker daemon and the registry on 127.0.0.1:5000:
//! where each expected image is (local engine, registry), categories and the summary counts, a
//! registry that is down (unknown, never missing), an engine that is unreachable, and the table.

mod images_support;

use images_support::*;

const PREFIX_CACHE: &str = "perf: prefix cache";
const FUSED_DECODE: &str = "perf: fused decode kernel";

fn status_json(toy: &Toy, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["images", "status", "--json"];
    args.extend_from_slice(extra);
    let out = toy.perfarena(&args);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}: {}", text(&out)))
}

fn task<'a>(report: &'a serde_json::Value, commit: &str) -> &'a serde_json::Value {
    report["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["commit"] == commit)
        .unwrap_or_else(|| panic!("no task {commit}: {report:#}"))
}

#[test]
fn status_says_where_each_image_is_and_counts_them() {
    if !services() {
        return;
    }
    let probe = Toy::new("status-probe", "", "", &[]);
    let fused = probe.commit(FUSED_DECODE);
    drop(probe);
    let toy = Toy::new(
        "status",
        "",
        &format!(
            "[build.overrides.\"{}\"]\npermanently_failed = \"needs a CUDA 11 toolchain\"\n",
            &fused[..12]
        ),
        &[FUSED_DECODE],
    );
    let prefix = toy.commit(PREFIX_CACHE);
    // Nothing built yet: every image missing in both places.
    let report = status_json(&toy, &[]);
    assert_eq!(report["version"], 1);
    assert_eq!(report["registry"], REGISTRY);
    let t = task(&report, &prefix);
    assert_eq!(t["category"], "missing_images");
    assert_eq!(
        (
            t["human"]["local"].as_str(),
            t["human"]["registry"].as_str()
        ),
        (Some("missing"), Some("missing"))
    );
    assert_eq!(task(&report, &fused)["category"], "permanently_failed");
    assert_eq!(
        task(&report, &fused)["human"]["permanently_failed"],
        "needs a CUDA 11 toolchain"
    );

    // The human image built and pushed, the baseline built but not pushed, a candidate recorded.
    let out = toy.perfarena(&[
        "images",
        "build",
        "--commit",
        &prefix[..10],
        "--variant",
        "human",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let out = toy.perfarena(&[
        "images",
        "build",
        "--commit",
        &prefix[..10],
        "--variant",
        "baseline",
        "--no-push",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let fast = toy.candidate_patch("fast");
    let report = status_json(&toy, &["--candidates", &fast]);
    let t = task(&report, &prefix);
    assert_eq!(
        (
            t["human"]["local"].as_str(),
            t["human"]["registry"].as_str()
        ),
        (Some("present"), Some("present"))
    );
    assert!(
        t["human"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(
        (
            t["baseline"]["local"].as_str(),
            t["baseline"]["registry"].as_str()
        ),
        (Some("present"), Some("missing"))
    );
    assert_eq!(t["human"]["last_build"]["status"], "success");
    assert_eq!(t["candidates"][0]["name"], "fast");
    assert_eq!(t["candidates"][0]["local"], "missing");
    assert_eq!(t["category"], "candidates_missing");
    let summary = &report["summary"];
    assert_eq!(summary["tasks"], 2);
    assert_eq!(summary["unique_parents"], 2);
    assert_eq!(summary["baselines_existing"], 1);
    assert_eq!(summary["baselines_missing"], 1);
    assert_eq!(summary["humans_existing"], 1);
    assert_eq!(
        summary["candidates_missing"], 2,
        "the patch file is a candidate of both tasks"
    );
    assert_eq!(summary["permanently_failed"], 1);

    // The store's images table holds the checks.
    let conn = rusqlite::Connection::open(toy.dir.join(".perfarena/perfarena.db")).unwrap();
    let (local, registry): (String, String) = conn
        .query_row(
            "SELECT local, registry FROM images WHERE image_ref = ?1",
            [toy.baseline_image(PREFIX_CACHE)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((local.as_str(), registry.as_str()), ("present", "missing"));

    // A registry that does not answer: unknown, never missing.
    let report = status_json(&toy, &["--registry", "http://127.0.0.1:9"]);
    for t in report["tasks"].as_array().unwrap() {
        assert_eq!(t["human"]["registry"], "unknown", "{t:#}");
        assert_eq!(t["baseline"]["registry"], "unknown", "{t:#}");
        assert!(
            t["human"]["registry_reason"]
                .as_str()
                .unwrap()
                .contains("127.0.0.1:9")
        );
    }
    let summary = &report["summary"];
    assert_eq!(
        (
            summary["baselines_missing"].as_u64(),
            summary["humans_missing"].as_u64()
        ),
        (Some(0), Some(0))
    );

    // The table: the teams' columns and the executive summary.
    let out = toy.perfarena(&["images", "status"]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout).replace(&toy.repo, "[repo]");
    insta::assert_snapshot!("images_status_table", table);
}

#[test]
fn an_unreachable_engine_makes_local_unknown() {
    if !services() {
        return;
    }
    let toy = Toy::new("noengine", "", "", &[]);
    let out = bin()
        .arg("-C")
        .arg(&toy.dir)
        .args(["images", "status", "--json"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["engine_error"].as_str().is_some(), "{report:#}");
    let t = &report["tasks"][0];
    assert_eq!(t["human"]["local"], "unknown");
    assert_eq!(t["human"]["registry"], "missing");
    assert_eq!(t["category"], "unknown");
}
