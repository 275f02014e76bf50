//! One module per command; each takes resolved settings and returns an exit code.

pub mod analyze;
pub mod demo;
pub mod images;
pub mod import_images;
pub mod init;
pub mod input_files;
pub mod judge;
pub mod logs;
pub mod parquet_rows;
pub mod parse;
pub mod report;
pub mod results;
pub mod run;
pub mod selftest;
pub mod tasks;
pub mod triage;
