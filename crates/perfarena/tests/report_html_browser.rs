//! The HTML report in a real headless Chromium: it loads from a file with no network, its
//! charts (forest plot, outcome bars, distributions) are present and drawn with a non-zero
//! size, the console stays silent, and a screenshot is taken (kept under the cargo target's
//! tmp dir for a person to look at).
//!
//! Needs Debian's `chromium` (`bash scripts/chromium-env.sh up`); `CHROME` names another
//! binary. Without it the test fails, unless `PERFARENA_SKIP_CHROMIUM=1`.

mod common;
mod report_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{perfarena, stderr};

/// The flags of the verified recipe: no sandbox (root), no first-run work, and nothing that
/// reaches for the network (time queries, component updates, DNS).
const FLAGS: [&str; 20] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-quic",
    "--disable-domain-reliability",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--hide-scrollbars",
    "--mute-audio",
    "--disable-features=NetworkTimeServiceQuerying",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
    "--force-device-scale-factor=1",
    "--virtual-time-budget=2000",
];

fn chrome() -> Option<PathBuf> {
    let path =
        PathBuf::from(std::env::var("CHROME").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    if path.exists() {
        return Some(path);
    }
    if std::env::var("PERFARENA_SKIP_CHROMIUM").as_deref() == Ok("1") {
        eprintln!(
            "skipping: {} not found and PERFARENA_SKIP_CHROMIUM=1",
            path.display()
        );
        return None;
    }
    panic!(
        "{} not found: install it with `bash scripts/chromium-env.sh up` (or set CHROME, or PERFARENA_SKIP_CHROMIUM=1 to skip)",
        path.display()
    );
}

struct Browser {
    binary: PathBuf,
    profile: tempfile::TempDir,
}

impl Browser {
    fn run(&self, args: &[&str], page: &Path) -> Output {
        let url = format!("file://{}", page.display());
        Command::new(&self.binary)
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", self.profile.path().display()))
            .args(args)
            .arg(url)
            .output()
            .expect("chromium starts")
    }

    /// The DOM after scripts ran, and every console line (Chromium prints every level as
    /// `:CONSOLE`, so any line is a failure for a page that should be silent).
    fn dom_and_console(&self, page: &Path) -> (String, Vec<String>) {
        let out = self.run(&["--enable-logging=stderr", "--v=0", "--dump-dom"], page);
        let console = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_string)
            .collect();
        (String::from_utf8_lossy(&out.stdout).into_owned(), console)
    }

    fn screenshot(&self, page: &Path, png: &Path, size: (u32, u32)) -> (u32, u32) {
        let out = self.run(
            &[
                &format!("--screenshot={}", png.display()),
                &format!("--window-size={},{}", size.0, size.1),
            ],
            page,
        );
        let bytes = std::fs::read(png).unwrap_or_else(|_| {
            panic!(
                "no screenshot (exit {:?}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
        let be = |at: usize| {
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        (be(16), be(20))
    }
}

/// Appended to a copy of the report: measures each chart as laid out and writes the result
/// into the DOM for `--dump-dom` to carry back.
const PROBE: &str = r#"<script>
const charts = [...document.querySelectorAll('figure.chart')].map(f => {
  const svg = f.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {kind: f.dataset.chart, width: Math.round(box.width), height: Math.round(box.height),
          shapes: svg ? svg.querySelectorAll('rect,circle,line,polyline,path').length : 0,
          texts: svg ? svg.querySelectorAll('text').length : 0};
});
const pre = document.createElement('pre');
pre.id = 'probe';
pre.textContent = JSON.stringify({charts, tables: document.querySelectorAll('table').length, title: document.title});
document.body.appendChild(pre);
</script>"#;

#[test]
fn html_report_renders_in_chromium() {
    let Some(binary) = chrome() else { return };
    let browser = Browser {
        binary,
        profile: tempfile::tempdir().expect("profile dir"),
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("project");
    report_support::build(&dir);
    let out_dir = tmp.path().join("out");
    let out = perfarena(
        &dir,
        &[
            "report",
            "--format",
            "html",
            "--legacy-threshold",
            "2",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let page = out_dir.join("report.html");
    let html = std::fs::read_to_string(&page).expect("report.html");

    // Self-contained: no script, no external resource (links to pull requests are fine).
    for needle in ["<script", "<link", "src=\"http", "url(", "@import"] {
        assert!(!html.contains(needle), "report.html contains {needle:?}");
    }

    // The harness sees console output and exceptions, or a silent report proves nothing.
    let broken = tmp.path().join("broken.html");
    std::fs::write(&broken, "<!DOCTYPE html><title>b</title><script>console.error('REPORT-BROKEN'); undefinedFn();</script>").unwrap();
    let (_, console) = browser.dom_and_console(&broken);
    assert!(
        console.iter().any(|l| l.contains("REPORT-BROKEN")),
        "console.error not seen: {console:?}"
    );
    assert!(
        console
            .iter()
            .any(|l| l.contains("Uncaught ReferenceError")),
        "exception not seen: {console:?}"
    );

    let (dom, console) = browser.dom_and_console(&page);
    assert!(
        console.is_empty(),
        "the report logged to the console: {console:?}"
    );
    assert!(
        dom.contains("perfarena report — fixture"),
        "the DOM is not the report: {}",
        &dom[..dom.len().min(300)]
    );
    assert_eq!(dom.matches("<svg").count(), html.matches("<svg").count());

    let probe_page = out_dir.join("probe.html");
    std::fs::write(
        &probe_page,
        html.replace("</body>", &format!("{PROBE}</body>")),
    )
    .unwrap();
    let (dom, console) = browser.dom_and_console(&probe_page);
    assert!(console.is_empty(), "{console:?}");
    let start = dom.find("<pre id=\"probe\">").expect("probe ran") + "<pre id=\"probe\">".len();
    let end = start + dom[start..].find("</pre>").expect("probe end");
    let probe: serde_json::Value = serde_json::from_str(
        &dom[start..end]
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
    .expect("probe JSON");
    let charts = probe["charts"].as_array().expect("charts");
    for kind in ["forest", "outcomes", "distribution"] {
        let of_kind: Vec<_> = charts.iter().filter(|c| c["kind"] == kind).collect();
        assert!(!of_kind.is_empty(), "no {kind} chart: {probe}");
        for chart in of_kind {
            assert!(
                chart["width"].as_u64().unwrap() > 100 && chart["height"].as_u64().unwrap() > 100,
                "{kind} chart has no size: {chart}"
            );
            assert!(
                chart["shapes"].as_u64().unwrap() >= 8 && chart["texts"].as_u64().unwrap() >= 3,
                "{kind} chart is empty: {chart}"
            );
        }
    }
    assert_eq!(
        charts
            .iter()
            .filter(|c| c["kind"] == "distribution")
            .count(),
        4,
        "one per task with values: {probe}"
    );
    assert!(probe["tables"].as_u64().unwrap() >= 8, "{probe}");

    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-html");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("report.png");
    let _ = std::fs::remove_file(&png);
    let (width, height) = browser.screenshot(&page, &png, (1280, 4200));
    assert!(
        width >= 1200 && height >= 2000,
        "screenshot {width}×{height}"
    );
    // A blank page of this size compresses to a few KiB; the report's text and charts do not.
    let bytes = std::fs::metadata(&png).unwrap().len();
    assert!(
        bytes > 100_000,
        "the screenshot looks blank ({bytes} bytes)"
    );
    std::fs::copy(&page, shots.join("report.html")).unwrap();
    eprintln!("screenshot: {}", png.display());
}
