//! The JSON report's schema (`docs/report-schema.json`, JSON Schema 2020-12) and the version
//! check a reader of `perfarena report --format json` output does first.

use perfarena_core::report::REPORT_VERSION;

/// The JSON Schema of the current report version.
pub const SCHEMA: &str = include_str!("../../../docs/report-schema.json");

/// Why a report JSON cannot be read as the current version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("the report has no integer `version` field: it is not a perfarena report")]
    Missing,
    #[error(
        "the report is version 1 (comparisons carry their statistics at top level, no status analysis); \
         regenerate it with `perfarena report --format json` from the store, which keeps every attempt \
         (docs/report-schema.md, \"version 1\")"
    )]
    Version1,
    #[error(
        "the report is version {found}, newer than this perfarena understands ({supported}); upgrade perfarena"
    )]
    TooNew { found: u64, supported: u32 },
}

/// Checks a parsed report's `version` against [`REPORT_VERSION`].
pub fn check_version(report: &serde_json::Value) -> Result<u32, VersionError> {
    let found = report
        .get("version")
        .and_then(|v| v.as_u64())
        .ok_or(VersionError::Missing)?;
    match found {
        1 => Err(VersionError::Version1),
        v if v == u64::from(REPORT_VERSION) => Ok(REPORT_VERSION),
        // Version 3 only added fields: a version-2 report reads with them absent.
        2 => Ok(2),
        v if v > u64::from(REPORT_VERSION) => Err(VersionError::TooNew {
            found: v,
            supported: REPORT_VERSION,
        }),
        _ => Err(VersionError::Missing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_is_json_and_names_the_current_version() {
        let schema: serde_json::Value =
            serde_json::from_str(SCHEMA).expect("docs/report-schema.json is JSON");
        assert_eq!(
            schema["properties"]["version"]["const"],
            serde_json::json!(REPORT_VERSION)
        );
    }

    #[test]
    fn versions() {
        assert_eq!(
            check_version(&serde_json::json!({"version": REPORT_VERSION})),
            Ok(REPORT_VERSION)
        );
        assert_eq!(check_version(&serde_json::json!({"version": 2})), Ok(2));
        assert_eq!(
            check_version(&serde_json::json!({"version": 1})),
            Err(VersionError::Version1)
        );
        assert!(matches!(
            check_version(&serde_json::json!({"version": 99})),
            Err(VersionError::TooNew { .. })
        ));
        assert_eq!(
            check_version(&serde_json::json!({"suite": "x"})),
            Err(VersionError::Missing)
        );
    }
}
